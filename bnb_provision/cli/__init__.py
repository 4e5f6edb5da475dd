"""The command line: click commands and the text they print; the only user of click."""

from bnb_provision.cli.main import cli, main

__all__ = ["cli", "main"]
