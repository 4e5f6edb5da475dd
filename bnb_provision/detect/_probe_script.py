# Runs inside the *target* interpreter (any Python >= 3.8) and prints one JSON
# object on stdout. It never imports torch or bitsandbytes: it reads their
# installed files through importlib.metadata. Keep it standard-library only.
import json
import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    sys.path.pop(0)

try:
    import importlib.metadata as md
except ImportError:  # Python < 3.8
    print(json.dumps({"error": "Python %s has no importlib.metadata" % sys.version.split()[0]}))
    sys.exit(0)

VARS = (
    "BNB_CUDA_VERSION",
    "BNB_ROCM_VERSION",
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "CUDA_HOME",
    "CUDA_PATH",
    "CONDA_PREFIX",
    "PYTORCH_CUDA_ALLOC_CONF",
    "PATH",
)


def norm(name):
    return name.lower().replace("_", "-").replace(".", "-")


def dist_dir(dist):
    path = getattr(dist, "_path", None)
    return str(path) if path is not None else None


def mtime(dist):
    d = dist_dir(dist)
    try:
        return os.stat(d).st_mtime if d else None
    except OSError:
        return None


def read_text(dist, rel):
    try:
        p = dist.locate_file(rel)
        with open(str(p), encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def libs_in(folder, prefix):
    out = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return out
    for n in names:
        if n.startswith(prefix) and (n.endswith((".so", ".dll", ".dylib")) or ".so." in n):
            out.append(os.path.join(folder, n))
    return out


packages = {}
dists = {}
for dist in md.distributions():
    try:
        name = dist.metadata["Name"]
    except Exception:
        continue
    if not name:
        continue
    key = norm(name)
    if key not in packages:
        packages[key] = dist.version
        dists[key] = dist

result = {
    "python": {
        "version": "%d.%d.%d" % sys.version_info[:3],
        "executable": sys.executable,
        "implementation": sys.implementation.name,
    },
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "platform": sys.platform,
    "packages": packages,
    "installed_at": {k: mtime(dists[k]) for k in ("torch", "bitsandbytes") if k in dists},
    "variables": {k: os.environ[k] for k in VARS if k in os.environ},
    "torch": None,
    "bitsandbytes": None,
    "cudart": [],
}

if "torch" in dists:
    d = dists["torch"]
    result["torch"] = {
        "version_py": read_text(d, "torch/version.py"),
        "location": str(d.locate_file("torch")),
    }
    libdir = str(d.locate_file(os.path.join("torch", "lib")))
    result["cudart"] += libs_in(libdir, "libcudart") + libs_in(libdir, "cudart64")

site = None
for key in ("torch", "bitsandbytes", "pip"):
    if key in dists:
        site = str(dists[key].locate_file(""))
        break
if site:
    for sub in (
        ("nvidia", "cuda_runtime", "lib"),
        ("nvidia", "cu13", "lib"),
        ("nvidia", "cuda_runtime", "bin"),
    ):
        result["cudart"] += libs_in(os.path.join(site, *sub), "libcudart") + libs_in(
            os.path.join(site, *sub), "cudart64"
        )

if "bitsandbytes" in dists:
    d = dists["bitsandbytes"]
    folder = str(d.locate_file("bitsandbytes"))
    direct = (
        read_text(d, os.path.join(os.path.basename(dist_dir(d) or ""), "direct_url.json"))
        if dist_dir(d)
        else None
    )
    installer = (
        read_text(d, os.path.join(os.path.basename(dist_dir(d) or ""), "INSTALLER"))
        if dist_dir(d)
        else None
    )
    result["bitsandbytes"] = {
        "version": d.version,
        "location": folder,
        "libraries": libs_in(folder, "libbitsandbytes"),
        "direct_url": direct,
        "installer": (installer or "").strip() or None,
    }

print(json.dumps(result))
