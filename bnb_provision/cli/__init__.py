"""The command line: click commands and the text they print; the only user of click.

``app`` holds the group and what the commands share; each other module holds one
command or a small family of them. The commands are listed here in pipeline order.
"""

from bnb_provision.cli import detect_plan, doctor_explain, env, fit, fleet, lock, triage, verify
from bnb_provision.cli.app import cli, main

for _command in (
    detect_plan.detect,
    detect_plan.plan,
    doctor_explain.doctor,
    doctor_explain.explain,
    triage.triage,
    fit.fit,
    verify.verify,
    lock.lock,
    lock.bundle,
    env.init,
    env.rebuild,
    fleet.fleet,
):
    cli.add_command(_command)

__all__ = ["cli", "main"]
