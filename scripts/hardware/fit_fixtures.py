"""The measurement table behind ``bnb-provision fit``, and how far its estimates are from it.

    python scripts/hardware/fit_fixtures.py build  # raw runs -> fixtures/fit/measurements.json
    python scripts/hardware/fit_fixtures.py table     # markdown: estimate vs measured, per record

``build`` reads the JSON that ``fit_calibrate.py`` wrote on the GPU machine (kept in
tests/fixtures/fit/raw/) and flattens it: one record per load, inference, QLoRA setting and
emulated card, in MiB above what the process held before the model. ``build`` prints a diff and
writes only with ``--write``. ``compare()`` is what tests/test_fit.py checks.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bnb_provision.fit.api import FitRequest, fit  # noqa: E402
from bnb_provision.fit.arch import Prequantized, arch_from_config  # noqa: E402
from bnb_provision.fit.estimate import Workload  # noqa: E402
from bnb_provision.fit.gpus import GpuTarget  # noqa: E402
from bnb_provision.fit.model import ModelSpec  # noqa: E402
from bnb_provision.fit.rules import load_rules  # noqa: E402
from bnb_provision.fit.safetensors import TensorInfo  # noqa: E402
from bnb_provision.fit.weights import plan_weights  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "fit"
RAW = FIXTURES / "raw"
TABLE = FIXTURES / "measurements.json"
MIB = 1024 * 1024


def _mib(v: float) -> int:
    return round(v / MIB)


def _base(model: str, run: str, m: dict[str, Any]) -> dict[str, Any]:
    cfg = m["checkpoint"]["config"]
    return {"run": run, "model": model, "model_type": cfg.get("model_type"), "config": m["source"]}


def _loads(model: str, run: str, m: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for ld in m["loads"]:
        b = ld["before_allocated"]
        pre = bool(ld.get("prequantized"))
        out.append(
            {
                **_base(model, run, m),
                "id": f"{run}/{model}/load/{ld['quant']}{'-prequantized' if pre else ''}",
                "mode": "load",
                "quant": ld["quant"],
                "double_quant": ld["double_quant"],
                "prequantized": pre,
                "measured": {
                    "peak_allocated_mib": _mib(ld["peak_allocated"] - b),
                    "peak_reserved_mib": _mib(ld["peak_reserved"] - b),
                    "settled_mib": _mib(ld["settled_allocated"] - b),
                    "nontorch_mib": _mib(ld["nontorch"]),
                },
            }
        )
    base = m["loads"][0]["before_allocated"] if m["loads"] else 0
    out.extend(
        {
            **_base(model, run, m),
            "id": f"{run}/{model}/inference/{inf['seq']}x{inf['batch']}",
            "mode": "inference",
            "quant": "nf4",
            "double_quant": False,
            "seq": inf["seq"],
            "batch": inf["batch"],
            "measured": {
                "peak_allocated_mib": _mib(inf["peak_allocated"] - base),
                "nontorch_mib": _mib(inf["nontorch"]),
            },
        }
        for inf in m["inference"]
    )
    return out


def _setting(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s[k] for k in ("seq", "batch", "checkpointing", "optimizer")}


def _qlora(model: str, run: str, m: dict[str, Any]) -> list[dict[str, Any]]:
    q = m.get("qlora_load")
    if not q:
        return []
    b = q["before_allocated"]
    out = []
    for s in m["qlora"]:
        if "peak_allocated" not in s:
            continue
        tag = (
            f"{s['seq']}x{s['batch']}-{'ckpt' if s['checkpointing'] else 'nockpt'}-{s['optimizer']}"
        )
        out.append(
            {
                **_base(model, run, m),
                "id": f"{run}/{model}/qlora/{tag}",
                "mode": "qlora",
                "quant": "nf4",
                "double_quant": True,
                "lora_r": 16,
                "lora_dropout": q.get("lora_dropout", 0.05),
                **_setting(s),
                "measured": {
                    "peak_allocated_mib": _mib(s["peak_allocated"] - b),
                    "peak_reserved_mib": _mib(s["peak_reserved"] - b),
                    "static_mib": _mib(s["static_allocated"] - b),
                    "nontorch_mib": _mib(s["nontorch"]),
                },
            }
        )
    return out


def _cards(model: str, run: str, m: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(m["cards"]):
        qlora = c["mode"] == "qlora"
        before = (m["qlora_load"] if qlora else m["loads"][0])["before_allocated"]
        rec = {
            **_base(model, run, m),
            "id": f"{run}/{model}/card{i}/{c['mode']}-{c['card_gib']}GiB",
            "mode": "card",
            "card_mode": c["mode"],
            "quant": "nf4" if qlora else c["quant"],
            "double_quant": qlora,
            "card_gib": c["card_gib"],
            "measured": {
                "torch_cap_mib": _mib(c["torch_cap"] - before),
                "nontorch_mib": _mib(c["nontorch"]),
                "outcome": c["outcome"],
            },
        }
        if qlora:
            rec.update(_setting(c))
        out.append(rec)
    return out


def build() -> dict[str, Any]:
    records: list[dict[str, Any]] = []
    versions = None
    for raw in sorted(RAW.glob("*.json")):
        data = json.loads(raw.read_text())
        versions = versions or data["versions"]
        for model, m in data["models"].items():
            for part in (_loads, _qlora, _cards):
                records.extend(part(model, raw.stem, m))
    return {"schema": "bnb-provision.fit-measurements/1", "versions": versions, "records": records}


# -- estimates --------------------------------------------------------------------------------


@functools.cache
def _raw(run: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RAW / f"{run}.json").read_text())
    return data


@functools.cache
def checkpoint(run: str, model: str) -> ModelSpec:
    m = _raw(run)["models"][model]["checkpoint"]
    tensors = tuple(
        TensorInfo(name=k, shape=tuple(v[1]), dtype=v[0]) for k, v in m["tensors"].items()
    )
    arch = arch_from_config(m["config"], model)
    return ModelSpec(arch=arch, tensors=tensors, source=model, tensors_from="safetensors headers")


def prequantized(spec: ModelSpec) -> ModelSpec:
    """The checkpoint save_pretrained writes after a 4-bit (nf4) load: codes, absmax, quant map."""
    rules = load_rules().for_versions()
    plan = plan_weights(
        spec.tensors,
        spec.arch,
        rules,
        quant="nf4",
        double_quant=False,
        dtype="bfloat16",
        skip_modules=None,
    )
    quantized = {p.name for p in plan.tensors if p.role == "quantized"}
    out: list[TensorInfo] = []
    for t in spec.tensors:
        if t.name not in quantized:
            out.append(t)
            continue
        blocks = -(-t.numel // rules.blocksize_4bit)
        out += [
            TensorInfo(name=t.name, shape=(-(-t.numel // 2), 1), dtype="U8"),
            TensorInfo(name=f"{t.name}.absmax", shape=(blocks,), dtype="F32"),
            TensorInfo(name=f"{t.name}.quant_map", shape=(16,), dtype="F32"),
            TensorInfo(name=f"{t.name}.quant_state.bitsandbytes__nf4", shape=(100,), dtype="U8"),
        ]
    pre = Prequantized(quant="nf4", double_quant=False, skip_modules=None)
    return replace(spec, arch=replace(spec.arch, prequantized=pre), tensors=tuple(out))


def _workload(rec: dict[str, Any]) -> Workload:
    mode = rec.get("card_mode", rec["mode"])
    if mode == "load":
        return Workload(mode="load")
    return Workload(
        mode=mode,
        seq=rec["seq"],
        batch=rec["batch"],
        gradient_checkpointing=rec.get("checkpointing", True),
        optimizer=rec.get("optimizer", "paged_adamw_8bit"),
    )


def compare(rec: dict[str, Any]) -> dict[str, Any]:
    """The estimate for one record, beside what was measured."""
    spec = checkpoint(rec["run"], rec["model"])
    if rec.get("prequantized"):
        spec = prequantized(spec)
    w = _workload(rec)
    req = FitRequest(model=spec, quant=rec["quant"], double_quant=rec["double_quant"], workload=w)
    if rec["mode"] != "card":
        peak = fit(req).peak
        est = peak.torch_total - peak.allocator  # what torch allocated, without fragmentation
        if w.mode == "qlora":  # the cuBLAS workspace is allocated memory too
            est += load_rules().calibration["cublas_workspace_mib"] * MIB
        measured = rec["measured"]["peak_allocated_mib"]
        return {
            "estimate_mib": _mib(est),
            "measured_mib": measured,
            "error": _mib(est) / measured - 1,
        }
    cal = load_rules().calibration
    ctx = cal["context_train_mib"] if w.mode == "qlora" else cal["context_load_mib"]
    free = rec["measured"]["torch_cap_mib"] + round(ctx)
    gpu = GpuTarget(index=0, name="", total_mib=free, free_mib=free, source="emulated")
    verdict = fit(replace(req, gpus=(gpu,))).fits[0]
    outcome = {"fits": "fits", "oom": "out_of_memory", "device_map_refused": "device_map_refuses"}
    return {
        "verdict": verdict.verdict,
        "measured": outcome.get(rec["measured"]["outcome"], rec["measured"]["outcome"]),
        "margin_mib": verdict.margin_mib,
        "tight": verdict.tight,
        "right": verdict.verdict == outcome.get(rec["measured"]["outcome"]),
    }


def table(data: dict[str, Any]) -> str:
    lines = ["| record | estimate MiB | measured MiB | error |", "|---|---:|---:|---:|"]
    cards = [
        "| record | torch cap MiB | verdict | measured | margin MiB |",
        "|---|---:|---|---|---:|",
    ]
    for rec in data["records"]:
        c = compare(rec)
        if rec["mode"] == "card":
            mark = "" if c["right"] else " **wrong**"
            cards.append(
                f"| {rec['id']} | {rec['measured']['torch_cap_mib']} | {c['verdict']}"
                f"{' (tight)' if c['tight'] else ''}{mark} | {c['measured']} | {c['margin_mib']} |"
            )
        else:
            lines.append(
                f"| {rec['id']} | {c['estimate_mib']} | {c['measured_mib']} | {c['error']:+.1%} |"
            )
    return "\n".join(lines) + "\n\n" + "\n".join(cards) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["build", "table"])
    ap.add_argument("--write", action="store_true", help="build: write the table (else a diff)")
    args = ap.parse_args()
    if args.what == "table":
        print(table(json.loads(TABLE.read_text())))
        return
    new = json.dumps(build(), indent=1) + "\n"
    old = TABLE.read_text() if TABLE.exists() else ""
    sys.stdout.writelines(
        difflib.unified_diff(old.splitlines(True), new.splitlines(True), "old", "new", n=1)
    )
    if args.write:
        TABLE.write_text(new)


if __name__ == "__main__":
    main()
