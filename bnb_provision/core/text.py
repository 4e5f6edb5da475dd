"""Text files as other machines and other shells write them.

UTF-8 with or without a byte-order mark, and UTF-16: Windows PowerShell 5's ``>`` writes
UTF-16 LE with a BOM; a UTF-16 file that lost its BOM (copied through an editor) is
recognised by its NUL bytes. Snapshots (JSON) decode strictly; pasted reports decode
with the replacement character, since one stray byte in a console capture must not hide
the rest of it.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["TextDecodeError", "decode_text", "is_digits"]

_SNIFF: Final = 4096  # bytes looked at to tell BOM-less UTF-16 from UTF-8


class TextDecodeError(ValueError):
    """Bytes that are neither UTF-8 nor UTF-16; ``start`` and ``reason`` as in
    :class:`UnicodeDecodeError`."""

    def __init__(self, start: int, reason: str) -> None:
        super().__init__(f"byte {start}: {reason}")
        self.start = start
        self.reason = reason


def _encoding(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"  # the BOM says which byte order, and is dropped
    head = raw[: _SNIFF - _SNIFF % 2]
    if len(head) >= 2 and len(head) % 2 == 0 and b"\x00" in head:  # noqa: PLR2004
        odd, even = head[1::2], head[0::2]
        if odd.count(0) == len(odd) and even.count(0) < len(even):
            return "utf-16-le"
        if even.count(0) == len(even) and odd.count(0) < len(odd):
            return "utf-16-be"
    return "utf-8-sig"


def decode_text(raw: bytes, *, errors: Literal["strict", "replace"] = "strict") -> str:
    """The text of ``raw``: UTF-8 (BOM or not) or UTF-16 (BOM, or BOM-less by its NULs).

    With ``errors="strict"`` undecodable bytes raise :class:`TextDecodeError`; with
    ``"replace"`` they become U+FFFD and this never raises.
    """
    encoding = _encoding(raw)
    if encoding != "utf-8-sig" and len(raw) % 2:
        raw = raw[:-1] if errors == "replace" else raw
    try:
        return raw.decode(encoding, errors=errors)
    except UnicodeDecodeError as exc:
        raise TextDecodeError(exc.start, exc.reason) from exc


def is_digits(text: str) -> bool:
    """Whether ``text`` is ASCII digits, all that ``int()`` takes: ``str.isdigit`` is true
    for ``²`` and other digits ``int()`` refuses."""
    return text.isascii() and text.isdigit()
