"""A fleet run through Ansible: the shipped playbook, the user's inventory, one command line.

The playbook (``templates/fleet/bnb-fleet.yml``) does the work with Ansible's own means:
``command``/``fetch`` per node, ``ignore_unreachable``/``ignore_errors`` with every
outcome recorded on the controller. This module only builds the ``ansible-playbook``
command line, runs it through :mod:`bnb_provision.core.process`, and reads the folder.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision.core import process
from bnb_provision.errors import ExternalToolError, LockfileError
from bnb_provision.fleet.job import NODES_FILE, FleetJob, prepare_output, template
from bnb_provision.fleet.report import FleetReport, read_results

__all__ = ["PLAYBOOK", "AnsibleTarget", "ansible_command", "extra_vars", "run_ansible"]

PLAYBOOK: Final = "bnb-fleet.yml"
LOG_FILE: Final = "ansible-playbook.log"
INSTALL_HINT: Final = "pip install 'bnb-provision[fleet]' (ansible-core from PyPI)"


@dataclass(frozen=True, kw_only=True, slots=True)
class AnsibleTarget:
    """Which nodes: an Ansible inventory (file, folder or ``host1,host2,``), maybe limited."""

    inventory: str
    limit: str | None = None
    forks: int | None = None


def extra_vars(job: FleetJob) -> dict[str, Any]:
    """The playbook's variables for ``job``; what the job leaves unset, the inventory decides."""
    values: dict[str, Any] = {"bnb_fleet_mode": job.mode, "bnb_fleet_out": str(job.output)}
    if job.locks is not None:
        values["bnb_fleet_locks"] = str(job.locks)
    if job.node_command is not None:
        values["bnb_fleet_command"] = list(job.node_command)
    if job.workdir is not None:
        values["bnb_fleet_workdir"] = job.workdir
    if job.args:
        values["bnb_fleet_args"] = list(job.args)
    return values


def find_ansible_playbook() -> str:
    """``ansible-playbook`` on PATH or beside this Python; raises ExternalToolError if absent."""
    found = process.find_program("ansible-playbook", str(Path(sys.executable).parent))
    if found is None:
        raise ExternalToolError(f"ansible-playbook was not found: {INSTALL_HINT}")
    return found


def ansible_command(job: FleetJob, target: AnsibleTarget, program: str) -> tuple[str, ...]:
    """The ``ansible-playbook`` command line for ``job`` (whose paths are absolute)."""
    argv = [program, "-i", target.inventory, str(template(PLAYBOOK))]
    if target.limit:
        argv += ["--limit", target.limit]
    if target.forks:
        argv += ["--forks", str(target.forks)]
    argv += ["--extra-vars", json.dumps(extra_vars(job), sort_keys=True)]
    return tuple(argv)


def _environment() -> dict[str, str]:
    """This environment, plain output, and a UTF-8 locale, which ansible-core requires:
    where none is set (``LC_ALL=C``, say), C.UTF-8, as Python itself coerces to (PEP 538)."""
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    locale = next((env[k] for k in ("LC_ALL", "LC_CTYPE", "LANG") if env.get(k)), "")
    if "utf-8" not in locale.lower() and "utf8" not in locale.lower():
        env["LC_ALL"] = "C.UTF-8"
    return env


def run_ansible(job: FleetJob, target: AnsibleTarget) -> FleetReport:
    """Run the playbook over the inventory and read what came back.

    Node failures are in the report, not raised. Raises ExternalToolError when
    ansible-playbook is missing or stops before the run starts (a bad inventory, say),
    LockfileError for an output folder that is not empty (without ``force``).
    """
    job = job.checked()
    inventory = target.inventory
    if "," not in inventory and not Path(inventory).exists():
        raise LockfileError(f"{inventory}: no such inventory file or folder")
    argv = ansible_command(job, target, find_ansible_playbook())
    prepare_output(job.output, force=job.force)
    done = process.run(argv, check=False, timeout=job.timeout, env=_environment())
    log = job.output / LOG_FILE
    output = done.stdout + (f"\n{done.stderr}" if done.stderr.strip() else "")
    try:
        log.write_text(output, encoding="utf-8")
    except OSError as exc:
        raise LockfileError(f"{log}: cannot write ansible-playbook's output ({exc})") from exc
    if not (job.output / NODES_FILE).is_file():
        if done.returncode == 0:
            raise ExternalToolError(
                f"ansible-playbook ran on no node: no host of {inventory} matched (see {log})",
                command=argv,
                returncode=0,
                output=output[-2000:],
            )
        raise ExternalToolError.exited(argv, done.returncode, output)
    return read_results(job.output, engine="ansible", command=argv, log=log)
