"""Reports safe to paste into a public issue: one redaction for the text and the JSON.

What goes: the home folder (as ``$HOME`` names it and as it really is, when a symbolic link
leads there), the user's names, the host's names, credentials in URLs
(``https://user:token@host``, ``?token=...``), the values of environment variables named
like a secret (``*TOKEN*``, ``*KEY*``, ``*SECRET*``, ``*PASSWORD*``; ``HF_TOKEN``) wherever
they appear, the values of the variables the environment probe read, and GPU UUIDs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bnb_provision.detect.machine import Machine

__all__ = ["REDACTED", "Redactor", "is_secret_name", "redactor_for"]

REDACTED: Final = "<redacted>"
_SECRET_WORDS: Final = r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH"  # noqa: S105
_SECRET_NAME: Final = re.compile(_SECRET_WORDS, re.IGNORECASE)
_URL_CREDENTIALS: Final = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]+@")
_QUERY_SECRET: Final = re.compile(
    rf"(?P<key>[?&;][^=&\s#'\"]*(?:{_SECRET_WORDS}|SIG|SIGNATURE)[^=&\s#'\"]*=)[^&\s#'\"<>]+",
    re.IGNORECASE,
)
_ASSIGNED_SECRET: Final = re.compile(  # NAME=value, as a shell or a log prints a variable
    rf"(?P<name>\b[A-Z0-9_]*(?:{_SECRET_WORDS})[A-Z0-9_]*)(?P<eq>=)(?P<q>['\"]?)[^\s'\"]+(?P=q)"
)
_HF_TOKEN: Final = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
_GPU_UUID: Final = re.compile(r"GPU-[0-9a-f]{8}-[0-9a-f-]{27}")
_SHORTEST: Final = 3  # shorter names and values would redact ordinary words


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says its value is a secret."""
    return bool(_SECRET_NAME.search(name))


@dataclass(frozen=True, kw_only=True, slots=True)
class Redactor:
    """What to take out of a report; :meth:`text` and :meth:`data` apply the same rules."""

    homes: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    values: tuple[str, ...] = ()

    def text(self, text: str) -> str:
        text = _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", text)
        text = _QUERY_SECRET.sub(rf"\g<key>{REDACTED}", text)
        text = _ASSIGNED_SECRET.sub(rf"\g<name>\g<eq>{REDACTED}", text)
        text = _HF_TOKEN.sub(REDACTED, text)
        for value in _longest_first(self.values):
            text = text.replace(value, REDACTED)
        for home in _longest_first(self.homes):
            text = re.sub(re.escape(home.rstrip("/\\")) + r"(?![\w.-])", "~", text)
        for user in _longest_first(self.users):
            text = re.sub(rf"(?<![\w.-]){re.escape(user)}(?![\w-])", "<user>", text)
        for host in _longest_first(self.hosts):
            text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", "<host>", text)
        return _GPU_UUID.sub("GPU-<uuid>", text)

    def data(self, value: object) -> object:
        """``value`` (JSON data) with every string, keys included, redacted as text."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _longest_first(items: tuple[str, ...]) -> list[str]:
    kept = {s for s in items if len(s) >= _SHORTEST and s.strip("/\\")}
    return sorted(kept, key=len, reverse=True)


def redactor_for(
    machine: Machine | None,
    *,
    environ: Mapping[str, str],
    home: str,
    user: str,
    hosts: tuple[str, ...],
) -> Redactor:
    """The redactor for a report of ``machine`` made in the process environment ``environ``.

    The home is taken as given and as resolved (a home reached through a symbolic link
    appears both ways in paths); every value of the variables the probe read goes, as do
    the values of secret-named variables of this process."""
    homes = {home, environ.get("HOME", ""), environ.get("USERPROFILE", "")}
    homes |= {os.path.realpath(h) for h in homes if h}
    users = {user, *(environ.get(k, "") for k in ("USER", "LOGNAME", "USERNAME"))}
    names = set(hosts) | {h.split(".")[0] for h in hosts}
    values = {v for k, v in environ.items() if is_secret_name(k)}
    if machine is not None and machine.env is not None:
        values |= {v for _, v in machine.env.variables}
    return Redactor(
        homes=tuple(h for h in homes if h and h not in ("/", "\\")),
        users=tuple(u for u in users if u),
        hosts=tuple(h for h in names if h and h != "localhost"),
        values=tuple(values),
    )
