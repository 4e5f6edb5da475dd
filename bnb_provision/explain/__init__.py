"""explain and triage: error text -> ranked causes, from a message catalog derived from the
libraries' own release files.

* :mod:`~bnb_provision.explain.sources`, :mod:`~.extract`, :mod:`~.templates`,
  :mod:`~.derive` - the catalog (``compat_db/derived/messages.toml``), derived from the
  release files on PyPI by ``scripts/update_messages.py``;
* :mod:`~.curated`, :mod:`~.catalog` - the curated causes, rows and signatures on top
  (``compat_db/explain.toml``), loaded and checked;
* :mod:`~.text`, :mod:`~.match`, :mod:`~.facts`, :mod:`~.engine`, :mod:`~.values` - a text
  read: messages and signatures matched in linear time, facts, causes ranked;
* :mod:`~.explanation` - :func:`explain_text` (findings, schema ``bnb-provision.doctor/1``);
* :mod:`~.triage` - its ``triage`` (an issue body: causes, machine, plan, commands;
  schema ``bnb-provision.triage/1``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

__all__ = ["Explanation", "Triage", "explain_text", "load_catalog"]

_WHERE: Final = {
    "Explanation": "bnb_provision.explain.explanation",
    "explain_text": "bnb_provision.explain.explanation",
    "Triage": "bnb_provision.explain.triage",
    "load_catalog": "bnb_provision.explain.catalog",
}

if TYPE_CHECKING:
    from bnb_provision.explain.catalog import load_catalog
    from bnb_provision.explain.explanation import Explanation, explain_text
    from bnb_provision.explain.triage import Triage


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (explain does not load the planner)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bnb_provision.explain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
