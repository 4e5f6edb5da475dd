"""Derive compat DB facts from real artifacts on PyPI.

* release lists, upload dates, ``Requires-Python`` and ``Requires-Dist`` from
  PyPI's JSON simple API;
* the platforms each release has wheels for, from the file names;
* the CUDA build PyPI serves per platform for torch, from each wheel's
  METADATA (PEP 658 ``.metadata`` files: no wheel download);
* the torch / Hugging Face requirements of the GPTQ / AWQ libraries, from a wheel's
  METADATA or, where PyPI has no wheel, the sdist's PKG-INFO;
* every native library a bitsandbytes wheel ships and the kernels inside it (NVIDIA
  architectures, AMD gfx targets), from the wheel itself (downloaded once; the result
  is cached by sha256 so a re-run downloads nothing it has).

The methods return TOML text; ``scripts/update_compat_db.py`` diffs it
against ``compat_db/derived/`` and writes only with ``--write``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bnb_provision.core.cuda import variant_of_cuda
from bnb_provision.core.tomlio import toml_table
from bnb_provision.db.pypi import PYPI, PypiReader
from bnb_provision.db.wheels import (
    cuda_from_requires,
    macos_floors,
    platform_of_wheel,
    python_tags,
)

__all__ = ["PYPI", "STACK_PACKAGES", "Deriver", "document", "platform_of_wheel", "table"]

_TORCH_HEADER: Final = (
    "# DERIVED by scripts/update_compat_db.py from the PyPI simple API (PEP 691)",
    "# and wheel METADATA (PEP 658).",
    "# Do not edit by hand: re-run the script. source: https://pypi.org/simple/torch/",
    "",
)
_BNB_HEADER: Final = (
    "# DERIVED by scripts/update_compat_db.py from the PyPI simple API (PEP 691)",
    "# and the wheels",
    "# themselves (NVIDIA kernels read from each native library's fatbin sections,",
    "# AMD gfx targets from its HIP offload bundles).",
    "# Do not edit by hand. source: https://pypi.org/simple/bitsandbytes/",
    "",
)
_TORCH_REQ_RE: Final = re.compile(r"^torch\s*(\(?[^;]*\)?)\s*(;.*)?$")
_REQ_RE: Final = re.compile(r"^([A-Za-z0-9_.-]+)\s*(\(?[^;]*\)?)\s*(;.*)?$")
_PINNED: Final = ("torch", "accelerate", "bitsandbytes", "transformers")
_STACK_NAMES: Final = (*_PINNED, "compressed-tensors")
STACK_PACKAGES: Final = {
    "gptqmodel": "5.0.0",  # the first whose PKG-INFO lists its requirements
    "autoawq": "0.2.0",
    "llmcompressor": "0.5.0",
    "compressed-tensors": "0.9.0",
}
"""The stack libraries derived/stacks.toml covers, each from its lowest version."""

Files = list[dict[str, Any]]


def table(header: str, row: Mapping[str, object]) -> str:
    """One ``[[header]]`` block; keys whose value is None are left out."""
    return toml_table(header, {k: v for k, v in row.items() if v is not None})


def document(header: tuple[str, ...], blocks: list[str]) -> str:
    """A derived file: its comment lines, then its blocks."""
    return "".join(f"{line}\n" for line in header) + "".join(blocks)


def _parse(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _final(text: str) -> bool:
    v = _parse(text)
    return v is not None and not v.is_prerelease and not v.is_devrelease and v.local is None


def _wheels(files: Files) -> Files:
    return [f for f in files if f["filename"].endswith(".whl") and not f["yanked"]]


def _uploaded(files: Files) -> str:
    return str(min(f["upload_time"] for f in files))[:10]


def _torch_requirement(requires_dist: list[str]) -> str:
    """bitsandbytes' own torch requirement (not an extra's), normalised; "" when none."""
    torch_req = ""
    for req in requires_dist:
        m = _TORCH_REQ_RE.match(req)
        if m and not (m.group(2) and "extra" in m.group(2)):
            torch_req = m.group(1).strip("() ")
    return str(SpecifierSet(torch_req)) if torch_req else ""


def _own_torch(requires_dist: list[str]) -> str | None:
    """The package's own requirement on torch (not an extra's), normalised; None when its
    metadata names no torch."""
    for text in requires_dist:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == "torch" and "extra" not in str(req.marker or ""):
            return str(req.specifier)
    return None


def _macos(files: Files) -> list[str] | None:
    return macos_floors(f["filename"] for f in files) or None


def _bnb_macos(files: Files) -> str | None:
    """The oldest macOS of a bitsandbytes release's arm64 wheel (one ``py3`` wheel)."""
    floors = macos_floors(f["filename"] for f in files)
    return min((f.partition("=")[2] for f in floors), key=Version, default=None)


def _newest_per_minor(rel: dict[str, Files], lowest: str) -> list[Version]:
    """The newest final release of each minor from ``lowest`` on, oldest first."""
    newest: dict[tuple[int, int], Version] = {}
    for x, files in rel.items():
        v = _parse(x)
        if v is None or v.is_prerelease or v < Version(lowest) or not files:
            continue
        if all(f["yanked"] for f in files):
            continue
        key = (v.major, v.minor)
        newest[key] = max(newest.get(key, v), v)
    return sorted(newest.values())


def _requirements(requires_dist: list[str], names: tuple[str, ...]) -> list[str]:
    """The package's own requirements on ``names`` (not an extra's), sorted by name."""
    reqs = {}
    for req in requires_dist:
        m = _REQ_RE.match(req)
        if not m or (m.group(3) and "extra" in m.group(3)):
            continue
        name = m.group(1).lower().replace("_", "-")
        if name in names:
            reqs[name] = str(SpecifierSet(m.group(2).strip("() ")))
    return [f"{k}{s}" for k, s in sorted(reqs.items())]


class Deriver(PypiReader):
    """Writes the files of ``compat_db/derived/`` from what :class:`PypiReader` reads."""

    # -- torch ------------------------------------------------------------

    def torch_toml(self, lowest: str = "2.1.0") -> str:
        rel = self.releases("torch")
        blocks = []
        for v in sorted(Version(x) for x in rel if _final(x)):
            files = _wheels(rel[str(v)])
            if v >= Version(lowest) and files:
                blocks.append(table("[[release]]", self._torch_row(v, files)))
        return document(_TORCH_HEADER, blocks)

    def _pypi_builds(self, files: Files) -> list[str]:
        """``PLATFORM=VARIANT`` for each platform: the CUDA build PyPI serves there."""
        by_plat: dict[str, Files] = {}
        for f in files:
            p = platform_of_wheel(f["filename"])
            if p:
                by_plat.setdefault(p, []).append(f)
        pypi: list[str] = []
        for plat in sorted(by_plat):
            newest = max(by_plat[plat], key=lambda f: f["filename"])
            cuda = cuda_from_requires(
                self.wheel_metadata(newest)["requires_dist"],
                plat,
                python_tags([newest["filename"]])[-1].rstrip("t"),
            )
            pypi.append(f"{plat}=" + (variant_of_cuda(cuda) if cuda else "cpu"))
        return pypi

    def _torch_row(self, v: Version, files: Files) -> dict[str, object]:
        return {
            "version": str(v),
            "date": _uploaded(files),
            "requires_python": files[0]["requires_python"],
            "pythons": python_tags(f["filename"] for f in files),
            "pypi": self._pypi_builds(files),
            "macos": _macos(files),
        }

    # -- bitsandbytes ----------------------------------------------------

    def bnb_toml(
        self,
        lowest: str = "0.39.0",
        libraries: bool = True,
        kept: Sequence[Mapping[str, object]] = (),
    ) -> str:
        """The bitsandbytes file. Without ``libraries`` no wheel is downloaded: the library
        rows come from ``kept`` (the rows of the file already written), release by release."""
        rel = self.releases("bitsandbytes")
        blocks = []
        for v in sorted(Version(x) for x in rel if _parse(x) is not None):
            files = _wheels(rel[str(v)])
            if v.is_prerelease or v < Version(lowest) or not files:
                continue
            blocks.append(table("[[release]]", self._bnb_row(v, files)))
            if libraries:
                blocks += self._library_blocks(v, files)
            else:
                blocks += [table("[[library]]", row) for row in kept if row["bnb"] == str(v)]
        return document(_BNB_HEADER, blocks)

    def _bnb_row(self, v: Version, files: Files) -> dict[str, object]:
        info = self.wheel_metadata(max(files, key=lambda f: f["filename"]))
        return {
            "version": str(v),
            "date": _uploaded(files),
            "requires_python": info.get("requires_python") or "",
            "torch": _torch_requirement(info["requires_dist"]),
            "platforms": sorted({p for f in files if (p := platform_of_wheel(f["filename"]))}),
            "macos": _bnb_macos(files),
        }

    def _library_blocks(self, v: Version, files: Files) -> list[str]:
        return [
            table(
                "[[library]]", {"bnb": str(v), "platform": platform_of_wheel(f["filename"]), **lib}
            )
            for f in sorted(files, key=lambda f: f["filename"])
            for lib in self.wheel_libraries(f)
        ]

    # -- torchvision, torchaudio --------------------------------------------------

    def companion_toml(self, package: str, lowest: str) -> str:
        """Every final release: the torch its metadata requires (what it was built for),
        Requires-Python and the oldest macOS of its arm64 wheels."""
        rel = self.releases(package)
        header = (
            f"# DERIVED by scripts/update_compat_db.py (every {package} release: the torch",
            "# its wheel METADATA requires). Do not edit by hand.",
            f"# source: https://pypi.org/simple/{package}/",
            "",
        )
        blocks = []
        for v in sorted(Version(x) for x in rel if _final(x)):
            files = _wheels(rel[str(v)])
            if v < Version(lowest) or not files:
                continue
            info = self.wheel_metadata(max(files, key=lambda f: f["filename"]))
            row = {
                "package": package,
                "version": str(v),
                "date": _uploaded(files),
                "requires_python": info.get("requires_python") or "",
                "torch": _own_torch(info["requires_dist"]),
                "macos": _macos(files),
            }
            blocks.append(table("[[release]]", row))
        return document(header, blocks)

    # -- Hugging Face and friends ------------------------------------------------

    def package_toml(self, package: str, lowest: str, extra_names: tuple[str, ...] = ()) -> str:
        """Latest patch of each minor: Requires-Python and torch/bitsandbytes requirements."""
        rel = self.releases(package)
        header = (
            f"# DERIVED by scripts/update_compat_db.py (latest patch of each {package} minor).",
            f"# source: https://pypi.org/simple/{package}/",
            "",
        )
        blocks = []
        for v in _newest_per_minor(rel, lowest):
            wheels = [f for f in rel[str(v)] if f["filename"].endswith(".whl")]
            if not wheels:
                continue
            info = self.wheel_metadata(wheels[0])
            row = {
                "package": package,
                "version": str(v),
                "date": _uploaded(rel[str(v)]),
                "requires_python": info.get("requires_python") or "",
                "requires": _requirements(info["requires_dist"], (*_PINNED, *extra_names)),
            }
            blocks.append(table("[[release]]", row))
        return document(header, blocks)

    # -- the other quantization stacks ---------------------------------------------

    def stacks_toml(self, packages: Mapping[str, str]) -> str:
        """``derived/stacks.toml``: the latest patch of each minor of ``packages`` ({name:
        lowest version}): Requires-Python, the torch / Hugging Face requirements, and
        which kinds of files PyPI has (a package with no wheel is built from source). The
        metadata comes from a wheel where there is one, else from the sdist's PKG-INFO."""
        header = (
            "# DERIVED by scripts/update_compat_db.py: the latest patch of each minor of the",
            "# GPTQ / AWQ libraries and their successors, with their own requirements",
            "# (Requires-Dist of a wheel, or of the sdist's PKG-INFO where PyPI has no wheel).",
            "# Do not edit by hand. sources: "
            + ", ".join(f"https://pypi.org/simple/{p}/" for p in packages),
            "",
        )
        blocks = []
        for package, lowest in packages.items():
            rel = self.releases(package)
            blocks += [
                table("[[release]]", self._stack_row(package, v, rel[str(v)]))
                for v in _newest_per_minor(rel, lowest)
            ]
        return document(header, blocks)

    def _stack_row(self, package: str, v: Version, files: Files) -> dict[str, object]:
        live = [f for f in files if not f["yanked"]]
        wheels = [f for f in live if f["filename"].endswith(".whl")]
        if wheels:
            info = self.wheel_metadata(max(wheels, key=lambda f: f["filename"]))
        else:
            sdist = next(f for f in live if f["filename"].endswith((".tar.gz", ".zip")))
            info = self.sdist_metadata(sdist)
        return {
            "package": package,
            "version": str(v),
            "date": _uploaded(files),
            "requires_python": info.get("requires_python") or "",
            "requires": _requirements(info["requires_dist"], _STACK_NAMES),
            "dists": sorted({"wheel" if f in wheels else "sdist" for f in live}),
        }
