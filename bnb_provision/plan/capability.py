"""Which compute capabilities a plan is made for: those of the NVIDIA GPUs the DB knows,
and those of a GPU newer than all of them (up to the next major), which run only through
PTX. Anything else (``--gpu 99.9``, ``--gpu 8.8``) is refused with the known ones listed.
"""

from __future__ import annotations

from bnb_provision.core.cuda import ComputeCapability
from bnb_provision.db.model import CompatDB
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.model import Target

__all__ = ["check_ccs"]


def check_ccs(db: CompatDB, target: Target) -> None:
    """Refuse a GPU whose compute capability is neither known nor newer than every known
    one (a GPU after the DB, planned through PTX where the driver can JIT it)."""
    known = db.known_ccs()
    newest = known[-1]
    for name, cc in target.gpus:
        if cc in known or (cc > newest and cc[0] <= newest[0] + 1):
            continue
        listed = ", ".join(str(ComputeCapability(*k)) for k in known)
        raise NoPlanError(
            f"{name}: compute capability {ComputeCapability(*cc)} is no NVIDIA GPU the DB "
            f"knows. Known: {listed}; a GPU newer than these (up to "
            f"{newest[0] + 1}.x) is planned too, through PTX. Check the value "
            "(nvidia-smi --query-gpu=compute_cap --format=csv) or pass the GPU's name."
        )
