"""Human-readable text for the CLI. Pure: values in, strings out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from bnb_provision.detect.fatbin import describe_archs

if TYPE_CHECKING:
    from bnb_provision.detect.machine import Machine
    from bnb_provision.detect.reports import Report
    from bnb_provision.detect.target import BnbLibrary, EnvInfo
    from bnb_provision.doctor.findings import Finding
    from bnb_provision.explain.explanation import Explanation
    from bnb_provision.plan.analysis import BnbLoadReport
    from bnb_provision.plan.model import Plan, Rung

__all__ = [
    "render_findings",
    "render_machine",
    "render_plan",
    "render_report",
    "render_verify",
    "table",
]


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    all_rows = ([header] if header else []) + list(rows)
    if not all_rows:
        return ""
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for n, r in enumerate(all_rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if header and n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _kv(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def render_machine(m: Machine, report: BnbLoadReport | None = None) -> str:
    """What detect shows: the host, the GPUs, the target environment, the loader's choice."""
    out = [_kv(_host_rows(m))]
    if m.gpus:
        gpu_rows = [
            (
                str(g.index),
                g.name,
                g.cc_text or "?",
                g.sm or "?",
                f"{g.memory_total_mib} MiB" if g.memory_total_mib is not None else "?",
                "MIG" if g.mig_mode else "",
            )
            for g in m.gpus
        ]
        out.append("\n" + table(gpu_rows, ("GPU", "name", "CC", "arch", "memory", "")))
    if m.accelerators:
        rows = [
            (
                str(a.index),
                a.vendor,
                a.name,
                a.target or "?",
                f"{a.memory_total_mib} MiB" if a.memory_total_mib is not None else "?",
            )
            for a in m.accelerators
        ]
        out.append("\n" + table(rows, ("GPU", "vendor", "name", "target", "memory")))
    if m.env is not None:
        out.append("\nTarget environment\n" + _kv(_env_rows(m.env)))
        if m.env.bitsandbytes and m.env.bitsandbytes.libraries:
            out.append("\n" + _library_table(m.env.bitsandbytes.libraries, report))
    if report is not None:
        lines = _loader_lines(report)
        if lines:
            out.append("\n" + "\n".join(lines))
    if m.warnings:
        out.append("\nWarnings\n" + "\n".join(f"  - {w}" for w in m.warnings))
    return "\n".join(out)


def _host_rows(m: Machine) -> list[tuple[str, str]]:
    o = m.os
    sysline = f"{o.system} {o.arch}"
    if o.distro:
        sysline += f" ({o.distro})"
    rows = [("system", sysline)]
    if o.release:
        rows.append(("kernel/release", o.release))
    if o.libc:
        rows.append(("libc", o.libc))
    if o.wsl:
        rows.append(("WSL", "WSL2"))
    if o.containers:
        rows.append(("container", ", ".join(o.containers)))
    if o.msvc_runtime is not None:
        rows.append(
            (
                "MSVC runtime",
                "vcruntime140.dll present" if o.msvc_runtime else "vcruntime140.dll MISSING",
            )
        )
    if o.apple_silicon is not None:
        rows.append(("Apple silicon", "yes" if o.apple_silicon else "no"))
    rows.append(("python (tool)", f"{m.python.version}  {m.python.executable or ''}".rstrip()))
    if m.nvidia:
        rows.append(("NVIDIA driver", f"{m.nvidia.driver}  (via {m.nvidia.source})"))
        rows.append(("CUDA (driver max)", m.nvidia.cuda_driver or "unknown"))
    else:
        rows.append(("NVIDIA driver", "none"))
    if m.cuda_visible_devices is not None:
        rows.append(("CUDA_VISIBLE_DEVICES", m.cuda_visible_devices or "(empty: no GPU visible)"))
    return rows


def _env_rows(e: EnvInfo) -> list[tuple[str, str]]:
    env_rows = [("python", f"{e.python.version}  {e.python.executable or ''}".rstrip())]
    if e.torch:
        env_rows.append(
            (
                "torch",
                f"{e.torch.version}  ({e.torch.variant}"
                + (f", CUDA {e.torch.cuda})" if e.torch.cuda else ")"),
            )
        )
    else:
        env_rows.append(("torch", "not installed"))
    for name in ("bitsandbytes", "transformers", "accelerate", "peft", "trl", "triton"):
        v = e.version_of(name)
        if v or name in {"bitsandbytes", "transformers"}:
            env_rows.append((name, v or "not installed"))
    if e.quant_libs:
        env_rows.append(("other quant libs", ", ".join(f"{n} {v}" for n, v in e.quant_libs)))
    for k, v in e.variables:
        if k.startswith("BNB_"):
            env_rows.append((k, v))
    return env_rows


def _library_table(libraries: tuple[BnbLibrary, ...], report: BnbLoadReport | None) -> str:
    lib_rows = []
    for lib in libraries:
        if lib.kernels is None:
            archs = "-" if not lib.backend.startswith("cuda") else "unreadable"
        else:
            archs = describe_archs(lib.kernels.sass, lib.kernels.ptx)
            if lib.kernels.rel_ptx:
                archs += (
                    "  (+relocatable PTX "
                    + " ".join(f"compute_{a}" for a in lib.kernels.rel_ptx)
                    + ")"
                )
        mark = "<- loads" if report and report.choice and report.choice.chosen == lib.file else ""
        lib_rows.append((lib.file, archs, mark))
    return table(lib_rows, ("bitsandbytes library", "kernels (SASS / PTX)", ""))


def _loader_lines(report: BnbLoadReport) -> list[str]:
    lines = []
    if report.choice is not None:
        c = report.choice
        lines.append(
            f"bitsandbytes loader ({report.rule} rule): "
            + (f"loads {c.chosen}" if c.chosen else f"finds no library ({c.wanted})")
            + f" - {c.reason}"
        )
    return lines + list(report.notes)


def render_plan(plan: Plan, *, all_rejected: bool = False) -> str:
    from bnb_provision.plan.rejections import group_rejections

    t = plan.target
    head = f"Plan for {t.platform}, Python {plan.python}"
    if t.os == "macos" and t.os_version is not None:
        head = f"Plan for {t.platform} (macOS {t.os_version}), Python {plan.python}"
    if t.gpus:
        head += ", " + ", ".join(f"{n} (sm_{cc[0]}{cc[1]})" for n, cc in t.gpus)
    if t.accelerators:
        head += ", " + ", ".join(f"{a.name} ({a.target or '?'})" for a in t.accelerators)
    if t.driver:
        head += f", driver {t.driver_text}"
    elif t.gpus:
        head += ", no driver given"
    tc = plan.torch
    torch_src = "PyPI" if tc.channel == "pypi" else (tc.index_url or "")
    rows = [("torch", tc.label, f"from {torch_src}")]
    b = plan.bitsandbytes
    loads = f"loads {b.library}" if b.library else ""
    if b.index_url:
        loads += f" (from {b.index_url})"
    rows.append(("bitsandbytes", str(b.version), loads))
    rows += [(n, v, "") for n, v in plan.packages if n not in ("torch", "bitsandbytes")]
    out = [head, "", *_driver_lines(plan), table(rows, ("package", "version", "")), ""]
    if plan.verified:
        out.append(f"Verified: {plan.verified.evidence} ({plan.verified.source})\n")
    out.append("Why")
    out += [f"  - {r}" for r in plan.reasons]
    if plan.warnings:
        out.append("\nWarnings")
        out += [f"  - {w}" for w in plan.warnings]
    if plan.rejected:
        every = group_rejections(plan.rejected, shown=None)
        shown = every if all_rejected else group_rejections(plan.rejected)[:8]
        out.append("\nRejected alternatives")
        out += [f"  - {line}" for line in shown]
        if shown != every:
            out.append(f"  ({len(plan.rejected)} rejected in all: --all-rejected lists every one)")
    if plan.snippet:
        out.append("\nBitsAndBytesConfig for this machine")
        out += ["  " + line if line else "" for line in plan.snippet.rstrip().splitlines()]
    return "\n".join(out)


def _driver_lines(plan: Plan) -> list[str]:
    """The driver floor first; without a driver version, the ladder of older floors."""
    if plan.driver_floor is None:
        return []
    if plan.target.driver is not None:
        return [f"Driver floor: this plan runs on driver >= {plan.driver_floor}", ""]
    from bnb_provision.plan.model import Rung

    top = Rung(driver=plan.driver_floor, torch=plan.torch, bitsandbytes=plan.bitsandbytes)
    rows = [(f">= {r.driver}", *_rung(r)) for r in (top, *plan.ladder)]
    rows[0] = (*rows[0][:3], "<- this plan")
    lowest = (top, *plan.ladder)[-1].driver
    return [
        f"Driver floor: this plan needs driver >= {plan.driver_floor} (no driver was given)",
        "Driver ladder (what each older driver gets instead):",
        *("  " + line for line in table(rows).splitlines()),
        f"  below {lowest}: no combination runs",
        "",
    ]


def _rung(r: Rung) -> tuple[str, str, str]:
    src = "PyPI" if r.torch.channel == "pypi" else (r.torch.index_url or "")
    lib = r.bitsandbytes.library or "-"
    return (f"torch {r.torch.label} ({src})", f"bitsandbytes {r.bitsandbytes.version} ({lib})", "")


def render_report(report: Report) -> str:
    """What ``--from`` read, what it assumed, and where the report disagrees with itself:
    printed before the plan or the findings."""
    sections = ", ".join(f"{s.tool} (line {s.line})" for s in report.sections)
    out = [f"Read from {report.label}: {sections}"]
    f = report.facts
    if f.bnb_lib:
        loaded = f"bitsandbytes' loader picked {f.bnb_lib}"
        out.append(
            f"  {loaded}" + (f", then fell back to {f.bnb_fallback}" if f.bnb_fallback else "")
        )
    if report.assumptions:
        out.append("Assumed")
        out += [f"  - {a}" for a in report.assumptions]
    if report.conflicts:
        out.append("The report disagrees with itself")
        out += [f"  - {c.describe()}" for c in report.conflicts]
    return "\n".join(out) + "\n"


_FACT_LABELS: Final = (
    ("os", "OS"),
    ("python", "Python"),
    ("torch", "torch"),
    ("torch_cuda", "torch's CUDA"),
    ("bnb", "bitsandbytes"),
    ("bnb_range", "bitsandbytes (from its messages)"),
    ("bnb_lib", "bitsandbytes library"),
    ("cuda", "CUDA on the system"),
    ("driver", "driver"),
    ("driver_cuda", "driver's CUDA"),
    ("gpu", "GPU"),
    ("compute_capability", "compute capability"),
    ("library", "raised in"),
    ("extension", "extension"),
    ("stack", "stack"),
)


def render_facts(explanation: Explanation) -> str:
    """``facts: OS linux, Python 3.10, ...``: what explain read from the text."""
    facts = explanation.facts
    shown = [f"{label} {facts[name].value}" for name, label in _FACT_LABELS if name in facts]
    return "facts: " + (", ".join(shown) if shown else "none found in the text")


def render_findings(findings: tuple[Finding, ...], header: str) -> str:
    if not findings:
        return header + "\n\nNo problems found."
    out = [header, ""]
    marks = {"error": "ERROR", "warning": "WARN ", "info": "info "}
    for f in findings:
        out.append(f"{marks[f.severity]}  [{f.category}] {f.title}")
        out += [f"         - {e}" for e in f.evidence]
        if f.fix:
            out.append(f"         fix: {f.fix}")
        if f.source:
            out.append(f"         see: {f.source}")
        out.append("")
    errors = sum(1 for f in findings if f.severity == "error")
    out.append(f"{errors} error(s), {len(findings) - errors} other finding(s)")
    return "\n".join(out)


def render_verify(data: dict[str, Any]) -> str:
    imp = data.get("import", {})
    head = [
        (
            f"torch {imp.get('torch', '?')} (CUDA {imp.get('torch_cuda') or 'none'}), "
            f"bitsandbytes {imp.get('bitsandbytes', '?')}, "
            f"library {imp.get('library') or 'unknown'}"
        )
    ]
    if not imp.get("ok"):
        head.append(f"FAILED at import: {imp.get('error')}")
    for d in data.get("devices", []):
        rows = []
        for c in d.get("checks", []):
            status = "ok" if c.get("ok") else "FAIL"
            if c.get("skipped"):
                status = "skipped"
            detail = (
                c.get("skipped")
                or c.get("error")
                or (
                    f"rel. error {c['rel_error']} (bound {c.get('bound', 'none')})"
                    if "rel_error" in c
                    else ""
                )
            )
            rows.append((c.get("check", "?"), status, f"{c.get('seconds', 0):.3f} s", str(detail)))
        head.append(
            f"\n{d.get('device')}: {d.get('name')} "
            + (
                f"(compute capability {d['compute_capability']}) "
                if d.get("compute_capability")
                else ""
            )
            + f"compute dtype {d.get('compute_dtype')}"
        )
        head.append(table(rows, ("check", "result", "time", "")))
    head.append("\nPASS" if data.get("ok") else "\nFAIL")
    return "\n".join(head)
