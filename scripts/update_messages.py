#!/usr/bin/env python3
"""Regenerate compat_db/derived/messages.toml: every error and warning message the stack's
libraries can print, from their release files on PyPI.

Prints a unified diff against the shipped file and writes only with --write. Only the
Python members needed are read out of each wheel (HTTP range requests on the zip's
central directory), cached by the file's sha256 (default ~/.cache/bnb-provision/messages),
so a re-run downloads nothing it already has. Then lists the messages no curated row of
compat_db/explain.toml maps to a cause, so that curation can keep up.

    python scripts/update_messages.py            # show what changed
    python scripts/update_messages.py --write    # and write it
"""

from __future__ import annotations

import difflib
import os
import sys
from collections import Counter
from pathlib import Path

import click
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bnb_provision.core.files import write_atomic  # noqa: E402
from bnb_provision.explain.derive import derive_catalog, render_catalog  # noqa: E402
from bnb_provision.explain.sources import PypiFiles  # noqa: E402

CATALOG = ROOT / "compat_db" / "derived" / "messages.toml"


def _pypi(cache: Path) -> PypiFiles:
    session = requests.Session()
    session.headers["User-Agent"] = "bnb-provision-update-messages"
    return PypiFiles(cache=cache, session=session, log=lambda m: click.echo(m, err=True))


def _unmapped(text: str) -> None:
    """The catalog's messages that no curated row maps, per library."""
    from bnb_provision.explain.catalog import load_catalog_text

    catalog = load_catalog_text(text)
    loose = [m for m in catalog.messages if not catalog.causes_of(m)]
    click.echo(
        f"{len(catalog.messages) - len(loose)} of {len(catalog.messages)} messages map to "
        "a curated cause; unmapped per library: "
        + ", ".join(f"{k} {v}" for k, v in sorted(Counter(m.library for m in loose).items())),
        err=True,
    )
    for m in loose:
        click.echo(f"  unmapped  {m.library:12} {m.releases:24} {m.template[:110]}", err=True)


@click.command()
@click.option("--write", is_flag=True, help="Write the file (default: only show the diff).")
@click.option("--unmapped/--no-unmapped", default=True, help="List messages no row maps.")
@click.option(
    "--cache",
    type=click.Path(path_type=Path),
    default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "bnb-provision"
    / "messages",
    show_default=True,
)
def main(write: bool, unmapped: bool, cache: Path) -> None:
    """Regenerate compat_db/derived/messages.toml from PyPI."""
    examined = derive_catalog(lambda: _pypi(cache), lambda m: click.echo(m, err=True))
    new = render_catalog(examined)
    old = CATALOG.read_text(encoding="utf-8") if CATALOG.exists() else ""
    for e in examined:
        click.echo(
            f"{e.spec.name}: {len(e.rows)} messages from {len(e.releases)} releases", err=True
        )
    if old != new:
        sys.stdout.writelines(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                "a/compat_db/derived/messages.toml",
                "b/compat_db/derived/messages.toml",
            )
        )
        if write:
            write_atomic(CATALOG, new)
    click.echo(
        f"messages.toml {'unchanged' if old == new else 'written' if write else 'would change'}",
        err=True,
    )
    if unmapped:
        _unmapped(new)


if __name__ == "__main__":
    main()
