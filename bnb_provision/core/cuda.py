"""CUDA versions and compute capabilities in all their spellings, and the one coverage rule.

A CUDA version is written four ways: ``12.8`` (torch's ``torch.version.cuda``, ``--cuda``),
``128`` (a bitsandbytes library tag, ``libbitsandbytes_cuda128.so``, ``BNB_CUDA_VERSION``),
``cu128`` (a torch wheel variant, ``2.8.0+cu128``) and ``12080`` (the CUDA driver API and
NVML). :class:`CudaVersion` reads each and writes each; ``cpu`` is the variant of a build
without CUDA.

``--cuda`` names a torch build in any of these: ``12.6`` or ``cu126`` (CUDA), ``rocm7.2``
(ROCm), ``xpu`` (Intel), ``mps`` (Apple silicon) or ``cpu``; :func:`normalize_cuda_option`
reads them all and writes ``12.6``, ``rocm7.2``, ``xpu``, ``mps`` or ``cpu``.

A compute capability is written ``8.6`` or ``sm_86``; an architecture in a kernel list is
the number ``86`` (``sm_86`` machine code, ``compute_86`` PTX). :func:`covers` decides
whether a kernel list runs on a GPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Literal, NamedTuple

from packaging.version import Version

__all__ = [
    "CPU",
    "MPS",
    "XPU",
    "ComputeCapability",
    "Coverage",
    "CudaVersion",
    "DriverVersion",
    "covers",
    "cuda_of_variant",
    "cuda_option",
    "is_cuda_tag",
    "is_rocm",
    "normalize_cuda_option",
    "ptx_blocked",
    "rocm_version",
    "variant_of_cuda",
]

CPU: Final = "cpu"
"""The torch variant, and the ``--cuda`` value, of a build without CUDA."""

XPU: Final = "xpu"
"""The torch variant, and the ``--cuda`` value, of Intel GPU builds."""
MPS: Final = "mps"
"""The ``--cuda`` value of torch's macOS build on Apple silicon (Metal Performance Shaders)."""

Coverage = Literal["sass", "ptx"]
"""How a kernel list runs on a GPU: its own machine code, or PTX compiled at load time."""

_VERSION_RE: Final = re.compile(r"(\d{1,2})(?:\.(\d)(?:\.\d+)?)?")
_TAG_RE: Final = re.compile(r"(\d{1,2})(\d)")
_VARIANT_RE: Final = re.compile(r"cu(\d{1,2})(\d)")
_CC_RE: Final = re.compile(r"(?:sm_?)?(\d+)\.?(\d)")
_ROCM_RE: Final = re.compile(r"rocm[-_ ]?(\d{1,2})\.(\d{1,2})(?:\.(\d{1,3}))?")


class CudaVersion(NamedTuple):
    """A CUDA ``major.minor``; ordered as a tuple."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> CudaVersion:
        """``12.8`` (or ``12.8.90``, or ``12`` for ``12.0``) -> ``CudaVersion(12, 8)``."""
        m = _VERSION_RE.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"{text!r} is not a CUDA version (expected X.Y such as 12.8)")
        return cls(int(m.group(1)), int(m.group(2) or 0))

    @classmethod
    def from_tag(cls, tag: str) -> CudaVersion:
        """``128`` -> 12.8, ``118`` -> 11.8, ``92`` -> 9.2: the last digit is the minor."""
        m = _TAG_RE.fullmatch(tag)
        if m is None:
            raise ValueError(f"{tag!r} is not a CUDA version tag (digits such as 124)")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def from_variant(cls, variant: str) -> CudaVersion | None:
        """``cu128`` -> 12.8; a variant without CUDA (``cpu``, ``rocm6.2``, ``xpu``) -> None."""
        m = _VARIANT_RE.fullmatch(variant)
        return cls(int(m.group(1)), int(m.group(2))) if m else None

    @classmethod
    def from_driver_api(cls, value: int) -> CudaVersion:
        """``12080`` (``cudaDriverGetVersion``, NVML) -> 12.8."""
        return cls(value // 1000, (value % 1000) // 10)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def tag(self) -> str:
        """``128``, as in ``libbitsandbytes_cuda128.so`` and ``BNB_CUDA_VERSION``."""
        return f"{self.major}{self.minor}"

    @property
    def variant(self) -> str:
        """``cu128``, as in torch ``2.8.0+cu128``."""
        return f"cu{self.tag}"


def is_cuda_tag(text: str) -> bool:
    """Whether ``text`` is a library tag such as ``124`` (what ``BNB_CUDA_VERSION`` takes)."""
    return _TAG_RE.fullmatch(text) is not None


def cuda_of_variant(variant: str) -> str | None:
    """``cu128`` -> ``12.8``; ``cpu``, ``rocm6.2``, ``xpu`` -> None."""
    version = CudaVersion.from_variant(variant)
    return None if version is None else str(version)


def variant_of_cuda(cuda: str) -> str:
    """``12.8`` -> ``cu128``; ``cpu`` -> ``cpu``. Raises ValueError for anything else."""
    return CPU if cuda == CPU else CudaVersion.parse(cuda).variant


def cuda_option(variant: str) -> str | None:
    """The ``--cuda`` value that selects a torch variant: ``cu128`` -> ``12.8``, ``cpu``,
    ``xpu``, ``mps`` and ``rocm6.2`` as they are; None for anything else."""
    if variant in (CPU, XPU, MPS) or is_rocm(variant):
        return variant
    return cuda_of_variant(variant)


def is_rocm(option: str) -> bool:
    """Whether a variant or ``--cuda`` value names a ROCm build (``rocm6.2.4``)."""
    return _ROCM_RE.fullmatch(option) is not None


def rocm_version(variant: str) -> tuple[int, int]:
    """``rocm6.2.4`` -> (6, 2): the ROCm release, whose ``major.minor`` is the HIP version
    that ``torch.version.hip`` reports and bitsandbytes names its libraries by."""
    m = _ROCM_RE.fullmatch(variant)
    if m is None:
        raise ValueError(f"{variant!r} is not a ROCm variant (rocmX.Y such as rocm7.2)")
    return int(m.group(1)), int(m.group(2))


def normalize_cuda_option(text: str) -> str:
    """A ``--cuda`` value in its one spelling: ``cu126``, ``12.6``, ``12.6.3`` -> ``12.6``;
    ``ROCm7.2`` -> ``rocm7.2``; ``xpu``, ``mps``, ``cpu``. Raises ValueError naming the forms."""
    low = text.strip().lower()
    if low in (CPU, XPU, MPS):
        return low
    m = _ROCM_RE.fullmatch(low)
    if m is not None:
        return "rocm" + ".".join(g for g in m.groups() if g is not None)
    found = CudaVersion.from_variant(low)
    try:
        return str(found or CudaVersion.parse(low))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a build: give a CUDA version (12.6 or cu126), a ROCm version "
            "(rocm7.2), xpu (Intel), mps (Apple silicon) or cpu"
        ) from None


class DriverVersion(Version):
    """An NVIDIA driver version that prints as it was written: ``580.159.04`` stays
    ``580.159.04`` (a plain :class:`~packaging.version.Version` prints ``580.159.4``); it
    compares as the version it is."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        super().__init__(text.strip())
        self._text = text.strip()

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"<DriverVersion({self._text!r})>"

    def __reduce__(self) -> tuple[type[DriverVersion], tuple[str]]:
        return (DriverVersion, (self._text,))


class ComputeCapability(NamedTuple):
    """A GPU's compute capability ``major.minor``; ordered as a tuple, so it compares with
    the ``(8, 6)`` pairs the DB and the detectors hold."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> ComputeCapability:
        """``8.6``, ``sm_86`` or ``sm86`` -> (8, 6); ``12.0`` or ``sm_120`` -> (12, 0).

        Bare digits (``86``) are refused: they could be a GPU's name.
        """
        m = _CC_RE.fullmatch(text.strip())
        if m is None or not ("." in text or text.startswith("sm")):
            raise ValueError(f"{text!r} is not a compute capability (8.6 or sm_86)")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def from_arch(cls, arch: int) -> ComputeCapability:
        """The architecture number of a kernel list, ``86`` or ``120``, -> (8, 6), (12, 0)."""
        return cls(arch // 10, arch % 10)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def arch(self) -> int:
        """``86`` for 8.6: the number in ``sm_86`` and ``compute_86``."""
        return self.major * 10 + self.minor

    @property
    def sm(self) -> str:
        """``sm_86``."""
        return f"sm_{self.arch}"


def covers(
    cc: tuple[int, int],
    *,
    sass: Iterable[int],
    ptx: Iterable[int],
    toolkit: CudaVersion | None = None,
    driver_cuda: CudaVersion | None = None,
) -> Coverage | None:
    """How kernels built for ``sass`` and ``ptx`` architectures run on a GPU of ``cc``.

    ``"sass"`` when machine code of the GPU's major with a minor no newer than the GPU's
    is present (``sm_80`` runs on 8.6, never on 9.0); else ``"ptx"`` when PTX no newer
    than the GPU can be JIT-compiled (``compute_80`` runs on 9.0); else None.

    The driver JIT-compiles PTX only when it is at least as new as the toolkit that
    emitted it: with ``toolkit`` (the CUDA the binary was built with) and ``driver_cuda``
    (the newest CUDA the driver supports) both given, PTX from a newer toolkit does not
    count (a 13.0 driver cannot compile 13.2 PTX). Either one unknown: the caller has not
    asked, and PTX counts by architecture alone.
    """
    major, minor = cc
    if any(a // 10 == major and a % 10 <= minor for a in sass):
        return "sass"
    if not any(a <= major * 10 + minor for a in ptx):
        return None
    if toolkit is not None and driver_cuda is not None and driver_cuda < toolkit:
        return None
    return "ptx"


def ptx_blocked(
    cc: tuple[int, int],
    *,
    sass: Iterable[int],
    ptx: Iterable[int],
    toolkit: CudaVersion | None,
    driver_cuda: CudaVersion | None,
) -> bool:
    """Whether the kernels would run on ``cc`` through PTX, but the driver is older than
    the toolkit that emitted it (what :func:`covers` refuses beyond the architectures)."""
    sass, ptx = tuple(sass), tuple(ptx)
    return covers(cc, sass=sass, ptx=ptx) == "ptx" and (
        covers(cc, sass=sass, ptx=ptx, toolkit=toolkit, driver_cuda=driver_cuda) is None
    )
