"""A pylock.toml as a pip-installable requirements.txt with the same versions and hashes.

Where packages come from: pip has no per-package index, and ``--extra-index-url`` would
let pip and uv look up *every* package on the PyTorch index. So the PyTorch index is
never named as an index. Each package the plan takes from it (torch) gets a
``--find-links`` line to its own project page there (``<torch index>/torch/``, PEP 503),
a page that lists that package's files and nothing else; every other package comes
from the default index alone. The exact local version (``torch==2.7.0+cu126``) and the
hashes pin the file.

Direct URLs (``torch @ https://...whl``) would scope it as well, but then the lock no
longer installs from a wheelhouse (``init --offline --find-links``): pip and uv both
fetch a direct URL regardless of ``--no-index``. A find-links page that cannot be
reached is skipped offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bnb_provision.errors import LockfileError

if TYPE_CHECKING:
    from bnb_provision.lock.spec import LockOptions, LockSpec

__all__ = ["index_lines", "pylock_to_requirements"]


def index_lines(spec: LockSpec, opts: LockOptions) -> list[str]:
    """The requirements file's source lines: the default index, and a find-links line per
    package taken from the PyTorch index (its project page there) or, for bitsandbytes,
    from a third-party index. None when offline."""
    if opts.offline:
        return []
    lines = [f"--index-url {opts.default_index}"]
    if spec.torch_index:
        base = spec.torch_index.rstrip("/")
        lines += [f"--find-links {base}/{name}/" for name in spec.index_packages]
    if spec.bnb_index:
        lines.append(f"--find-links {spec.bnb_index.rstrip('/')}/bitsandbytes/")
    return lines


def _hashes(pkg: dict[str, Any]) -> list[str]:
    """Every sha256 of a locked package's files (wheels, then its sdist)."""
    hashes = sorted(
        {w["hashes"]["sha256"] for w in pkg.get("wheels", []) if "sha256" in w.get("hashes", {})}
    )
    sdist = pkg.get("sdist")
    if sdist and "sha256" in sdist.get("hashes", {}):
        hashes.append(sdist["hashes"]["sha256"])
    if not hashes:
        raise LockfileError(f"{pkg['name']}: the lock holds no sha256 hash for it")
    return hashes


def pylock_to_requirements(pylock: dict[str, Any], header: str, index_lines: Sequence[str]) -> str:
    """A pip-installable requirements.txt with the lock's exact versions and hashes."""
    lines = [header.rstrip(), *index_lines, ""]
    for pkg in sorted(pylock.get("packages", []), key=lambda p: p["name"]):
        parts = [f"{pkg['name']}=={pkg['version']}"]
        parts += [f"--hash=sha256:{h}" for h in _hashes(pkg)]
        lines.append(" \\\n    ".join(parts))
    return "\n".join(lines) + "\n"
