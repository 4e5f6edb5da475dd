"""One entry point for a fleet run, whichever engine drives it."""

from __future__ import annotations

from bnb_provision.fleet.ansible import AnsibleTarget, run_ansible
from bnb_provision.fleet.job import FleetJob
from bnb_provision.fleet.report import FleetReport
from bnb_provision.fleet.slurm import SlurmTarget, run_slurm

__all__ = ["run_fleet"]


def run_fleet(job: FleetJob, target: AnsibleTarget | SlurmTarget) -> FleetReport:
    """Run ``job`` on the nodes of an Ansible inventory or a Slurm allocation.

    Per-node failures are in the report; see :func:`run_ansible` and :func:`run_slurm`
    for what is raised.
    """
    if isinstance(target, AnsibleTarget):
        return run_ansible(job, target)
    return run_slurm(job, target)
