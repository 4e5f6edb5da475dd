"""The compatibility database (``compat_db/``): typed rows, validation, loading, derivation.

* :mod:`~bnb_provision.db.rows` - one frozen value per row of a DB table;
* :mod:`~bnb_provision.db.model` - :class:`CompatDB`, all rows and the look-ups on them;
* :mod:`~bnb_provision.db.values` - typed readers for versions, specifiers, sources, ...;
* :mod:`~bnb_provision.db.row_parsers` - one constructor per row type;
* :mod:`~bnb_provision.db.parse` - parsed TOML to a validated :class:`CompatDB` (pure);
* :mod:`~bnb_provision.db.consistency` - facts in one table checked against another;
* :mod:`~bnb_provision.db.load` - :func:`load_db`: read the files, cache, validate;
* :mod:`~bnb_provision.db.derive` - regenerate ``compat_db/derived/`` from PyPI.
"""
