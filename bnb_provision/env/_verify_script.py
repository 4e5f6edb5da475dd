# Runs inside the *target* environment: imports torch and bitsandbytes and runs
# small real kernels on every visible GPU (or on bitsandbytes' CPU backend when
# there is none). Prints one JSON object as its last line. Standard library + the
# environment's own torch/bitsandbytes only.
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


def check(name, fn, device):
    start = time.perf_counter()
    entry = {"check": name, "ok": False}
    try:
        detail = fn()
        entry["ok"] = True
        if detail:
            entry.update(detail)
    except Exception as exc:
        entry["error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:500]
        entry["type"] = type(exc).__name__
        entry["trace"] = traceback.format_exc().splitlines()[-3:]
    entry["seconds"] = round(time.perf_counter() - start, 4)
    device["checks"].append(entry)
    return entry["ok"]


def rel_err(a, b):
    return float((a.float() - b.float()).norm() / (b.float().norm() + 1e-12))


def main():
    t0 = time.perf_counter()
    try:
        import torch
    except Exception as exc:
        RESULT["import"] = {"ok": False, "error": "import torch: %s" % exc}
        return
    RESULT["import"]["torch"] = torch.__version__
    RESULT["import"]["torch_cuda"] = torch.version.cuda
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as F
    except Exception as exc:
        RESULT["import"].update(ok=False, error="import bitsandbytes: %s" % exc)
        return
    RESULT["import"].update(
        ok=True,
        bitsandbytes=bnb.__version__,
        library=loaded_library(bnb),
        seconds=round(time.perf_counter() - t0, 3),
        bnb_cuda_version=os.environ.get("BNB_CUDA_VERSION"),
    )
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    devices = ["cuda:%d" % i for i in range(torch.cuda.device_count())] if cuda else ["cpu"]
    for dev in devices:
        d = {"device": dev, "checks": []}
        RESULT["devices"].append(d)
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
        A = torch.randn(1024, 1024, device=dev, dtype=dtype)

        def roundtrip(kind, bound):
            def run():
                q, state = F.quantize_4bit(A, quant_type=kind)
                back = F.dequantize_4bit(q, state, quant_type=kind)
                if dev.startswith("cuda"):
                    torch.cuda.synchronize()
                err = rel_err(back, A)
                if err > bound:
                    raise AssertionError("%s round trip error %.4f > %.2f" % (kind, err, bound))
                return {"rel_error": round(err, 4), "bound": bound}

            return run

        check("nf4_roundtrip", roundtrip("nf4", 0.15), d)
        check("fp4_roundtrip", roundtrip("fp4", 0.25), d)

        def linear4bit():
            ref = torch.nn.Linear(512, 512, bias=False).to(dev, dtype)
            layer = bnb.nn.Linear4bit(512, 512, bias=False, compute_dtype=dtype, quant_type="nf4")
            layer.weight = bnb.nn.Params4bit(
                ref.weight.data.to("cpu").contiguous(), requires_grad=False, quant_type="nf4"
            )
            layer = layer.to(dev)
            x = torch.randn(16, 512, device=dev, dtype=dtype)
            with torch.no_grad():
                err = rel_err(layer(x), ref(x))
            if err > 0.2:
                raise AssertionError("Linear4bit forward error %.4f > 0.2" % err)
            return {"rel_error": round(err, 4), "bound": 0.2}

        check("linear4bit_forward", linear4bit, d)

        if cc is not None and cc < (7, 5):
            d["checks"].append(
                {
                    "check": "llm_int8_matmul",
                    "ok": True,
                    "skipped": "LLM.int8() needs compute capability 7.5",
                }
            )
        else:

            def int8():
                half = torch.float16 if dev.startswith("cuda") else torch.float32
                ref = torch.nn.Linear(512, 512, bias=False).to(dev, half)
                layer = bnb.nn.Linear8bitLt(
                    512, 512, bias=False, has_fp16_weights=False, threshold=6.0
                )
                layer.weight = bnb.nn.Int8Params(
                    ref.weight.data.to("cpu").contiguous(),
                    requires_grad=False,
                    has_fp16_weights=False,
                )
                layer = layer.to(dev)
                x = torch.randn(16, 512, device=dev, dtype=half)
                with torch.no_grad():
                    err = rel_err(layer(x), ref(x))
                if err > 0.1:
                    raise AssertionError("LLM.int8() matmul error %.4f > 0.1" % err)
                return {"rel_error": round(err, 4), "bound": 0.1}

            check("llm_int8_matmul", int8, d)

        def optimizer():
            p = torch.nn.Parameter(torch.randn(4096, 64, device=dev))
            before = p.detach().clone()
            opt = bnb.optim.Adam8bit([p], lr=1e-3, min_8bit_size=1)
            p.grad = torch.randn_like(p)
            opt.step()
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            moved = float((p.detach() - before).abs().mean())
            if not torch.isfinite(p).all() or moved == 0.0:
                raise AssertionError("Adam8bit step left the parameter unchanged or non-finite")
            return {"mean_update": moved}

        check("adam8bit_step", optimizer, d)
        d["ok"] = all(c["ok"] for c in d["checks"])
    RESULT["ok"] = bool(RESULT["devices"]) and all(d["ok"] for d in RESULT["devices"])


try:
    main()
finally:
    emit()
