"""``--torch system``: adopt a torch that is already installed (NGC containers, cluster
modules).

The new environment gets a ``.pth`` file that puts the system environment's
site-packages after its own, and only bitsandbytes and the Hugging Face packages that
are missing, or too old for the DB's floors, are installed into it; everything else the
system provides is kept out of uv's resolution by an override.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

from packaging.version import Version

from bnb_provision.core import process, uv
from bnb_provision.errors import TargetEnvError

if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.target import EnvInfo
    from bnb_provision.env.options import BuildOptions, Log
    from bnb_provision.plan.model import Plan

__all__ = ["SYSTEM_PTH", "adopt_system_torch", "satisfies_floors"]

SYSTEM_PTH: Final = "bnb_provision_system_site.pth"
_PURELIB: Final = "import json, sysconfig; print(json.dumps(sysconfig.get_paths()['purelib']))"
_SITE_DIRS: Final = (
    "import json, site, sysconfig; p = sysconfig.get_paths(); "
    "print(json.dumps(sorted({p['purelib'], p['platlib']})))"
)


def _ask(python: Path, code: str) -> object:
    """What ``python -c code`` prints as JSON on its last line."""
    done = process.run([str(python), "-c", code], timeout=60)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError, RecursionError) as exc:  # a sitecustomize printing
        raise TargetEnvError(
            f"{python} did not report its site-packages (it printed {done.stdout[-200:]!r})"
        ) from exc


def _see_system_site(py: Path, system: Path) -> None:
    """A ``.pth`` in the new environment that appends the system's site-packages."""
    site = _ask(py, _PURELIB)
    listed = _ask(system, _SITE_DIRS)
    if not isinstance(site, str) or not isinstance(listed, list):
        raise TargetEnvError(f"{system} or {py} reported its site-packages in an unknown form")
    dirs = [str(d) for d in listed if Path(str(d)).is_dir()]
    Path(site, SYSTEM_PTH).write_text("\n".join(dirs) + "\n", encoding="utf-8")


def satisfies_floors(db: CompatDB, plan: Plan, name: str, version: str) -> bool:
    """Whether a system package ``name`` at ``version`` may stay as it is: it meets every
    floor the DB sets for it, and what the DB says its version needs holds for the
    versions the plan installs (transformers 5 needs bitsandbytes >= 0.46.1)."""
    v = Version(version)
    pinned = {n: Version(p) for n, p in plan.packages}
    for c in db.hf_constraints:
        for n, spec in c.requires:
            if n == name and not spec.contains(v, prereleases=True):
                return False
        if c.package == name and c.versions.contains(v, prereleases=True):
            for n, spec in c.requires:
                if n in pinned and not spec.contains(pinned[n], prereleases=True):
                    return False
    return True


def _wanted(plan: Plan, db: CompatDB, have: dict[str, str]) -> list[str]:
    """What to install: bitsandbytes, and each planned package the system lacks or holds
    too old a version of."""
    wanted = []
    for name, version in plan.packages:
        if name == "torch":
            continue
        if (
            name == "bitsandbytes"
            or have.get(name) is None
            or (
                Version(have[name]) < Version(version)
                and not satisfies_floors(db, plan, name, have[name])
            )
        ):
            wanted.append(f"{name}=={version}")
    return wanted


def _install_args(py: Path, overrides: Path, reqs: Path, opts: BuildOptions) -> list[str]:
    return [
        uv.find_uv(),
        "pip",
        "install",
        "--python",
        str(py),
        "--override",
        str(overrides),
        "-r",
        str(reqs),
        "--no-python-downloads",
        *uv.source_args(offline=opts.offline, find_links=opts.find_links),
        *([] if opts.offline else ["--default-index", opts.index_url]),
    ]


def adopt_system_torch(
    real: Path, plan: Plan, opts: BuildOptions, db: CompatDB, log: Log, system_env: EnvInfo
) -> Path:
    """Build ``real`` on the system torch; returns the requirements it installed."""
    from bnb_provision.detect.target import find_env_python

    system = opts.torch_system
    assert system is not None
    process.run(uv.venv_step(str(system), real), timeout=600)
    py = find_env_python(real).absolute()
    workdir = real / ".bnb-provision"
    workdir.mkdir(exist_ok=True)
    _see_system_site(py, system)
    have = dict(system_env.packages)
    wanted = _wanted(plan, db, have)
    keep = {w.split("==")[0] for w in wanted}
    overrides = workdir / "provided-by-system.txt"
    overrides.write_text(
        "".join(f'{n} ; python_version < "0"\n' for n in sorted(have) if n not in keep),
        encoding="utf-8",
    )
    reqs = workdir / "requirements.in"
    reqs.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    torch = system_env.torch.version if system_env.torch else "torch"
    log(f"adopting {torch} from {system}; installing {', '.join(wanted)}")
    process.run(
        _install_args(py, overrides, reqs, opts),
        timeout=uv.UV_TIMEOUT,
        capture=not opts.progress,
    )
    return reqs
