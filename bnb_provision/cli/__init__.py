"""The command line: click commands and the text they print; the only user of click.

``app`` holds the group and what the commands share; each other module holds one
command or a small family of them. The commands are listed here in pipeline order and
imported only when one is run (or ``--help`` lists them).
"""

from bnb_provision.cli.app import cli, main

_COMMANDS = {
    "detect": "bnb_provision.cli.detect_plan:detect",
    "plan": "bnb_provision.cli.detect_plan:plan",
    "doctor": "bnb_provision.cli.doctor_explain:doctor",
    "explain": "bnb_provision.cli.doctor_explain:explain",
    "triage": "bnb_provision.cli.triage:triage",
    "fit": "bnb_provision.cli.fit:fit",
    "verify": "bnb_provision.cli.verify:verify",
    "lock": "bnb_provision.cli.lock:lock",
    "bundle": "bnb_provision.cli.lock:bundle",
    "init": "bnb_provision.cli.env:init",
    "rebuild": "bnb_provision.cli.env:rebuild",
    "fleet": "bnb_provision.cli.fleet:fleet",
}
for _name, _target in _COMMANDS.items():
    cli.add_lazy_command(_name, _target)

__all__ = ["cli", "main"]
