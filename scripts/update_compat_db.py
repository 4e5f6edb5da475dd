#!/usr/bin/env python3
"""Regenerate the derived parts of compat_db/ from PyPI and the wheels themselves.

Prints a unified diff against compat_db/derived/ and writes only with --write.
Downloads are cached by sha256 (default ~/.cache/bnb-provision/derive), so a
re-run downloads nothing it already has. Run it where bnb-provision is importable with the
``derive`` extra (``pip install -e '.[derive]'`` in this checkout: zstandard reads the
compressed HIP offload bundles of bitsandbytes' ROCm libraries on Python < 3.14):

    python scripts/update_compat_db.py            # show what changed
    python scripts/update_compat_db.py --write    # and write it
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

import click
import requests

from bnb_provision.core.files import write_atomic
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db.derive import PYPI, STACK_PACKAGES, Deriver

DERIVED = Path(__file__).resolve().parent.parent / "compat_db" / "derived"


def _kept_libraries(path: Path) -> list[dict[str, object]]:
    """The library rows of the derived bitsandbytes file already written (for --no-libraries)."""
    if not path.exists():
        return []
    return list(toml_loads(path.read_text(encoding="utf-8")).get("library", []))


@click.command()
@click.option("--write", is_flag=True, help="Write the files (default: only show the diff).")
@click.option(
    "--only",
    type=click.Choice(["torch", "bitsandbytes", "hf", "companions", "stacks"]),
    multiple=True,
    help="Regenerate only these parts.",
)
@click.option(
    "--no-libraries",
    is_flag=True,
    help="Download no bitsandbytes wheel: keep the library rows already in the derived file.",
)
@click.option(
    "--cache",
    type=click.Path(path_type=Path),
    default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "bnb-provision"
    / "derive",
    show_default=True,
)
@click.option(
    "--index",
    default=PYPI,
    show_default=True,
    help="The package index to read (a PEP 691 JSON simple API).",
)
@click.option(
    "--derived",
    type=click.Path(file_okay=False, path_type=Path),
    default=DERIVED,
    help="The folder of derived files to compare with and write (default: compat_db/derived).",
)
def main(
    write: bool, only: tuple[str, ...], no_libraries: bool, cache: Path, index: str, derived: Path
) -> None:
    """Regenerate compat_db/derived/*.toml from PyPI."""
    session = requests.Session()
    session.headers["User-Agent"] = "bnb-provision-update-compat-db"
    d = Deriver(cache=cache, session=session, log=lambda m: click.echo(m, err=True), index=index)
    parts = set(only) or {"torch", "bitsandbytes", "hf", "companions", "stacks"}
    outputs: dict[str, str] = {}
    if "torch" in parts:
        outputs["torch.toml"] = d.torch_toml()
    if "bitsandbytes" in parts:
        outputs["bitsandbytes.toml"] = d.bnb_toml(
            libraries=not no_libraries, kept=_kept_libraries(derived / "bitsandbytes.toml")
        )
    if "companions" in parts:
        outputs["torchvision.toml"] = d.companion_toml("torchvision", "0.16.0")
        outputs["torchaudio.toml"] = d.companion_toml("torchaudio", "2.1.0")
    if "hf" in parts:
        outputs["transformers.toml"] = d.package_toml("transformers", "4.30.0")
        outputs["accelerate.toml"] = d.package_toml("accelerate", "0.20.0")
        outputs["peft.toml"] = d.package_toml("peft", "0.4.0")
        outputs["trl.toml"] = d.package_toml("trl", "0.7.0")
    if "stacks" in parts:
        outputs["stacks.toml"] = d.stacks_toml(STACK_PACKAGES)
    changed = 0
    for name, new in outputs.items():
        path = derived / name
        old = path.read_text() if path.exists() else ""
        if old == new:
            continue
        changed += 1
        sys.stdout.writelines(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                f"a/compat_db/derived/{name}",
                f"b/compat_db/derived/{name}",
            )
        )
        if write:
            write_atomic(path, new)
    click.echo(f"{changed} file(s) {'written' if write else 'would change'}", err=True)


if __name__ == "__main__":
    main()
