"""Finding each tool's section in a pasted report.

A paste is cut into blocks at markdown fences, headings (``### System Info``,
``**Environment**``), command lines (``$ nvidia-smi``, ``!python -m bitsandbytes``,
``pip list``) and blank lines. Each block is given to the tool whose lines it holds most
of (a command line just before it decides a tie), and neighbouring blocks of one tool
(a collect_env is several blank-line-separated groups) become one section.

Lines are cleaned first: a log prefix repeated on many lines (``kohya-ss-gui  | ``,
docker compose's) and a markdown quote's ``> `` are dropped, and no line is longer than
:data:`~.facts.MAX_LINE`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Final

from bnb_provision.detect.reports.bnb_diag import is_bnb_line
from bnb_provision.detect.reports.collect_env import is_collect_env_line
from bnb_provision.detect.reports.facts import MAX_LINE
from bnb_provision.detect.reports.hf_env import is_hf_env_line
from bnb_provision.detect.reports.nvidia_smi_text import is_smi_line
from bnb_provision.detect.reports.pip_list import is_pip_show, pip_share
from bnb_provision.vocab import ReportTool

__all__ = ["Section", "clean_lines", "command_tool", "split_report"]

_LOG_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64} +\| ")
_HEADING_RE: Final = re.compile(r"#{1,6} .{0,200}|\*\*[^*]{1,200}\*\*:?")
_PROMPT_ENDS: Final = ("$", "#", ">", "\N{HEAVY RIGHT-POINTING ANGLE QUOTATION MARK ORNAMENT}", "%")
_COMMANDS: Final[tuple[tuple[str, ReportTool], ...]] = (
    ("nvidia-smi", "nvidia-smi"),
    ("python -m bitsandbytes", "bitsandbytes"),
    ("python3 -m bitsandbytes", "bitsandbytes"),
    ("python -m torch.utils.collect_env", "collect_env"),
    ("python3 -m torch.utils.collect_env", "collect_env"),
    ("python collect_env.py", "collect_env"),
    ("python3 collect_env.py", "collect_env"),
    ("transformers-cli env", "hf-env"),
    ("transformers env", "hf-env"),
    ("accelerate env", "hf-env"),
    ("diffusers-cli env", "hf-env"),
    ("trl env", "hf-env"),
    ("pip list", "pip"),
    ("pip3 list", "pip"),
    ("pip freeze", "pip"),
    ("pip3 freeze", "pip"),
    ("uv pip list", "pip"),
    ("uv pip freeze", "pip"),
    ("python -m pip list", "pip"),
    ("python -m pip freeze", "pip"),
)
_MIN_PIP_ROWS: Final = 3  # fewer rows are read only after a pip command line
_FIRST_LINES: Final[dict[ReportTool, tuple[str, ...]]] = {
    "nvidia-smi": ("NVIDIA-SMI ", "NVSMI LOG"),
    "hf-env": ("- `transformers` version:", "- `Accelerate` version:"),
    "pip": ("Package ",),
}
"""Lines that open a tool's output: a block holding one starts a new section even right
after another section of the same tool (two nvidia-smi outputs pasted one after the other)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Section:
    """A part of the report and the tool that printed it (``text`` when none did)."""

    tool: ReportTool
    text: str
    line: int  # 1-based line of the report where it starts


@dataclass(frozen=True, kw_only=True, slots=True)
class _Block:
    lines: tuple[str, ...]
    start: int
    hint: ReportTool | None


def clean_lines(text: str) -> list[str]:
    """The report's lines, cut to MAX_LINE, without a repeated log prefix or quote mark."""
    lines = [line[:MAX_LINE].rstrip() for line in text.splitlines()]
    prefixes = Counter(m.group(0) for line in lines if (m := _LOG_PREFIX_RE.match(line)))
    common = {p for p, n in prefixes.items() if n >= 3}  # noqa: PLR2004
    return [_unquote(_unprefix(line, common)) for line in lines]


def _unprefix(line: str, common: set[str]) -> str:
    m = _LOG_PREFIX_RE.match(line)
    return line[m.end() :] if m is not None and m.group(0) in common else line


def _unquote(line: str) -> str:
    if not line.startswith(">") or line.startswith(">>>"):
        return line
    return line[2:] if line.startswith("> ") else line[1:]


def command_tool(line: str) -> ReportTool | None:
    """The tool a command line runs (``$ nvidia-smi``, ``!python -m bitsandbytes``,
    ``pip list | grep torch``), or None when ``line`` is not one."""
    s = line.strip().strip("`").strip()
    if len(s) > 200:  # noqa: PLR2004
        return None
    for command, tool in _COMMANDS:
        at = s.find(command)
        if at < 0:
            continue
        before, after = s[:at].rstrip(), s[at + len(command) :]
        if after[:1] not in {"", " ", "\t", "|"}:
            continue
        if before in {"", "!", "%"} or before.endswith(_PROMPT_ENDS):
            return tool
    return None


def _blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    current: list[str] = []
    start, hint = 0, None
    for i, line in enumerate(lines):
        s = line.strip()
        tool = command_tool(s) if s else None
        boundary = not s or s.startswith(("```", "~~~")) or _HEADING_RE.fullmatch(s) is not None
        if boundary or tool is not None:
            if current:
                blocks.append(_Block(lines=tuple(current), start=start, hint=hint))
            current, start = [], i + 1
            hint = tool if tool is not None else (hint if not s else None)
            continue
        if not current:
            start = i
        current.append(line)
    if current:
        blocks.append(_Block(lines=tuple(current), start=start, hint=hint))
    return blocks


def _classify(block: _Block) -> ReportTool:
    lines = list(block.lines)
    counts: dict[ReportTool, int] = {
        "nvidia-smi": sum(is_smi_line(x) for x in lines),
        "collect_env": sum(is_collect_env_line(x) for x in lines),
        "bitsandbytes": sum(is_bnb_line(x) for x in lines),
        "hf-env": sum(is_hf_env_line(x) for x in lines),
    }
    rows, other = pip_share(lines)
    pip_hint = block.hint == "pip"
    if rows > other and (rows >= _MIN_PIP_ROWS or pip_hint or rows == len(lines) > 1):
        counts["pip"] = rows
    elif is_pip_show(lines):
        counts["pip"] = len(lines)
    if block.hint is not None and counts.get(block.hint, 0) > 0:
        return block.hint
    best = max(counts.values())
    if best == 0:
        return "text"
    return next(tool for tool, n in counts.items() if n == best)


def _opens(tool: ReportTool, block: _Block) -> bool:
    firsts = _FIRST_LINES.get(tool, ())
    return any(m in line for line in block.lines for m in firsts)


def split_report(text: str) -> tuple[Section, ...]:
    """The report's sections, in order, each with the tool that printed it."""
    blocks = _blocks(clean_lines(text))
    tools = [_classify(b) for b in blocks]
    sections: list[tuple[ReportTool, list[str], int]] = []
    for i, (block, tool) in enumerate(zip(blocks, tools, strict=True)):
        last = sections[-1] if sections else None
        joins = last is not None and last[0] == tool and not _opens(tool, block)
        if tool == "text" and last is not None and last[0] != "text":
            joins = tools[i + 1 : i + 2] == [last[0]]  # prose inside a tool's output
        if joins and last is not None:
            last[1].extend(("", *block.lines))
        else:
            sections.append((tool, list(block.lines), block.start + 1))
    return tuple(Section(tool=t, text="\n".join(ls), line=n) for t, ls, n in sections)
