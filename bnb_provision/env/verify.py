"""verify: prove that bitsandbytes' kernels run in an environment.

The target interpreter runs ``_verify_script.py`` as a subprocess: it imports
torch and bitsandbytes, records which native library was loaded, then on every
visible GPU runs NF4 and FP4 quantize/dequantize round trips, a ``Linear4bit``
forward against a float reference, LLM.int8() where compute capability >= 7.5,
and an 8-bit Adam step; with no GPU, the same on bitsandbytes' CPU backend.

The script prints a ``bnb-provision.verify/1`` JSON object; :func:`report_from_dict`
reads it into a :class:`VerifyReport`, whose :meth:`~VerifyReport.to_dict` gives the
same JSON back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision.core import process
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.errors import ExternalToolError, TargetEnvError

__all__ = [
    "VERIFY_SCHEMA",
    "BnbBuild",
    "CheckResult",
    "DeviceReport",
    "ImportResult",
    "TorchBuild",
    "VerifyReport",
    "report_from_dict",
    "run_verify",
]

VERIFY_SCHEMA: Final = "bnb-provision.verify/1"
VERIFY_TIMEOUT: Final = 900.0


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchBuild:
    version: str  # torch.__version__, with its local part: "2.13.0+cu130"
    cuda: str | None  # torch.version.cuda; None for a CPU build


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbBuild:
    version: str
    library: str | None  # the native library it loaded; None when it cannot be told
    seconds: float  # importing torch and bitsandbytes
    cuda_override: str | None  # BNB_CUDA_VERSION, when set


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportResult:
    ok: bool
    error: str | None  # "import torch: ...", "import bitsandbytes: ..."
    torch: TorchBuild | None  # None when torch did not import
    bitsandbytes: BnbBuild | None  # None when bitsandbytes did not import

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.torch is not None:
            out |= {"torch": self.torch.version, "torch_cuda": self.torch.cuda}
        out["ok"] = self.ok
        if self.error is not None:
            out["error"] = self.error
        if (b := self.bitsandbytes) is not None:
            out |= {"bitsandbytes": b.version, "library": b.library, "seconds": b.seconds}
            out["bnb_cuda_version"] = b.cuda_override
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    """One kernel check on one device; ``error`` and ``error_type`` when it failed."""

    name: str  # nf4_roundtrip, fp4_roundtrip, linear4bit_forward, llm_int8_matmul, ...
    ok: bool
    seconds: float | None = None  # None when skipped
    rel_error: float | None = None  # against the float reference
    bound: float | None = None  # the largest rel_error that passes
    mean_update: float | None = None  # adam8bit_step: how far the parameter moved
    error: str | None = None
    error_type: str | None = None
    trace: tuple[str, ...] | None = None  # the last lines of the traceback
    skipped: str | None = None  # why it did not run (counts as ok)

    def to_dict(self) -> dict[str, Any]:
        optional = (
            ("rel_error", self.rel_error),
            ("bound", self.bound),
            ("mean_update", self.mean_update),
            ("error", self.error),
            ("type", self.error_type),
            ("trace", None if self.trace is None else list(self.trace)),
            ("seconds", self.seconds),
            ("skipped", self.skipped),
        )
        return {"check": self.name, "ok": self.ok} | {k: v for k, v in optional if v is not None}


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceReport:
    device: str  # "cuda:0" | "cpu"
    name: str | None  # None only when the device failed before it could be named
    compute_capability: str | None  # "9.0"; None on the CPU backend
    compute_dtype: str | None  # bfloat16 | float16 | float32
    checks: tuple[CheckResult, ...]
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        described = (
            ("name", self.name),
            ("compute_capability", self.compute_capability),
            ("compute_dtype", self.compute_dtype),
        )
        return (
            {"device": self.device, "checks": [c.to_dict() for c in self.checks]}
            | {k: v for k, v in described if v is not None}
            | {"ok": self.ok}
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyReport:
    ok: bool
    python: str  # the target interpreter's version
    imported: ImportResult
    devices: tuple[DeviceReport, ...]
    error: str | None = None  # the script itself stopped half-way

    @property
    def library(self) -> str | None:
        """The native library bitsandbytes loaded."""
        b = self.imported.bitsandbytes
        return b.library if b else None

    def failures(self) -> list[str]:
        out = []
        if not self.imported.ok:
            out.append(self.imported.error or "import failed")
        if self.error is not None and self.imported.ok:
            out.append(self.error)
        out += [
            f"{d.device}: {c.name}: {c.error}" for d in self.devices for c in d.checks if not c.ok
        ]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``bnb-provision.verify/1`` JSON, as the script printed it."""
        out = {
            "schema": VERIFY_SCHEMA,
            "ok": self.ok,
            "python": self.python,
            "import": self.imported.to_dict(),
            "devices": [d.to_dict() for d in self.devices],
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @property
    def data(self) -> dict[str, Any]:
        """:meth:`to_dict`, for renderers that take the JSON."""
        return self.to_dict()


# -- reading the script's JSON --------------------------------------------------------


def _import_from(f: Fields) -> ImportResult:
    torch = bnb = None
    if (version := f.text("torch", None)) is not None:
        torch = TorchBuild(version=version, cuda=f.text("torch_cuda", None))
    if (bnb_version := f.text("bitsandbytes", None)) is not None:
        bnb = BnbBuild(
            version=bnb_version,
            library=f.text("library", None),
            seconds=f.number("seconds"),
            cuda_override=f.text("bnb_cuda_version", None),
        )
    result = ImportResult(
        ok=f.flag("ok"), error=f.text("error", None), torch=torch, bitsandbytes=bnb
    )
    f.done()
    return result


def _check_from(f: Fields) -> CheckResult:
    has_trace = f.data.get("trace") is not None
    lines = f.str_list("trace", None)
    result = CheckResult(
        name=f.text("check"),
        ok=f.flag("ok"),
        seconds=f.number("seconds", None),
        rel_error=f.number("rel_error", None),
        bound=f.number("bound", None),
        mean_update=f.number("mean_update", None),
        error=f.text("error", None),
        error_type=f.text("type", None),
        trace=tuple(lines) if has_trace else None,
        skipped=f.text("skipped", None),
    )
    f.done()
    return result


def _device_from(f: Fields) -> DeviceReport:
    result = DeviceReport(
        device=f.text("device"),
        name=f.text("name", None),
        compute_capability=f.text("compute_capability", None),
        compute_dtype=f.text("compute_dtype", None),
        checks=tuple(_check_from(c) for c in f.tables("checks")),
        ok=f.flag("ok"),
    )
    f.done()
    return result


def report_from_dict(data: object) -> VerifyReport:
    """A ``bnb-provision.verify/1`` object; raises FieldError naming the bad field."""
    f = Fields(data, "")
    f.check(f.text("schema") == VERIFY_SCHEMA, "schema", f"expected {VERIFY_SCHEMA!r}")
    imported = f.table("import")
    assert imported is not None  # required: table() raised otherwise
    report = VerifyReport(
        ok=f.flag("ok"),
        python=f.text("python"),
        imported=_import_from(imported),
        devices=tuple(_device_from(d) for d in f.tables("devices")),
        error=f.text("error", None),
    )
    f.done()
    return report


def _parse_output(python: str, done: process.Completed) -> VerifyReport:
    lines = [ln for ln in done.stdout.strip().splitlines() if ln.startswith("{")]
    try:
        data = json.loads(lines[-1])
    except (IndexError, ValueError, RecursionError) as exc:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise TargetEnvError(
            f"verify: {python} crashed before reporting (exit {done.returncode}):\n{tail}"
        ) from exc
    try:
        return report_from_dict(data)
    except FieldError as exc:
        raise TargetEnvError(
            f"verify: unexpected report from {python} ({exc}); if something in that "
            "environment prints at exit (sitecustomize, a .pth file, an atexit hook), "
            "turn it off and run verify again"
        ) from exc


def run_verify(
    python: str, *, env: dict[str, str] | None = None, timeout: float = VERIFY_TIMEOUT
) -> VerifyReport:
    """Run the checks with interpreter ``python``; raises TargetEnvError if it cannot run
    or what it printed is not a report."""
    script = (Path(__file__).parent / "_verify_script.py").read_text(encoding="utf-8")
    if any(sep in python for sep in (os.sep, os.altsep) if sep):
        python = str(Path(python).absolute())  # it runs from the home folder
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
    return _parse_output(python, done)
