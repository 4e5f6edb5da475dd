"""explain and triage: error text -> ranked causes, from a message catalog derived from the
libraries' own release files."""
