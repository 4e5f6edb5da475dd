"""Check 0: torch and bitsandbytes are there at all. Every other check reads what they
are; an environment without them would otherwise pass them all and look healthy."""

from __future__ import annotations

from typing import Final

from bnb_provision.db.model import CompatDB
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.target import EnvInfo, TorchInfo
from bnb_provision.doctor.check import DoctorOptions
from bnb_provision.doctor.findings import Finding

__all__ = ["check_installed"]

TORCH_INSTALL: Final = "https://pytorch.org/get-started/locally/"
BNB_INSTALL: Final = "https://huggingface.co/docs/bitsandbytes/main/en/installation"


def check_installed(m: Machine, _db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """torch or bitsandbytes missing from the environment doctor was pointed at."""
    env = m.env
    if env is None:
        return []
    where = env.python.executable or env.prefix or "this environment"
    py = env.python.minor
    out = []
    if env.torch is None and env.version_of("torch") is None:
        out.append(
            Finding(
                id="torch-not-installed",
                category="other",
                severity="error",
                title=f"torch is not installed in {where}",
                evidence=_evidence(env, "torch"),
                fix=f"bnb-provision init --python {py} makes a verified environment with torch "
                f"and bitsandbytes; bnb-provision plan --python {py} names the builds to "
                "install into this one",
                source=TORCH_INSTALL,
            )
        )
    if env.bitsandbytes is None and env.version_of("bitsandbytes") is None:
        out.append(
            Finding(
                id="bnb-not-installed",
                category="other",
                severity="error",
                title=f"bitsandbytes is not installed in {where}",
                evidence=_evidence(env, "bitsandbytes"),
                fix=(
                    f"bnb-provision plan --python {py} --torch {_release(env.torch)} names the "
                    f"bitsandbytes build for this torch; bnb-provision init --python {py} makes "
                    "a verified environment"
                    if env.torch is not None
                    else f"bnb-provision init --python {py} makes a verified environment with "
                    "torch and bitsandbytes"
                ),
                source=BNB_INSTALL,
            )
        )
    return out


def _release(torch: TorchInfo) -> str:
    """torch's release as a pin: ``2.8.0+cu128`` -> ``2.8.0``."""
    return torch.version.split("+")[0]


def _evidence(env: EnvInfo, name: str) -> tuple[str, ...]:
    prefix = f"in {env.prefix}" if env.prefix else "in this environment"
    return (
        f"no {name} distribution {prefix} (Python {env.python.version})",
        (
            "is another environment meant? run doctor with --python PATH or --env DIR, "
            "or activate it first"
        ),
    )
