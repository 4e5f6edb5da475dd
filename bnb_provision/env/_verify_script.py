# Runs inside the *target* environment: imports torch and bitsandbytes and runs
# small real kernels on every visible GPU (or on bitsandbytes' CPU backend when
# there is none). Prints one JSON object as its last line. Standard library + the
# environment's own torch/bitsandbytes only; Python 3.8 and later.
import json
import os
import sys
import time
import traceback

if sys.path and sys.path[0] in ("", os.getcwd()):
    sys.path.pop(0)

RESULT = {
    "schema": "bnb-provision.verify/1",
    "ok": False,
    "python": sys.version.split()[0],
    "import": {},
    "devices": [],
}


def emit():
    print(json.dumps(RESULT))


def loaded_library(bnb):
    for path in ("/proc/self/maps",):
        try:
            with open(path) as fh:
                for line in fh:
                    if "libbitsandbytes_" in line:
                        return os.path.basename(line.split()[-1])
        except OSError:
            pass
    lib = getattr(getattr(bnb, "cextension", None), "lib", None)
    for attr in ("_name", "name"):
        value = getattr(getattr(lib, "_lib", lib), attr, None)
        if isinstance(value, str):
            return os.path.basename(value)
    return None


def failure(exc):
    """What a report says about an exception: its last line, its type, where it was."""
    return {
        "error": (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:500],
        "type": type(exc).__name__,
        "trace": traceback.format_exc().splitlines()[-3:],
    }


def check(name, fn, device):
    start = time.perf_counter()
    entry = {"check": name, "ok": False}
    try:
        detail = fn()
        entry["ok"] = True
        if detail:
            entry.update(detail)
    except Exception as exc:
        entry.update(failure(exc))
    entry["seconds"] = round(time.perf_counter() - start, 4)
    device["checks"].append(entry)
    return entry["ok"]


def rel_err(a, b):
    return float((a.float() - b.float()).norm() / (b.float().norm() + 1e-12))


def within(err, bound, what):
    """The check's detail when ``err`` is within ``bound``; NaN never is."""
    if not err <= bound:
        raise AssertionError("%s error %.4f > %s" % (what, err, bound))
    return {"rel_error": round(err, 4), "bound": bound}


def import_stack():
    """torch, bitsandbytes and its functional module; None (and the reason) when one fails."""
    t0 = time.perf_counter()
    try:
        import torch
    except Exception as exc:
        RESULT["import"] = {"ok": False, "error": "import torch: %s" % exc}
        return None
    RESULT["import"]["torch"] = torch.__version__
    RESULT["import"]["torch_cuda"] = torch.version.cuda
    try:
        import bitsandbytes as bnb
        from bitsandbytes import functional
    except Exception as exc:
        RESULT["import"].update(ok=False, error="import bitsandbytes: %s" % exc)
        return None
    RESULT["import"].update(
        ok=True,
        bitsandbytes=bnb.__version__,
        library=loaded_library(bnb),
        seconds=round(time.perf_counter() - t0, 3),
        bnb_cuda_version=os.environ.get("BNB_CUDA_VERSION"),
    )
    return torch, bnb, functional


def open_device(torch, dev, d):
    """Describe the device in ``d``; returns its compute capability (None on CPU), dtype."""
    if dev.startswith("cuda"):
        idx = int(dev.split(":")[1])
        torch.cuda.set_device(idx)
        cc = torch.cuda.get_device_capability(idx)
        d["name"] = torch.cuda.get_device_name(idx)
        d["compute_capability"] = "%d.%d" % cc
        dtype = torch.bfloat16 if cc >= (8, 0) else torch.float16
    else:
        cc = None
        d["name"] = "CPU backend"
        dtype = torch.float32
    d["compute_dtype"] = str(dtype).replace("torch.", "")
    return cc, dtype


def sync(torch, dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def roundtrip(torch, functional, a, dev, kind, bound):
    def run():
        q, state = functional.quantize_4bit(a, quant_type=kind)
        back = functional.dequantize_4bit(q, state, quant_type=kind)
        sync(torch, dev)
        return within(rel_err(back, a), bound, "%s round trip" % kind)

    return run


def linear4bit(torch, bnb, dev, dtype):
    def run():
        ref = torch.nn.Linear(512, 512, bias=False).to(dev, dtype)
        layer = bnb.nn.Linear4bit(512, 512, bias=False, compute_dtype=dtype, quant_type="nf4")
        layer.weight = bnb.nn.Params4bit(
            ref.weight.data.to("cpu").contiguous(), requires_grad=False, quant_type="nf4"
        )
        layer = layer.to(dev)
        x = torch.randn(16, 512, device=dev, dtype=dtype)
        with torch.no_grad():
            return within(rel_err(layer(x), ref(x)), 0.2, "Linear4bit forward")

    return run


def int8(torch, bnb, dev):
    def run():
        half = torch.float16 if dev.startswith("cuda") else torch.float32
        ref = torch.nn.Linear(512, 512, bias=False).to(dev, half)
        layer = bnb.nn.Linear8bitLt(512, 512, bias=False, has_fp16_weights=False, threshold=6.0)
        layer.weight = bnb.nn.Int8Params(
            ref.weight.data.to("cpu").contiguous(), requires_grad=False, has_fp16_weights=False
        )
        layer = layer.to(dev)
        x = torch.randn(16, 512, device=dev, dtype=half)
        with torch.no_grad():
            return within(rel_err(layer(x), ref(x)), 0.1, "LLM.int8() matmul")

    return run


def adam8bit(torch, bnb, dev):
    def run():
        p = torch.nn.Parameter(torch.randn(4096, 64, device=dev))
        before = p.detach().clone()
        opt = bnb.optim.Adam8bit([p], lr=1e-3, min_8bit_size=1)
        p.grad = torch.randn_like(p)
        opt.step()
        sync(torch, dev)
        moved = float((p.detach() - before).abs().mean())
        if not torch.isfinite(p).all() or moved == 0.0:
            raise AssertionError("Adam8bit step left the parameter unchanged or non-finite")
        return {"mean_update": moved}

    return run


def verify_device(torch, bnb, functional, dev, d):
    cc, dtype = open_device(torch, dev, d)
    a = torch.randn(1024, 1024, device=dev, dtype=dtype)
    check("nf4_roundtrip", roundtrip(torch, functional, a, dev, "nf4", 0.15), d)
    check("fp4_roundtrip", roundtrip(torch, functional, a, dev, "fp4", 0.25), d)
    check("linear4bit_forward", linear4bit(torch, bnb, dev, dtype), d)
    if cc is not None and cc < (7, 5):
        skipped = "LLM.int8() needs compute capability 7.5"
        d["checks"].append({"check": "llm_int8_matmul", "ok": True, "skipped": skipped})
    else:
        check("llm_int8_matmul", int8(torch, bnb, dev), d)
    check("adam8bit_step", adam8bit(torch, bnb, dev), d)


def main():
    stack = import_stack()
    if stack is None:
        return
    torch, bnb, functional = stack
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    devices = ["cuda:%d" % i for i in range(torch.cuda.device_count())] if cuda else ["cpu"]
    for dev in devices:
        d = {"device": dev, "checks": []}
        RESULT["devices"].append(d)
        start = time.perf_counter()
        try:
            verify_device(torch, bnb, functional, dev, d)
        except Exception as exc:  # the device itself failed (no kernel image for torch)
            entry = {"check": "device_setup", "ok": False}
            entry.update(failure(exc))
            entry["seconds"] = round(time.perf_counter() - start, 4)
            d["checks"].append(entry)
        d["ok"] = all(c["ok"] for c in d["checks"])
    RESULT["ok"] = bool(RESULT["devices"]) and all(d["ok"] for d in RESULT["devices"])


def broken(exc):
    """main() stopped half-way: record why, and close what it left open."""
    error = "%s: %s" % (type(exc).__name__, failure(exc)["error"])
    if "ok" not in RESULT["import"]:
        RESULT["import"].update(ok=False, error="import: %s" % error)
    for d in RESULT["devices"]:
        d.setdefault("ok", False)
    RESULT["ok"] = False
    RESULT["error"] = error


try:
    main()
except BaseException as exc:
    broken(exc)
    if not isinstance(exc, Exception):
        raise
finally:
    emit()
