"""verify: prove that bitsandbytes' kernels run in an environment.

The target interpreter runs ``_verify_script.py`` as a subprocess: it imports
torch and bitsandbytes, records which native library was loaded, then on every
visible GPU runs NF4 and FP4 quantize/dequantize round trips, a ``Linear4bit``
forward against a float reference, LLM.int8() where compute capability >= 7.5,
and an 8-bit Adam step; with no GPU, the same on bitsandbytes' CPU backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision.core import process
from bnb_provision.errors import ExternalToolError, TargetEnvError

__all__ = ["VERIFY_SCHEMA", "VerifyReport", "run_verify"]

VERIFY_SCHEMA: Final = "bnb-provision.verify/1"
VERIFY_TIMEOUT: Final = 900.0


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyReport:
    ok: bool
    data: dict[str, Any]  # the script's JSON report, as it printed it

    @property
    def library(self) -> str | None:
        value = self.data.get("import", {}).get("library")
        return value if isinstance(value, str) else None

    def failures(self) -> list[str]:
        out = []
        imp = self.data.get("import", {})
        if not imp.get("ok"):
            out.append(str(imp.get("error", "import failed")))
        out += [
            f"{d.get('device')}: {c.get('check')}: {c.get('error')}"
            for d in self.data.get("devices", [])
            for c in d.get("checks", [])
            if not c.get("ok")
        ]
        return out


def run_verify(
    python: str, *, env: dict[str, str] | None = None, timeout: float = VERIFY_TIMEOUT
) -> VerifyReport:
    """Run the checks with interpreter ``python``; raises TargetEnvError if it cannot run."""
    script = (Path(__file__).parent / "_verify_script.py").read_text(encoding="utf-8")
    try:
        done = process.run(
            [python, "-X", "utf8", "-c", script],
            timeout=timeout,
            check=False,
            env=env,
            cwd=Path.home() if Path.home().is_dir() else None,
        )
    except ExternalToolError as exc:
        raise TargetEnvError(f"verify: could not run {python}: {exc}") from exc
    lines = [ln for ln in done.stdout.strip().splitlines() if ln.startswith("{")]
    try:
        data = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise TargetEnvError(
            f"verify: {python} crashed before reporting (exit {done.returncode}):\n{tail}"
        ) from exc
    if not isinstance(data, dict) or data.get("schema") != VERIFY_SCHEMA:
        raise TargetEnvError(f"verify: unexpected report from {python}")
    return VerifyReport(ok=bool(data.get("ok")), data=data)
