"""Derive compat DB facts from real artifacts on PyPI.

* release lists, upload dates, ``Requires-Python`` and ``Requires-Dist`` from
  PyPI's JSON simple API;
* the platforms each release has wheels for, from the file names;
* the CUDA build PyPI serves per platform for torch, from each wheel's
  METADATA (PEP 658 ``.metadata`` files: no wheel download);
* every native library a bitsandbytes wheel ships and the kernels inside it (NVIDIA
  architectures, AMD gfx targets), from the wheel itself (downloaded once; the result
  is cached by sha256 so a re-run downloads nothing it has).

The methods return TOML text; ``scripts/update_compat_db.py`` diffs it
against ``compat_db/derived/`` and writes only with ``--write``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from bnb_provision.core.cuda import variant_of_cuda
from bnb_provision.core.tomlio import toml_table
from bnb_provision.db.pypi import PYPI, PypiReader
from bnb_provision.db.wheels import cuda_from_requires, platform_of_wheel, python_tags

__all__ = ["PYPI", "Deriver", "document", "platform_of_wheel", "table"]

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
        }

    # -- bitsandbytes ----------------------------------------------------

    def bnb_toml(self, lowest: str = "0.39.0", libraries: bool = True) -> str:
        rel = self.releases("bitsandbytes")
        blocks = []
        for v in sorted(Version(x) for x in rel if _parse(x) is not None):
            files = _wheels(rel[str(v)])
            if v.is_prerelease or v < Version(lowest) or not files:
                continue
            blocks.append(table("[[release]]", self._bnb_row(v, files)))
            if libraries:
                blocks += self._library_blocks(v, files)
        return document(_BNB_HEADER, blocks)

    def _bnb_row(self, v: Version, files: Files) -> dict[str, object]:
        info = self.wheel_metadata(max(files, key=lambda f: f["filename"]))
        return {
            "version": str(v),
            "date": _uploaded(files),
            "requires_python": info.get("requires_python") or "",
            "torch": _torch_requirement(info["requires_dist"]),
            "platforms": sorted({p for f in files if (p := platform_of_wheel(f["filename"]))}),
        }

    def _library_blocks(self, v: Version, files: Files) -> list[str]:
        return [
            table(
                "[[library]]", {"bnb": str(v), "platform": platform_of_wheel(f["filename"]), **lib}
            )
            for f in sorted(files, key=lambda f: f["filename"])
            for lib in self.wheel_libraries(f)
        ]

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
