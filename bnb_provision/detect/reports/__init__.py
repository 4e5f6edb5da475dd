"""Reports as input: what users paste into issues, read into a machine snapshot.

The output of ``nvidia-smi`` (table and ``-q``), ``python -m torch.utils.collect_env``,
``python -m bitsandbytes``, ``transformers env`` / ``accelerate env`` and ``pip list`` /
``pip freeze``, one or several in one paste, become a ``bnb-provision.machine/1``
snapshot plus what had to be assumed and the facts the sections disagree on.

One module per tool family holds its pure parser (text in, :class:`.facts.Facts` out);
:mod:`.split` finds the sections, :mod:`.merge` merges them, :mod:`.reports` writes the
snapshot, and :mod:`.reader` is the one reader of files and standard input.
"""

from __future__ import annotations

from bnb_provision.detect.reports.reader import MAX_REPORT_BYTES, load_report
from bnb_provision.detect.reports.reports import Report, read_report

__all__ = ["MAX_REPORT_BYTES", "Report", "load_report", "read_report"]
