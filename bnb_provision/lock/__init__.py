"""lock: hash-pinned lock files, as a pipeline of small stages.

``spec`` (the values the stages share) -> ``group`` (machines -> plans -> lock groups) ->
``compile`` (uv pip compile, the pylock checked) -> ``requirements`` and ``writers`` (the
table of output files, written all or none) with ``manifest`` (the typed
bnb-provision-locks.toml); ``lockset`` runs them. ``pins`` reads a lock's own pins
without loading any of that; ``bundle`` fills a wheelhouse from a pylock.toml.
"""
