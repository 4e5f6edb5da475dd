"""The one reader of reports: a file, or standard input for ``-``; bounded in size,
decoded as a shell wrote it (UTF-8 with or without a BOM, UTF-16 from PowerShell)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, Final

from bnb_provision.core.text import decode_text
from bnb_provision.detect.reports.reports import Report, read_report
from bnb_provision.errors import SnapshotError

__all__ = ["MAX_REPORT_BYTES", "load_report"]

MAX_REPORT_BYTES: Final = 10 * 1024 * 1024


def _read(stream: BinaryIO, where: str) -> bytes:
    raw = stream.read(MAX_REPORT_BYTES + 1)
    if len(raw) > MAX_REPORT_BYTES:
        raise SnapshotError(f"{where}: larger than {MAX_REPORT_BYTES >> 20} MiB; not a report")
    return raw


def load_report(
    source: str,
    *,
    python: str,
    python_given: bool = False,
    driver: str | None = None,
    stdin: BinaryIO | None = None,
) -> Report:
    """Read the report in file ``source`` (``-``: standard input, or ``stdin`` when
    given). See :func:`~bnb_provision.detect.reports.reports.read_report`."""
    where = f"--from {source}"
    if source == "-":
        raw = _read(stdin or sys.stdin.buffer, where)
        label = "stdin"
    else:
        path = Path(source)
        try:
            with path.open("rb") as f:
                raw = _read(f, where)
        except OSError as exc:
            raise SnapshotError(f"{where}: cannot read it ({exc.strerror or exc})") from exc
        label = path.name
    text = decode_text(raw, errors="replace")
    return read_report(text, python=python, python_given=python_given, driver=driver, label=label)
