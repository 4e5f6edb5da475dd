"""Facts a careful reader takes from a pasted text: versions in paths and banners, the
GPU and its compute capability, the OS from the shape of paths, the library that raised.

Each rule is a pattern over the lower-cased text with one group, the fact it gives, a
conversion (``cuda_tag``: ``cuda121`` -> ``12.1``) and a strength; for each fact the
strongest evidence wins, the earliest among equals. Every fact keeps the line it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from bnb_provision.core.text import is_digits
from bnb_provision.explain.names import CONVERSIONS
from bnb_provision.explain.text import Prepared

__all__ = ["Fact", "derive_facts", "read_facts"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Fact:
    name: str
    value: str
    line: int  # original line number (1-based); 0 when derived
    evidence: str  # the line, or how it was derived
    strength: int = 1


_MAX_GPU_NAMES: Final = 16
_V: Final = r"\d{1,3}\.\d{1,3}(?:\.\d{1,4})?(?:\.?(?:dev|post|rc|a|b)\d{0,4})?"
_PACKAGES: Final = (
    "bitsandbytes",
    "transformers",
    "accelerate",
    "peft",
    "trl",
    "triton",
    "vllm",
    "xformers",
)
_GPU: Final = (
    r"(?:nvidia )?(?:geforce |quadro |titan )?(?:rtx|gtx) ?a?\d{3,4}(?: ?(?:ti|super|d|laptop))*"
    r"|tesla [a-z]\d{1,3}[a-z]?(?:-[a-z0-9]{1,12}){0,3}"
    r"|(?:nvidia )?(?:v100|p(?:4|40|100)|a(?:2|10g?|16|30|40|100|800)|h(?:20|100|200|800)"
    r"|b(?:100|200)|l(?:4|20|40s?))(?![.\d])(?:-[a-z0-9]{1,12}){0,3}(?: \d{2,3} ?gb)?"
    r"|(?:nvidia )?(?:rtx )?a\d{4}|jetson [a-z]{3,12}|rx \d{4}(?: xtx| xt)?|gfx\d{3,4}"
)

# (fact, pattern with one group, conversion, strength)
RULES: Final[tuple[tuple[str, str, str, int], ...]] = (
    # Python: banners, then the environment's site-packages, then any python3.X path
    ("python", r"python version:? {0,4}(3\.\d{1,2}(?:\.\d{1,2})?)", "text", 4),
    ("python", r"\bpython (3\.\d{1,2}\.\d{1,2})\b", "text", 3),
    ("python", r"python(3\.\d{1,2})[/\\](?:site|dist)-packages", "text", 3),
    ("python", r"[/\\]python3(\d{1,2})[/\\]", "py_digits", 3),
    ("python", r"-py(3\.\d{1,2})[-.]", "text", 2),
    ("python", r"python(3\.\d{1,2})[/\\]", "text", 2),
    ("python", r"/python(3\.\d{1,2})\b", "text", 2),
    ("python", r"[/\\]py3(\d{1,2})_cu\d{2,3}[/\\]", "py_digits", 2),
    ("python", r"\bpython ?(3\.\d{1,2})\b", "text", 2),
    ("python", r"\bcp3(\d{1,2})-", "py_digits", 1),
    # torch and its CUDA
    ("torch", r"(?:pytorch|torch) version(?: \(gpu\?\))?:? {0,4}\(?v?(" + _V + r")", "text", 4),
    ("torch", r"but you have torch (" + _V + r")", "text", 4),
    ("torch", r"\btorch(?:==| {1,30}|: {0,4}|\uff1a)(" + _V + r")(?![\d.])", "text", 3),
    ("torch", r"\bpytorch:? {0,4}(" + _V + r")", "text", 3),
    ("torch", r"\btorch(?:version)?:? ?(" + _V + r")\b", "text", 1),
    ("torch", r"\btorch-(" + _V + r")(?:\+|-cp)", "text", 2),
    ("torch_cuda", r"\btorch(?:==|-| {1,30}|: {0,4})" + _V + r"\+cu(\d{2,3})\b", "cuda_tag", 4),
    (
        "torch_cuda",
        r"\b(?:pytorch|torch)(?: version)?(?: \(gpu\?\))?(?:==|-| {1,30}|: {0,4}|\uff1a)"
        + _V
        + r" ?\+ ?cu(\d{1,2}\.\d|\d{2,3})\b",
        "cuda_tag",
        3,
    ),
    ("torch_cuda", r"[/\\]py3\d{1,2}_cu(\d{2,3})[/\\]", "cuda_tag", 3),
    ("torch_cuda", r"cuda used to build pytorch: (\d{1,2}\.\d)", "text", 4),
    ("torch_cuda", r"pytorch settings found: cuda_version=(\d{2,3})", "cuda_tag", 4),
    ("torch_cuda", r"cuda_version_string='(\d{2,3})'", "cuda_tag", 4),
    ("torch_cuda", r"pytorch-cuda=(\d{1,2}\.\d)", "text", 3),
    ("torch_cuda", r"\btorch[^\n]{0,30}?\+ ?cu(\d{3})\b", "cuda_tag", 1),
    # bitsandbytes
    (
        "bnb_lib",
        r"(libbitsandbytes_(?:cuda\d{2,3}(?:_nocublaslt)?|cpu|hip\w{0,20}|mps|xpu)\.(?:so|dll|dylib))\b",
        "text",
        1,
    ),
    ("bnb", r"bitsandbytes-(" + _V + r")-py3", "text", 3),
    # CUDA found on the system, the driver, the GPU
    ("cuda", r"cuda compilation tools, release (\d{1,2}\.\d)", "text", 4),
    ("cuda", r"detected cuda version (\d{2,3})\b", "cuda_tag", 4),
    ("cuda", r"the detected cuda version \((\d{1,2}\.\d)\)", "text", 4),
    ("cuda", r"/usr/local/cuda-(\d{1,2}\.\d)\b", "text", 2),
    ("cuda", r"[/\\]cuda[/\\]v(\d{1,2}\.\d)[/\\]", "text", 2),
    (
        "cuda",
        r"\bcuda(?: toolkit)?(?: version)?(?: is|:|\uff1a|-| ){1,3}(\d{1,2}\.\d)\b",
        "text",
        1,
    ),
    ("torch_cuda", r"used to compile pytorch \((\d{1,2}\.\d)\)", "text", 4),
    ("driver", r"driver version:? {0,4}(\d{3}\.\d{1,3}(?:\.\d{1,3})?)", "text", 4),
    ("driver", r"nvidia-smi (\d{3}\.\d{1,3}(?:\.\d{1,3})?)", "text", 3),
    (
        "driver_cuda",
        r"driver version:? {0,4}[\d.]{3,12} {1,12}cuda version:? {0,4}(\d{1,2}\.\d)",
        "text",
        4,
    ),
    ("driver_cuda", r"found version (\d{4,5})\)", "cuda_int", 4),
    ("compute_capability", r"has compute capability (\d{1,2}\.\d)", "text", 4),
    ("compute_capability", r"with cuda capabilit(?:y|ies) sm_(\d{2,3})\b", "cc", 4),
    (
        "compute_capability",
        r"highest compute capability[^\n]{0,30}?(\(\d{1,2}, \d\)|\d{1,2}\.\d)",
        "cc",
        4,
    ),
    ("compute_capability", r"compute capability:? (\d{1,2}\.\d)\b(?! or higher)", "text", 2),
    ("compute_capability", r"gpu arch (\(\d{1,2}, \d\))", "cc", 3),
    ("compute_capability", r"highest_compute_capability=(\(\d{1,2}, \d\))", "cc", 4),
    ("compute_capability", r"\bsm_(\d{2,3})\b", "cc", 1),
    ("gpu", r"\b(" + _GPU + r")\b", "text", 1),
    ("gpu_memory", r"(\d{1,4}\.\d{1,2} gib) total capacit", "text", 3),
    ("gpu_memory", r"total capacity? of (\d{1,4}\.\d{1,2} gib)", "text", 3),
    # what raised
    (
        "extension",
        (
            r"(?:[/\\]|\b)([a-z0-9_]{2,60}?)(?:\.cpython-[^\s/\\:]{1,60})?\.(?:so|pyd)"
            r"[^\n]{0,4}: undefined symbol"
        ),
        "text",
        4,
    ),
    ("extension", r"dll load failed while importing ([a-z0-9_]{2,60})", "text", 4),
    ("extension", r"\b([a-z0-9_]{2,60}_(?:kernels|ext|cuda|engine)) not installed", "text", 3),
    (
        "missing_lib",
        r"(lib[a-z0-9_+-]{1,40}\.so(?:\.\d{1,4}){0,3}): cannot open shared object file",
        "text",
        3,
    ),
    ("min_version", r"bitsandbytes ?>= ?(" + _V + r")", "text", 2),
)

# substrings (found with str.find, fast on any text) that show an OS, strongest first
# substrings (found with str.find, fast on any text) that show an OS, strongest first
_OS_MARKS: Final = (
    (
        "wsl",
        ("/mnt/c/", "/mnt/d/", "/usr/lib/wsl", "microsoft-standard", " wsl2", " wsl ", "(wsl)"),
    ),
    (
        "windows",
        (
            ":\\",
            ":/users/",
            "windowspath(",
            "windows-10",
            "windows 10",
            "windows-11",
            "windows 11",
            "win_amd64",
            ".dll",
            "\\site-packages\\",
            "appdata\\",
            "press any key to continue",
        ),
    ),
    (
        "macos",
        (
            "/users/",
            "darwin",
            "macos",
            "mac os",
            "macbook",
            "mach-o",
            "/opt/homebrew",
            "apple m1",
            "apple m2",
            "apple m3",
            "apple m4",
        ),
    ),
    (
        "linux",
        (
            "/home/",
            "/usr/",
            "/opt/",
            "/root/",
            "/lib/python3",
            "/site-packages/",
            "/dist-packages/",
            "root@",
            "linux",
            "ubuntu",
            "centos",
            "ld_library_path",
        ),
    ),
)
_ROOTS: Final = frozenset({"/users/", "/home/", "/usr/", "/opt/", "/root/", "/mnt/c/", "/mnt/d/"})
_ARCH_MARKS: Final = (
    (
        "aarch64",
        (
            "aarch64",
            "arm64",
            "apple m1",
            "apple m2",
            "apple m3",
            "apple m4",
            "jetson",
            "/opt/homebrew",
        ),
    ),
    ("x86_64", ("x86_64", "amd64", "x86-64")),
)
_FRAME_RE: Final = re.compile(
    r"[/\\](?:site|dist)-packages[/\\]([a-z0-9_]{2,40})[/\\][^\s\"':]{1,200}?\.py\b"
    r"|[/\\](bitsandbytes|transformers|accelerate|peft|torch|triton)[/\\][a-z0-9_/\\]{1,200}?\.py\b"
)
_COMPILED: Final = tuple((n, re.compile(p), c, s) for n, p, c, s in RULES)


def _convert(conv: str, value: str) -> str | None:
    if conv == "py_digits":
        return f"3.{int(value)}"
    return CONVERSIONS[conv](value)


def _evidence(doc: Prepared, offset: int) -> tuple[int, str]:
    return doc.line_number(offset), doc.line_of(offset).strip()[:300]


def _put(found: dict[str, Fact], fact: Fact) -> None:
    old = found.get(fact.name)
    if old is None or fact.strength > old.strength:
        found[fact.name] = fact


def _first_value(doc: Prepared, name: str, rx: re.Pattern[str], conv: str) -> Fact | None:
    """The rule's first value; for a GPU name, the most specific of the first few."""
    best: tuple[re.Match[str], str] | None = None
    for i, m in enumerate(rx.finditer(doc.lower)):
        if name == "cuda" and "driver version" in doc.line_of(m.start()).lower():
            continue  # nvidia-smi's CUDA Version is the driver's, not a toolkit
        value = _convert(conv, doc.text[m.start(1) : m.end(1)])
        if value and (best is None or (name == "gpu" and len(value) > len(best[1]))):
            best = (m, value)
        if best is not None and (name != "gpu" or i >= _MAX_GPU_NAMES):
            break
    if best is None:
        return None
    line, text = _evidence(doc, best[0].start())
    return Fact(name=name, value=best[1], line=line, evidence=text)


def _rule_facts(doc: Prepared, found: dict[str, Fact]) -> None:
    for name, rx, conv, strength in _COMPILED:
        old = found.get(name)
        if old is not None and old.strength >= strength:
            continue
        fact = _first_value(doc, name, rx, conv)
        if fact is not None:
            _put(found, replace(fact, strength=strength))


def _package_versions(doc: Prepared, found: dict[str, Fact]) -> None:
    """``pkg==1.2.3``, ``pkg   1.2.3`` (pip list), ``- `pkg` version: 1.2.3``, ``pkg: 1.2.3``."""
    for pkg in _PACKAGES:
        if pkg.encode() not in doc.words:
            continue
        name = "bnb" if pkg == "bitsandbytes" else pkg
        rx = re.compile(
            re.escape(pkg) + r"`?(?: version)?(?:==| {1,40}|: {0,4}|\uff1a)v?(" + _V + r")(?![\d.])"
        )
        m = rx.search(doc.lower)
        if m:
            line, text = _evidence(doc, m.start())
            _put(found, Fact(name=name, value=m.group(1), line=line, evidence=text, strength=3))


def _find(doc: Prepared, needle: str) -> int:
    """The first occurrence of ``needle`` that stands on its own: a drive (``:\\``) after a
    lone letter, a root folder (``/users/``) not inside another path."""
    at = doc.lower.find(needle)
    while at >= 0:
        before = doc.lower[at - 1] if at else " "
        if needle.startswith(":"):
            ok = before.isalpha() and (at < 2 or not doc.lower[at - 2].isalnum())  # noqa: PLR2004
        elif needle in _ROOTS:
            ok = not (before.isalnum() or before in "-_.~")
        else:
            return at
        if ok:
            return at
        at = doc.lower.find(needle, at + 1)
    return at


def _marks(doc: Prepared, marks: tuple[tuple[str, tuple[str, ...]], ...], name: str) -> Fact | None:
    for value, needles in marks:
        for needle in needles:
            at = _find(doc, needle)
            if at >= 0:
                line, text = _evidence(doc, at)
                return Fact(name=name, value=value, line=line, evidence=text)
    return None


def _raised_by(doc: Prepared) -> Fact | None:
    """The package of the last file path into an installed package (a traceback's last
    frame, a warning's source), the closest to the error."""
    last = None
    for last in _FRAME_RE.finditer(doc.lower):  # noqa: B007 - the last one is wanted
        pass
    if last is None:
        return None
    line, text = _evidence(doc, last.start())
    return Fact(name="library", value=last.group(1) or last.group(2), line=line, evidence=text)


def read_facts(doc: Prepared) -> dict[str, Fact]:
    """Every fact the text gives, by name."""
    found: dict[str, Fact] = {}
    _rule_facts(doc, found)
    _package_versions(doc, found)
    for fact in (
        _marks(doc, _OS_MARKS, "os"),
        _marks(doc, _ARCH_MARKS, "arch"),
        _raised_by(doc),
    ):
        if fact is not None:
            _put(found, fact)
    return found


def derive_facts(found: dict[str, Fact]) -> None:
    """Facts that follow from others: the CUDA version and kind of the bitsandbytes library
    named, the ``sm_XY`` form of the compute capability."""
    lib = found.get("bnb_lib")
    if lib is not None:
        name = lib.value.lower()
        tag = re.search(r"cuda(\d{2,3})", name)
        cuda = CONVERSIONS["cuda_tag"](tag.group(1)) if tag else None
        if cuda:
            _put(found, Fact(name="lib_cuda", value=cuda, line=lib.line, evidence=lib.evidence))
        kind = next((k for k in ("cuda", "cpu", "hip", "rocm", "mps", "xpu") if k in name), None)
        if kind:
            _put(found, Fact(name="lib_kind", value=kind, line=lib.line, evidence=lib.evidence))
        fmt = name.rsplit(".", 1)[-1]
        if fmt in {"so", "dll", "dylib"}:
            _put(found, Fact(name="lib_format", value=fmt, line=lib.line, evidence=lib.evidence))
    _compare_cuda(found)
    py = found.get("python")
    if py is not None and py.value.count(".") > 1:
        short = ".".join(py.value.split(".")[:2])
        found["python"] = Fact(
            name="python", value=short, line=py.line, evidence=py.evidence, strength=py.strength
        )
    cc = found.get("compute_capability")
    if cc is not None:
        major, _, minor = cc.value.partition(".")
        _put(found, Fact(name="sm", value=f"{major}{minor}", line=cc.line, evidence=cc.evidence))


def _major(value: str) -> int | None:
    head = value.split(".", maxsplit=1)[0]
    return int(head) if is_digits(head) else None


def _compare_cuda(found: dict[str, Fact]) -> None:
    """The driver's CUDA against torch's (minor-version compatibility makes any driver of a
    major run every build of that major), and bitsandbytes' library against torch's."""
    torch, driver, lib = (found.get(k) for k in ("torch_cuda", "driver_cuda", "lib_cuda"))
    if torch is None:
        return
    torch_major = _major(torch.value)
    if driver is not None and torch_major is not None:
        driver_major = _major(driver.value)
        if driver_major is not None and driver_major < torch_major:
            how = f"the driver supports CUDA {driver.value}; torch is built for CUDA {torch.value}"
            _put(found, Fact(name="driver_vs_torch", value="older", line=driver.line, evidence=how))
    if lib is not None and torch_major is not None and _major(lib.value) not in {None, torch_major}:
        how = (
            f"bitsandbytes' library is for CUDA {lib.value}; torch is built for CUDA {torch.value}"
        )
        _put(found, Fact(name="lib_vs_torch", value="other", line=lib.line, evidence=how))
