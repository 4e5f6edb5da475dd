"""The resolver over a table of machine profiles, each expectation justified by the facts
(compat_db/ rows, shared/reference/compat-facts.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from packaging.version import Version

from bnb_provision.core.cuda import DriverVersion
from bnb_provision.db.load import load_db
from bnb_provision.errors import NoPlanError, ProvisionError
from bnb_provision.plan.constraints import Constraints, MachineFlags
from bnb_provision.plan.inputs import apply_flags, target_from_machine
from bnb_provision.plan.model import Plan, Target
from bnb_provision.plan.resolve import make_plan

CUDA13 = ("cu130", "cu132")


@dataclass(frozen=True)
class Case:
    id: str
    os: str
    arch: str
    python: str
    driver: str | None
    gpus: tuple[tuple[str, tuple[int, int]], ...]
    why: str
    variants: tuple[str, ...] = ()  # torch variant must be one of these
    torch_min: str | None = None
    torch_max: str | None = None
    bnb_min: str | None = None
    bnb_max: str | None = None
    library: str | None = None
    error: str | None = None
    constraints: Constraints = field(default_factory=Constraints)
    verified: bool = False
    jetson: bool = False
    warning: str | None = None
    names: tuple[str, ...] = ()  # --gpu values as users write them, read as the CLI reads them
    resolved: tuple[str, ...] = ()  # the catalogue models those names must find
    os_version: str | None = None  # the macOS release
    driver_floor: str | None = None  # the plan's driver floor, as printed
    ladder: tuple[str, ...] | None = None  # "FLOOR=TORCH" per rung, newest first
    evidence: bool = False  # verified rows of this GPU shown, the plan not one of them
    unverified: bool = False  # the torch build rests on an unverified index listing
    packages: tuple[tuple[str, str], ...] = ()  # exact pins (companions)
    bnb_index: bool = False  # bitsandbytes from the third-party Windows index
    build: str | None = None  # cu132, cpu, mps
    no_snippet: bool = False  # no 4-bit BitsAndBytesConfig is offered


L, W, M = "linux", "windows", "macos"
X86, ARM = "x86_64", "aarch64"
GTX1080TI = ("GTX 1080 Ti", (6, 1))
P100 = ("Tesla P100", (6, 0))
V100 = ("Tesla V100", (7, 0))
T4 = ("Tesla T4", (7, 5))
RTX2080 = ("RTX 2080 Ti", (7, 5))
A100 = ("A100", (8, 0))
RTX3090 = ("RTX 3090", (8, 6))
RTX4090 = ("RTX 4090", (8, 9))
L4 = ("L4", (8, 9))
H100 = ("NVIDIA H100 80GB HBM3", (9, 0))
GH200 = ("GH200", (9, 0))
B200 = ("B200", (10, 0))
B300 = ("B300", (10, 3))
RTX5090 = ("RTX 5090", (12, 0))
GB10 = ("GB10", (12, 1))
K80 = ("K80", (3, 7))
M40 = ("M40", (5, 2))
GTX970 = ("GTX 970", (5, 2))
FUTURE = ("a GPU after the DB", (13, 0))

CASES = [
    # --- acceptance examples of the issue ---------------------------------------
    Case(
        "gtx1080ti-550",
        L,
        X86,
        "3.12",
        "550.54.14",
        (GTX1080TI,),
        "driver 550 < 580 rules out CUDA 13; cu128+ lack sm_6x; cu126 (torch <= 2.14) has sm_60, "
        "and bnb's cuda126 library has sm_60",
        variants=("cu118", "cu121", "cu124", "cu126"),
        library="libbitsandbytes_cuda126.so",
    ),
    Case(
        "rtx5090-570",
        L,
        X86,
        "3.12",
        "570.133.07",
        (RTX5090,),
        "sm_120 needs cu128+; driver 570 rules out CUDA 13; torch cu128 exists for 2.7-2.11; "
        "bnb cu128 libraries have sm_120 from 0.45.3",
        variants=("cu128", "cu129"),
        torch_min="2.7",
        bnb_min="0.45.3",
    ),
    Case(
        "h100-580",
        L,
        X86,
        "3.12",
        "580.159.04",
        (H100,),
        # was: held at the verified row (torch 2.11.0+cu130). Issue 13: the newest torch
        # that is safe on the GPU wins; the verified row is shown as evidence and breaks
        # ties only within torch 2.11. PyPI's 2.15.0 is cu132 with sm_90 SASS, and a
        # 580 driver runs every CUDA 13.x build by minor-version compatibility.
        "x86 Hopper on R580: the newest safe torch (PyPI 2.15.0+cu132), the 2.11 row is "
        "evidence only",
        variants=("cu132",),
        torch_min="2.15.0",
        evidence=True,
        driver_floor="580",
    ),
    Case(
        "v100-580",
        L,
        X86,
        "3.12",
        "580.95.05",
        (V100,),
        "CUDA 13 builds start at sm_75: a V100 never gets cu13x",
        variants=("cu126", "cu128", "cu129"),
    ),
    Case(
        "a100-535",
        L,
        X86,
        "3.12",
        "535.104.05",
        (A100,),
        "535 < 580: never a CUDA 13 build",
        variants=("cu118", "cu121", "cu124", "cu126", "cu128", "cu129"),
    ),
    Case(
        "py310-no-2.15",
        L,
        X86,
        "3.10",
        "595.45.04",
        (A100,),
        "torch 2.15 requires Python >= 3.11",
        torch_max="2.14.99",
    ),
    # --- Pascal / Maxwell / Kepler ----------------------------------------------
    Case(
        "p100-595",
        L,
        X86,
        "3.12",
        "595.58.03",
        (P100,),
        "sm_60: cu126 only (cu128+ start at sm_70)",
        variants=("cu126",),
    ),
    Case(
        "gtx1080ti-win-560",
        W,
        X86,
        "3.11",
        "560.94",
        (GTX1080TI,),
        "Windows cu126 from the PyTorch index; bnb win_amd64 cuda126.dll has sm_60",
        variants=("cu126",),
        library="libbitsandbytes_cuda126.dll",
    ),
    Case(
        "m40-550",
        L,
        X86,
        "3.11",
        "550.54.14",
        (M40,),
        "sm_52: torch cu126 has sm_50 SASS; bnb dropped Maxwell from 0.48.0 (lowest SASS sm_60), "
        "0.47.0 cu126 still has sm_50",
        variants=("cu126", "cu124", "cu121", "cu118"),
        bnb_max="0.47.99",
    ),
    Case(
        "k80-470",
        L,
        X86,
        "3.11",
        "470.82.01",
        (K80,),
        "no verified torch build has sm_37 and no CUDA 12 driver",
        error="no known combination",
    ),
    # --- Volta -----------------------------------------------------------------
    Case(
        "v100-550-bnb046",
        L,
        X86,
        "3.12",
        "550.54.14",
        (V100,),
        "bnb 0.46.x cu128 libraries lack sm_70 (known bad); with --bnb 0.46 and --cuda 12.8 nothing fits",
        constraints=Constraints(bnb="0.46", cuda="12.8"),
        error="no known combination",
    ),
    Case(
        "v100-cu128-ok",
        L,
        X86,
        "3.12",
        "570.124.06",
        (V100,),
        "torch 2.8-2.10 cu128 has sm_70; bnb >= 0.47 cu128 has sm_70",
        constraints=Constraints(cuda="12.8"),
        variants=("cu128",),
        torch_max="2.10.99",
        bnb_min="0.47.0",
    ),
    # --- Turing ------------------------------------------------------------------
    Case(
        "t4-535",
        L,
        X86,
        "3.11",
        "535.104.05",
        (T4,),
        "535: CUDA 12 only; newest torch with a cu12 variant",
        variants=("cu126", "cu128"),
    ),
    Case(
        "t4-580",
        L,
        X86,
        "3.12",
        "580.82.07",
        (T4,),
        "sm_75 is in every cu13x build; PyPI 2.15 is cu132",
        variants=("cu132",),
        torch_min="2.15",
    ),
    Case(
        "rtx2080-win-576",
        W,
        X86,
        "3.12",
        "576.57",
        (RTX2080,),
        "Windows: PyPI is CPU-only, so the index cu12x build",
        variants=("cu126", "cu128"),
    ),
    Case(
        "t4-int8-warning",
        L,
        X86,
        "3.12",
        "580.82.07",
        (T4,),
        "sm_75 has no bf16: warn to use float16",
        warning="no bfloat16",
    ),
    # --- Ampere ----------------------------------------------------------------
    Case(
        "a100-525",
        L,
        X86,
        "3.12",
        "525.60.13",
        (A100,),
        "exactly the CUDA 12 minor-version floor",
        variants=("cu126", "cu128"),
    ),
    Case(
        "a100-524",
        L,
        X86,
        "3.12",
        "524.99",
        (A100,),
        "below 525.60.13: only CUDA 11.8 builds (torch <= 2.7)",
        variants=("cu118",),
        torch_max="2.7.99",
    ),
    Case(
        "a100-450",
        L,
        X86,
        "3.11",
        "450.80.02",
        (A100,),
        "the CUDA 11 floor: cu118",
        variants=("cu118",),
    ),
    Case(
        "a100-449",
        L,
        X86,
        "3.11",
        "450.36.06",
        (A100,),
        "below every CUDA 11.x floor in the DB",
        error="no known combination",
    ),
    Case(
        "rtx3090-550",
        L,
        X86,
        "3.12",
        "550.120",
        (RTX3090,),
        "PyPI 2.10 is cu128 (runs on 525+), newest below the cu13 builds",
        variants=("cu126", "cu128"),
    ),
    Case(
        "rtx3090-wsl",
        L,
        X86,
        "3.12",
        "576.02",
        (RTX3090,),
        "WSL uses the Windows driver",
        variants=("cu126", "cu128"),
    ),
    Case(
        "rtx3090-win-595",
        W,
        X86,
        "3.12",
        "595.79",
        (RTX3090,),
        "Windows with a 13.x-capable driver: index cu132",
        variants=("cu132", "cu130"),
    ),
    Case(
        "a100-pin-torch-2.4",
        L,
        X86,
        "3.11",
        "550.54.14",
        (A100,),
        "pinned torch 2.4: PyPI cu121 build; bnb >= 0.43 accepts torch 2.4",
        constraints=Constraints(torch="2.4"),
        torch_min="2.4",
        torch_max="2.4.99",
    ),
    Case(
        "a100-pin-bnb-0.45.5",
        L,
        X86,
        "3.11",
        "550.54.14",
        (A100,),
        "pinned bnb 0.45.5: exact-rule loader needs a shipped cuda lib (<= 12.8)",
        constraints=Constraints(bnb="0.45.5"),
        bnb_min="0.45.5",
        bnb_max="0.45.5",
        variants=("cu118", "cu121", "cu124", "cu126", "cu128"),
    ),
    Case(
        "a100-pin-cuda-12.6",
        L,
        X86,
        "3.12",
        "580.95.05",
        (A100,),
        "pinned CUDA 12.6",
        constraints=Constraints(cuda="12.6"),
        variants=("cu126",),
    ),
    Case(
        "a100-qlora",
        L,
        X86,
        "3.12",
        "580.95.05",
        (A100,),
        "qlora profile adds peft (>= 0.14 with bnb >= 0.45)",
        constraints=Constraints(profile="qlora"),
    ),
    # --- Ada ------------------------------------------------------------------
    Case(
        "rtx4090-win-572",
        W,
        X86,
        "3.12",
        "572.61",
        (RTX4090,),
        "Windows cu12x from the index",
        variants=("cu126", "cu128"),
    ),
    Case(
        "l4-580-py39",
        L,
        X86,
        "3.9",
        "580.65.06",
        (L4,),
        "Python 3.9: torch <= 2.8 (2.9 requires 3.10) and bnb <= 0.48.x (0.49 requires 3.10)",
        torch_max="2.8.99",
        bnb_max="0.48.99",
    ),
    Case(
        "rtx4090-py314",
        L,
        X86,
        "3.14",
        "580.65.06",
        (RTX4090,),
        "Python 3.14 wheels exist from torch 2.9",
        torch_min="2.9",
    ),
    Case(
        "rtx4090-py38",
        L,
        X86,
        "3.8",
        "580.65.06",
        (RTX4090,),
        "bnb >= 0.45.1 requires Python >= 3.8 and transformers 4.30+ ... torch 2.4 is the last for 3.8",
        torch_max="2.4.99",
    ),
    # --- Hopper ---------------------------------------------------------------
    Case(
        "h100-595",
        L,
        X86,
        "3.12",
        "595.45.04",
        (H100,),
        # was: verified=True (the 2.11 row chosen first). Now the row is evidence: a newer
        # driver changes nothing, torch 2.15.0+cu132 from PyPI is chosen as on R580.
        "a newer driver keeps the newest safe torch; the verified 2.11 row stays evidence",
        variants=("cu132",),
        torch_min="2.15.0",
        evidence=True,
    ),
    Case(
        "h100-575",
        L,
        X86,
        "3.12",
        "575.57.08",
        (H100,),
        "driver < 580: the verified cu130 row does not qualify; cu12x instead (it is evidence)",
        variants=("cu126", "cu128", "cu129"),
        evidence=True,
    ),
    Case(
        "h100-py311-pin-2.15",
        L,
        X86,
        "3.11",
        "580.95.05",
        (H100,),
        "pinned 2.15 (PyPI cu132) beats the verified 2.11 row",
        constraints=Constraints(torch="2.15"),
        variants=("cu132",),
        evidence=True,
    ),
    Case(
        "gh200-aarch64",
        L,
        ARM,
        "3.12",
        "580.95.05",
        (GH200,),
        "aarch64 PyPI CUDA builds from torch 2.11; bnb aarch64 wheels from 0.46",
        variants=CUDA13,
        bnb_min="0.46.0",
    ),
    Case(
        "gh200-aarch64-570",
        L,
        ARM,
        "3.12",
        "570.124.06",
        (GH200,),
        "aarch64 with a 12.x driver: index cu128/cu126 (sm_90)",
        variants=("cu126", "cu128"),
    ),
    # --- Blackwell --------------------------------------------------------------
    Case(
        "b200-580",
        L,
        X86,
        "3.12",
        "580.95.05",
        (B200,),
        "sm_100 in every cu13x build",
        variants=CUDA13,
    ),
    Case(
        "b200-560",
        L,
        X86,
        "3.12",
        "560.35.03",
        (B200,),
        "sm_100 needs cu128+, which needs a 12.x driver (525+): 560 qualifies",
        variants=("cu128", "cu129"),
    ),
    Case(
        "b300-580", L, X86, "3.12", "580.95.05", (B300,), "10.3 runs sm_100 SASS", variants=CUDA13
    ),
    Case(
        "rtx5090-win-576",
        W,
        X86,
        "3.12",
        "576.02",
        (RTX5090,),
        "Windows Blackwell: index cu128, bnb cuda128.dll (>= 0.45.3)",
        variants=("cu128",),
        library="libbitsandbytes_cuda128.dll",
    ),
    Case(
        "rtx5090-580",
        L,
        X86,
        "3.12",
        "580.95.05",
        (RTX5090,),
        "sm_120 is in every cu13x build; PyPI 2.15 is cu132",
        variants=CUDA13,
        torch_min="2.15",
    ),
    Case(
        "gb10-aarch64",
        L,
        ARM,
        "3.12",
        "580.95.05",
        (GB10,),
        "12.1 runs sm_120 SASS; aarch64 cu13x",
        variants=CUDA13,
    ),
    Case(
        "mixed-pascal-ampere",
        L,
        X86,
        "3.12",
        "580.95.05",
        (GTX1080TI, A100),
        "every GPU must be covered: the Pascal card forces cu126",
        variants=("cu126",),
    ),
    Case(
        "mixed-volta-blackwell",
        L,
        X86,
        "3.12",
        "580.95.05",
        (V100, RTX5090),
        "sm_70 and sm_120 together: only cu128 in torch 2.8-2.10",
        variants=("cu128", "cu129"),
        torch_max="2.10.99",
    ),
    # --- no GPU / macOS / Jetson -------------------------------------------------
    Case("cpu-linux", L, X86, "3.12", None, (), "no GPU: CPU build", variants=("cpu",)),
    Case("cpu-windows", W, X86, "3.12", None, (), "Windows CPU from PyPI", variants=("cpu",)),
    Case(
        "macos-arm64",
        M,
        ARM,
        "3.12",
        None,
        (),
        "MPS/CPU torch from PyPI, bnb >= 0.49 macOS wheel",
        variants=("cpu",),
        bnb_min="0.49.0",
    ),
    Case(
        "macos-cuda",
        M,
        ARM,
        "3.12",
        None,
        (),
        "CUDA on macOS",
        constraints=Constraints(cuda="12.6"),
        error="CUDA is not available on macOS",
    ),
    Case(
        "jetson-orin",
        L,
        ARM,
        "3.10",
        "540.4.0",
        (("Jetson AGX Orin", (8, 7)),),
        "PyPI aarch64 wheels are SBSA builds",
        jetson=True,
        error="Jetson",
    ),
    Case(
        "a100-cpu-forced",
        L,
        X86,
        "3.12",
        "580.95.05",
        (A100,),
        "--cuda cpu",
        constraints=Constraints(cuda="cpu"),
        variants=("cpu",),
    ),
    Case(
        "t4-450-torch-2.9",
        L,
        X86,
        "3.11",
        "450.80.02",
        (T4,),
        "a 450 driver with torch 2.9 pinned: 2.9's builds need 525+",
        error="install NVIDIA driver >= 525",
        constraints=Constraints(torch="2.9"),
    ),
    # --- issue 13: no driver given ---------------------------------------------------
    # Planned for the newest driver the GPUs can have (the newest floor the DB records,
    # 610.43.02 on Linux, or R580 for Maxwell/Pascal/Volta); the plan states its driver
    # floor and the ladder of older floors that change the answer.
    Case(
        "nodriver-pascal",
        L,
        X86,
        "3.12",
        None,
        (GTX1080TI,),
        "sm_61 runs only cu126 (torch <= 2.14, driver >= 525.60.13); below that cu118 "
        "(torch <= 2.7, CUDA 11 floor 450.80.02); R580 is Pascal's last branch anyway",
        variants=("cu126",),
        torch_min="2.14.1",
        driver_floor="525.60.13",
        ladder=("450.80.02=2.7.1+cu118",),
    ),
    Case(
        "nodriver-maxwell",
        L,
        X86,
        "3.11",
        None,
        (GTX970,),
        "sm_52: cu126 torch, bnb 0.47.0 (the last with sm_50 kernels); the same on cu118",
        variants=("cu126",),
        bnb_max="0.47.0",
        driver_floor="525.60.13",
        ladder=("450.80.02=2.7.1+cu118",),
    ),
    Case(
        "nodriver-volta",
        L,
        X86,
        "3.12",
        None,
        (V100,),
        "CUDA 13 builds start at sm_75: cu126 (2.14.1) beats cu128 (2.10) by freshness",
        variants=("cu126",),
        torch_min="2.14.1",
        driver_floor="525.60.13",
        ladder=("450.80.02=2.7.1+cu118",),
    ),
    Case(
        "nodriver-turing",
        L,
        X86,
        "3.12",
        None,
        (T4,),
        "sm_75 is in PyPI's 2.15.0+cu132 (580 floor); 525: index cu126; 450: cu118",
        variants=("cu132",),
        torch_min="2.15.0",
        driver_floor="580",
        ladder=("525.60.13=2.14.1+cu126", "450.80.02=2.7.1+cu118"),
    ),
    Case(
        "nodriver-ampere",
        L,
        X86,
        "3.12",
        None,
        (A100,),
        "the same ladder as Turing: sm_80 is in every variant",
        variants=("cu132",),
        driver_floor="580",
        ladder=("525.60.13=2.14.1+cu126", "450.80.02=2.7.1+cu118"),
    ),
    Case(
        "nodriver-ada-windows",
        W,
        X86,
        "3.12",
        None,
        (RTX4090,),
        "Windows: 2.15's index listing is unverified, so 2.14.1+cu132 from the index (580); "
        "528.33 (uv's 12.x floor) cu126; 452.39 cu118",
        variants=("cu132",),
        torch_max="2.14.99",
        driver_floor="580",
        ladder=("528.33=2.14.1+cu126", "452.39=2.7.1+cu118"),
    ),
    Case(
        "nodriver-hopper",
        L,
        X86,
        "3.12",
        None,
        (H100,),
        "the newest safe torch, the verified 2.11 row as evidence; 525: cu126, 450: cu118",
        variants=("cu132",),
        torch_min="2.15.0",
        driver_floor="580",
        evidence=True,
        ladder=("525.60.13=2.14.1+cu126", "450.80.02=2.7.1+cu118"),
    ),
    Case(
        "nodriver-gh200",
        L,
        ARM,
        "3.12",
        None,
        (GH200,),
        "aarch64: PyPI cu132 (580); a 12.x driver gets index cu126 (sm_90); no cu118 "
        "aarch64 build is in the DB, so nothing below 525.60.13",
        variants=("cu132",),
        driver_floor="580",
        ladder=("525.60.13=2.14.1+cu126",),
    ),
    Case(
        "nodriver-blackwell-b200",
        L,
        X86,
        "3.12",
        None,
        (B200,),
        "sm_100: cu132 (580); on 12.x drivers the newest cu128 build, 2.11.0 from the index; "
        "cu118 has no Blackwell, so nothing below 525.60.13",
        variants=("cu132",),
        driver_floor="580",
        ladder=("525.60.13=2.11.0+cu128",),
    ),
    Case(
        "nodriver-blackwell-rtx5090",
        L,
        X86,
        "3.12",
        None,
        (RTX5090,),
        "sm_120: the same ladder as B200",
        variants=("cu132",),
        driver_floor="580",
        ladder=("525.60.13=2.11.0+cu128",),
    ),
    Case(
        "nodriver-blackwell-windows",
        W,
        X86,
        "3.12",
        None,
        (RTX5090,),
        "Windows sm_120: index cu132 (2.14.1), then cu128 (2.11.0) from uv's 528.33",
        variants=("cu132",),
        driver_floor="580",
        ladder=("528.33=2.11.0+cu128",),
    ),
    Case(
        "nodriver-mixed-pascal-ampere",
        L,
        X86,
        "3.12",
        None,
        (GTX1080TI, A100),
        "the Pascal card decides: cu126 (and R580 caps the assumed driver)",
        variants=("cu126",),
        driver_floor="525.60.13",
        ladder=("450.80.02=2.7.1+cu118",),
    ),
    Case(
        "nodriver-kepler",
        L,
        X86,
        "3.11",
        None,
        (K80,),
        "R470 is Kepler's last branch and no torch build in the DB has sm_37",
        error="no driver given",
    ),
    # --- issue 13: PTX only where the driver can JIT it --------------------------------
    # A GPU newer than every SASS in a build (13.0 here, after the DB's newest, 12.1) runs
    # only PTX, and only when the driver is at least as new as the toolkit that emitted it
    # (NVIDIA's toolkit/driver table: 13.2 needs 595.45.04, 13.0 needs 580.65.06).
    Case(
        "future-cc-580",
        L,
        X86,
        "3.12",
        "580.95.05",
        (FUTURE,),
        "a 580 driver supports CUDA 13.0: not the 13.2 PTX of cu132, but the index's cu130 "
        "build (compute_120 from 13.0) and bnb's cuda130 relocatable PTX",
        variants=("cu130",),
        library="libbitsandbytes_cuda130.so",
        driver_floor="580.65.06",
        warning="only through PTX JIT",
    ),
    Case(
        "future-cc-595",
        L,
        X86,
        "3.12",
        "595.45.04",
        (FUTURE,),
        "595.45.04 is CUDA 13.2's own driver: the index's cu132 PTX runs",
        variants=("cu132",),
        library="libbitsandbytes_cuda132.so",
        driver_floor="595.45.04",
    ),
    Case(
        "future-cc-575",
        L,
        X86,
        "3.12",
        "575.57.08",
        (FUTURE,),
        "a 12.9 driver: torch 2.8's index cu129 build (compute_120, verified listing) with "
        "bnb's cuda128 library (same-major fallback, compute_120 from 12.8)",
        variants=("cu129",),
        library="libbitsandbytes_cuda128.so",
        driver_floor="575.51.03",
    ),
    Case(
        "future-cc-560",
        L,
        X86,
        "3.12",
        "560.35.03",
        (FUTURE,),
        "every build with PTX for it is CUDA 12.8 or newer; a 560 driver supports 12.6",
        error="install NVIDIA driver >= 570.26",
    ),
    Case(
        "future-cc-no-driver",
        L,
        X86,
        "3.12",
        None,
        (FUTURE,),
        "the ladder follows the toolkits' own drivers, because only PTX reaches the GPU",
        variants=("cu132",),
        driver_floor="595.45.04",
        ladder=(
            "580.65.06=2.14.1+cu130",
            "575.51.03=2.8.0+cu129",
            "570.26=2.7.1+cu128",
        ),
    ),
    Case(
        "future-cc-windows",
        W,
        X86,
        "3.12",
        "595.79",
        (FUTURE,),
        "NVIDIA names no Windows driver for the 13.x toolkits, so no 13.x PTX is claimed; "
        "the 12.9 toolkit's Windows driver is 576.02",
        variants=("cu129",),
        driver_floor="576.02",
    ),
    Case(
        "future-minor-12.2",
        L,
        X86,
        "3.12",
        "580.95.05",
        (("a GPU after the DB", (12, 2)),),
        "12.2 runs sm_120 SASS (same major): no PTX needed",
        variants=("cu132",),
        torch_min="2.15.0",
    ),
    Case(
        "unknown-cc-99",
        L,
        X86,
        "3.12",
        "580.95.05",
        (("GPU", (99, 9)),),
        "no NVIDIA GPU has 99.9, and none is due before 13.x",
        error="Known: 3.5, 3.7",
    ),
    Case(
        "unknown-cc-8.8",
        L,
        X86,
        "3.12",
        "580.95.05",
        (("GPU", (8, 8)),),
        "8.8 lies between known compute capabilities and is none",
        error="is no NVIDIA GPU the DB knows",
    ),
    # --- issue 13: freshness; verified rows are evidence ------------------------------
    Case(
        "h200-580",
        L,
        X86,
        "3.12",
        "580.95.05",
        (("NVIDIA H200", (9, 0)),),
        "every x86 Hopper gets the newest safe torch, as any other GPU does",
        variants=("cu132",),
        torch_min="2.15.0",
        evidence=True,
    ),
    Case(
        "h100-pin-2.11",
        L,
        X86,
        "3.12",
        "580.159.04",
        (H100,),
        "within torch 2.11 the verified combination breaks the tie: it is chosen",
        constraints=Constraints(torch="2.11"),
        variants=("cu130",),
        verified=True,
    ),
    Case(
        "h100-a100-team",
        L,
        X86,
        "3.12",
        "580.95.05",
        (H100, A100),
        "a Hopper beside an Ampere gets the same plan as the Ampere alone: no split",
        variants=("cu132",),
        torch_min="2.15.0",
    ),
    Case(
        "h100-bnb-0.49",
        L,
        X86,
        "3.12",
        "580.159.04",
        (H100,),
        "bnb 0.49.x has no cuda132 library and no fallback: torch 2.14.1 (cu130), the "
        "newest it serves, not the verified 2.11",
        constraints=Constraints(bnb="0.49"),
        variants=("cu130",),
        torch_min="2.14.1",
        evidence=True,
    ),
    Case(
        "h100-py310",
        L,
        X86,
        "3.10",
        "580.159.04",
        (H100,),
        "torch 2.15 needs Python 3.11: the newest for 3.10 is 2.14.1+cu130",
        variants=("cu130",),
        torch_min="2.14.1",
        evidence=True,
    ),
    # --- issue 13: an explicit pin on an unverified index listing ----------------------
    Case(
        "windows-torch-2.15",
        W,
        X86,
        "3.12",
        "595.79",
        (RTX3090,),
        "2.15's cu132 on the index is announced (RFC #190385), not verified: --torch 2.15 "
        "is honoured with a warning naming that fact",
        constraints=Constraints(torch="2.15"),
        variants=("cu132",),
        torch_min="2.15.0",
        unverified=True,
        warning="not verified",
    ),
    Case(
        "windows-no-pin",
        W,
        X86,
        "3.12",
        "595.79",
        (RTX3090,),
        "without the pin an unverified listing is never chosen: 2.14.1+cu132",
        variants=("cu132",),
        torch_max="2.14.99",
    ),
    Case(
        "windows-torch-2.15-old-driver",
        W,
        X86,
        "3.12",
        "576.57",
        (RTX3090,),
        "2.15 has only CUDA 13 builds; a 576 driver cannot run them",
        constraints=Constraints(torch="2.15"),
        error="install NVIDIA driver >= 580",
    ),
    # --- issue 13: macOS -------------------------------------------------------------
    Case(
        "macos14-m3",
        M,
        ARM,
        "3.12",
        None,
        (),
        "macOS 14: torch 2.15.0 (macosx_14_0 wheel) and bnb 0.50.2 (macosx_14_0); an MPS build",
        os_version="14.5",
        torch_min="2.15.0",
        bnb_min="0.50.2",
        build="mps",
    ),
    Case(
        "macos13-m1",
        M,
        ARM,
        "3.12",
        None,
        (),
        "every bitsandbytes macOS wheel (0.49.0 to 0.50.2) is macosx_14_0: none installs "
        "on macOS 13 (uv would fall back to 0.42.0, which has no macOS library)",
        os_version="13.6",
        error="upgrade to macOS 14.0",
    ),
    Case(
        "macos14-py310",
        M,
        ARM,
        "3.10",
        None,
        (),
        "torch 2.15 needs Python 3.11: 2.14.1 (macosx_14_0 for cp310)",
        os_version="14.0",
        torch_max="2.14.99",
        build="mps",
    ),
    Case(
        "macos-intel",
        M,
        X86,
        "3.11",
        None,
        (),
        "macOS x86_64: torch's last wheel is 2.2.2 and bitsandbytes has none",
        error="no wheel for macos-x86_64",
    ),
    # --- issue 13: companions --------------------------------------------------------
    Case(
        "with-companions",
        L,
        X86,
        "3.12",
        "580.95.05",
        (A100,),
        "torchvision 0.29.2 requires torch>=2.14.0, torchaudio 2.11.1 torch>=2.11 (their "
        "METADATA): both hold torch 2.15.0",
        constraints=Constraints(companions=("torchvision", "torchaudio")),
        torch_min="2.15.0",
        packages=(("torchvision", "0.29.2"), ("torchaudio", "2.11.1")),
    ),
    Case(
        "with-companions-torch-2.11",
        L,
        X86,
        "3.12",
        "580.95.05",
        (A100,),
        "torchvision 0.26.0 requires torch==2.11.0; torchaudio 2.11.1 torch>=2.11",
        constraints=Constraints(torch="2.11", companions=("torchvision", "torchaudio")),
        packages=(("torchvision", "0.26.0"), ("torchaudio", "2.11.1")),
    ),
    Case(
        "with-companions-torch-2.9",
        L,
        X86,
        "3.12",
        "580.95.05",
        (A100,),
        "torch 2.9.1 pairs with torchvision 0.24.1 (==2.9.1) and torchaudio 2.9.1 (==2.9.1)",
        constraints=Constraints(torch="2.9", companions=("torchvision", "torchaudio")),
        packages=(("torchvision", "0.24.1"), ("torchaudio", "2.9.1")),
    ),
    Case(
        "with-companions-windows",
        W,
        X86,
        "3.12",
        "560.94",
        (GTX1080TI,),
        "Pascal on Windows: torch 2.14.1+cu126 from the index, torchvision 0.29.2",
        constraints=Constraints(companions=("torchvision",)),
        variants=("cu126",),
        packages=(("torchvision", "0.29.2"),),
    ),
    # --- issue 13: the third-party Windows index, only on request ----------------------
    Case(
        "legacy-windows-flag",
        W,
        X86,
        "3.11",
        "595.79",
        (RTX3090,),
        "--bnb 0.41 with --allow-legacy-windows-index: 0.41.2.post2 from the third-party "
        "index, whose libraries are CUDA 11.1-12.2: torch 2.7.1+cu118",
        constraints=Constraints(bnb="0.41", legacy_windows_index=True),
        variants=("cu118",),
        bnb_index=True,
        library="libbitsandbytes_cuda118.dll",
        warning="third-party index",
    ),
    Case(
        "legacy-windows-no-flag",
        W,
        X86,
        "3.11",
        "595.79",
        (RTX3090,),
        "without the flag a pin below 0.43.0 has no Windows wheel, and the error names it",
        constraints=Constraints(bnb="0.41"),
        error="--allow-legacy-windows-index",
    ),
    Case(
        "legacy-windows-flag-unpinned",
        W,
        X86,
        "3.11",
        "595.79",
        (RTX3090,),
        "the flag alone changes nothing: official wheels from 0.43.0 stay the answer",
        constraints=Constraints(legacy_windows_index=True),
        bnb_min="0.50.2",
    ),
    Case(
        "legacy-windows-0.39.0-pascal",
        W,
        X86,
        "3.10",
        "560.94",
        (GTX1080TI,),
        "the index's README: 0.39.0 does not support compute capability below 7.0",
        constraints=Constraints(bnb="0.39.0", legacy_windows_index=True),
        error="no kernels below compute capability 7.0",
    ),
    # --- issue 13: bitsandbytes' documented 4-bit floor per release ---------------------
    Case(
        "gtx970-4bit-0.47",
        L,
        X86,
        "3.11",
        "550.54.14",
        (GTX970,),
        "bnb 0.47.0 documents NF4/FP4 from 5.0 (Maxwell, deprecated); 0.48.0 from 6.0",
        bnb_max="0.47.0",
        warning="rests on older documentation",
    ),
    Case(
        "gtx970-4bit-0.44",
        L,
        X86,
        "3.11",
        "550.54.14",
        (GTX970,),
        "bnb 0.44 documents no 4-bit floor; the current documentation says 6.0: no 4-bit "
        "promise and no 4-bit snippet",
        constraints=Constraints(bnb="0.44"),
        warning="4-bit (NF4/FP4) is not promised on sm_52",
        no_snippet=True,
    ),
    # --- GPU names as users write them (gpus.toml aliases), each read as --gpu ----------
    Case(
        "alias-4090",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "short name: RTX 4090, 8.9 (cu12x on a 575 driver)",
        names=("4090",),
        resolved=("GeForce RTX 4090",),
        variants=("cu126", "cu128", "cu129"),
    ),
    Case(
        "alias-rtx4090",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "no space, lower case",
        names=("rtx4090",),
        resolved=("GeForce RTX 4090",),
        variants=("cu126", "cu128", "cu129"),
    ),
    Case(
        "alias-RTX4090",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "no space, upper case",
        names=("RTX4090",),
        resolved=("GeForce RTX 4090",),
        variants=("cu126", "cu128", "cu129"),
    ),
    Case(
        "alias-rtx-4090-hyphen",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "hyphen instead of a space",
        names=("RTX-4090",),
        resolved=("GeForce RTX 4090",),
    ),
    Case(
        "alias-nvml-name",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "the name NVML reports, vendor words and all",
        names=("NVIDIA GeForce RTX 4090",),
        resolved=("GeForce RTX 4090",),
    ),
    Case(
        "alias-3090",
        L,
        X86,
        "3.12",
        "550.54.14",
        (),
        "short name: RTX 3090, 8.6; a 550 driver keeps CUDA 12",
        names=("3090",),
        resolved=("GeForce RTX 3090",),
        variants=("cu126", "cu128"),
    ),
    Case(
        "alias-A6000",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "workstation short name: RTX A6000 is Ampere 8.6",
        names=("A6000",),
        resolved=("RTX A6000",),
    ),
    Case(
        "alias-A6000-Ada",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "'A6000 Ada' is the RTX 6000 Ada Generation, 8.9",
        names=("A6000 Ada",),
        resolved=("RTX 6000 Ada Generation",),
    ),
    Case(
        "alias-rtx-6000-ada",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "the Ada suffix",
        names=("RTX 6000 Ada",),
        resolved=("RTX 6000 Ada Generation",),
    ),
    Case(
        "alias-laptop",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "Laptop suffix: its own model (16 GB), 8.9",
        names=("RTX 4090 Laptop",),
        resolved=("GeForce RTX 4090 Laptop GPU",),
    ),
    Case(
        "alias-nvml-laptop",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "NVML's laptop name",
        names=("NVIDIA GeForce RTX 4090 Laptop GPU",),
        resolved=("GeForce RTX 4090 Laptop GPU",),
    ),
    Case(
        "alias-ti",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "Ti suffix",
        names=("4070 Ti",),
        resolved=("GeForce RTX 4070 Ti",),
    ),
    Case(
        "alias-super",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "SUPER suffix",
        names=("4080 super",),
        resolved=("GeForce RTX 4080 SUPER",),
    ),
    Case(
        "alias-ti-super",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "Ti SUPER together",
        names=("RTX 4070 Ti SUPER",),
        resolved=("GeForce RTX 4070 Ti SUPER",),
    ),
    Case(
        "alias-sxm",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "SXM suffix: Hopper 9.0, cu12x on 575",
        names=("H100 SXM",),
        resolved=("H100 SXM",),
        variants=("cu126", "cu128", "cu129"),
        evidence=True,  # the verified H100 row is shown as evidence
    ),
    Case(
        "alias-pcie",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "PCIe suffix",
        names=("H100 PCIe",),
        resolved=("H100 PCIe",),
        evidence=True,  # the verified H100 row is shown as evidence
    ),
    Case(
        "alias-nvl",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "NVL suffix",
        names=("H100 NVL",),
        resolved=("H100 NVL",),
        evidence=True,  # the verified H100 row is shown as evidence
    ),
    Case(
        "alias-memory-suffix",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "a size in the name ('A100 80GB') still finds the A100",
        names=("NVIDIA A100-SXM4-80GB",),
        resolved=("A100 SXM",),
    ),
    Case(
        "alias-quadro",
        L,
        X86,
        "3.12",
        "550.54.14",
        (),
        "Quadro workstation name: Turing 7.5",
        names=("Quadro RTX 8000",),
        resolved=("Quadro RTX 8000",),
    ),
    Case(
        "alias-tesla-t4",
        L,
        X86,
        "3.12",
        "550.54.14",
        (),
        "'Tesla' is a vendor word: T4",
        names=("Tesla T4",),
        resolved=("Tesla T4",),
    ),
    Case(
        "alias-unknown-name",
        L,
        X86,
        "3.12",
        "575.57.08",
        (),
        "an unknown name is refused with the nearest models",
        names=("RTX 4095",),
        error="did you mean GeForce RTX 4090",
    ),
    Case(
        "unknown-cc",
        L,
        X86,
        "3.12",
        "580.95.05",
        (),
        "--gpu 99.9 is no known compute capability: refused, the known ones listed",
        names=("99.9",),
        error="Known: 3.5",
    ),
    # --- AMD ROCm: torch's ROCm build, bitsandbytes' ROCm library with the GPU's gfx -------
    Case(
        "rocm-mi300x",
        L,
        X86,
        "3.12",
        None,
        (),
        "gfx942: torch 2.14 rocm7.14; bnb 0.50.2 rocm714 holds gfx942 (read from the binary)",
        names=("MI300X",),
        resolved=("Instinct MI300X",),
        variants=("rocm7.14",),
        library="libbitsandbytes_rocm714.so",
    ),
    Case(
        "rocm-mi250",
        L,
        X86,
        "3.12",
        None,
        (),
        "gfx90a is in every bnb ROCm library",
        names=("MI250",),
        resolved=("Instinct MI250",),
        variants=("rocm7.14",),
    ),
    Case(
        "rocm-7900xtx",
        L,
        X86,
        "3.12",
        None,
        (),
        "RX 7900 XTX is gfx1100 (ROCm's GPU table)",
        names=("RX 7900 XTX",),
        resolved=("Radeon RX 7900 XTX",),
        variants=("rocm7.14",),
    ),
    Case(
        "rocm-7900xtx-short",
        L,
        X86,
        "3.12",
        None,
        (),
        "'7900 XTX', no vendor words",
        names=("7900xtx",),
        resolved=("Radeon RX 7900 XTX",),
    ),
    Case(
        "rocm-gfx1100",
        L,
        X86,
        "3.12",
        None,
        (),
        "a gfx target given directly",
        names=("gfx1100",),
        variants=("rocm7.14",),
    ),
    Case(
        "rocm-mi300x-torch-2.11",
        L,
        X86,
        "3.12",
        None,
        (),
        "torch 2.11 publishes rocm7.2; bnb 0.50.2 rocm72 holds gfx942",
        names=("MI300X",),
        constraints=Constraints(torch="2.11"),
        variants=("rocm7.2",),
        library="libbitsandbytes_rocm72.so",
    ),
    Case(
        "rocm-pin-6.4",
        L,
        X86,
        "3.12",
        None,
        (),
        "--cuda rocm6.4: torch 2.9 (2.8 and 2.9 publish rocm6.4) with bnb's rocm64 library",
        names=("RX 7900 XTX",),
        constraints=Constraints(cuda="rocm6.4"),
        variants=("rocm6.4",),
        torch_max="2.9.99",
        library="libbitsandbytes_rocm64.so",
    ),
    Case(
        "rocm-mi355x",
        L,
        X86,
        "3.12",
        None,
        (),
        "gfx950 from bnb's ROCm 7.0 builds on",
        names=("MI355X",),
        resolved=("Instinct MI355X",),
        variants=("rocm7.14",),
    ),
    Case(
        "rocm-gfx1030-rocm6.4",
        L,
        X86,
        "3.12",
        None,
        (),
        "gfx1030 (RX 6800): 0.50.2's rocm64 holds it, 0.49's did not",
        names=("gfx1030",),
        constraints=Constraints(cuda="rocm6.4"),
        bnb_min="0.50.0",
    ),
    Case(
        "rocm-unsupported-mi50",
        L,
        X86,
        "3.12",
        None,
        (),
        "gfx906 is in no bnb ROCm library: refused with the library's gfx list",
        names=("MI50",),
        error="has no code for Instinct MI50 (gfx906)",
    ),
    Case(
        "rocm-unsupported-gfx803",
        L,
        X86,
        "3.12",
        None,
        (),
        "gfx803 (RX 580) neither",
        names=("gfx803",),
        error="(gfx803)",
    ),
    Case(
        "rocm-windows",
        W,
        X86,
        "3.12",
        None,
        (),
        "no ROCm torch on the PyTorch index for Windows",
        names=("RX 7900 XTX",),
        error="Linux x86_64",
    ),
    Case(
        "rocm-no-gpu-pin",
        L,
        X86,
        "3.12",
        None,
        (),
        "--cuda rocm7.2 without a GPU: the rocm7.2 build, a warning to check the gfx",
        constraints=Constraints(cuda="rocm7.2"),
        variants=("rocm7.2",),
        warning="no AMD GPU was given",
    ),
    Case(
        "rocm-py39",
        L,
        X86,
        "3.9",
        None,
        (),
        "bnb's ROCm wheels (0.49+) need Python >= 3.10",
        names=("MI300X",),
        error="no known ROCm combination",
    ),
    # --- Intel XPU -------------------------------------------------------------------
    Case(
        "xpu-arc-a770",
        L,
        X86,
        "3.12",
        None,
        (),
        "Arc A770 is Xe-HPG, validated by PyTorch; bnb's XPU build needs torch >= 2.6",
        names=("Arc A770",),
        resolved=("Arc A770",),
        variants=("xpu",),
        torch_min="2.6",
        bnb_min="0.48.0",
    ),
    Case(
        "xpu-arc-b580-windows",
        W,
        X86,
        "3.12",
        None,
        (),
        "Arc B580 (Xe2-HPG) on Windows: xpu index; bnb XPU dlls from 0.48.2",
        names=("B580",),
        variants=("xpu",),
        bnb_min="0.48.2",
    ),
    Case(
        "xpu-max-1550",
        L,
        X86,
        "3.12",
        None,
        (),
        "Data Center GPU Max 1550 (Xe-HPC) on Linux",
        names=("Max 1550",),
        resolved=("Data Center GPU Max 1550",),
        variants=("xpu",),
    ),
    Case(
        "xpu-max-1100",
        L,
        X86,
        "3.11",
        None,
        (),
        "Max 1100, Python 3.11",
        names=("Data Center GPU Max 1100",),
        variants=("xpu",),
    ),
    Case(
        "xpu-max-windows",
        W,
        X86,
        "3.12",
        None,
        (),
        "PyTorch validates the Max series on Linux only",
        names=("Max 1550",),
        error="Linux only",
    ),
    Case(
        "xpu-pin-no-gpu",
        L,
        X86,
        "3.12",
        None,
        (),
        "--cuda xpu alone plans the xpu build",
        constraints=Constraints(cuda="xpu"),
        variants=("xpu",),
        warning="no Intel GPU was given",
    ),
    Case(
        "xpu-aarch64",
        L,
        ARM,
        "3.12",
        None,
        (),
        "no xpu build for Linux aarch64",
        names=("Arc A770",),
        error="not linux-aarch64",
    ),
    # --- Apple silicon (MPS) ---------------------------------------------------------------
    Case(
        "mps-m1",
        M,
        ARM,
        "3.12",
        None,
        (),
        "M1: torch's macOS arm64 wheel (MPS), bnb's macOS wheel from 0.49",
        names=("M1",),
        resolved=("Apple M1",),
        variants=("mps",),
        bnb_min="0.49.0",
    ),
    Case(
        "mps-m3",
        M,
        ARM,
        "3.12",
        None,
        (),
        "M3 likewise",
        names=("Apple M3",),
        resolved=("Apple M3",),
        variants=("mps",),
        bnb_min="0.49.0",
    ),
    Case(
        "mps-m3-max",
        M,
        ARM,
        "3.11",
        None,
        (),
        "M3 Max, Python 3.11",
        names=("M3 Max",),
        variants=("mps",),
    ),
    Case(
        "mps-pin",
        M,
        ARM,
        "3.12",
        None,
        (),
        "--cuda mps on a Mac",
        constraints=Constraints(cuda="mps"),
        variants=("mps",),
    ),
    Case(
        "mps-on-linux",
        L,
        X86,
        "3.12",
        None,
        (),
        "--cuda mps is for Apple silicon only",
        constraints=Constraints(cuda="mps"),
        error="MPS is Apple silicon's",
    ),
    Case(
        "mps-intel-mac",
        M,
        X86,
        "3.12",
        None,
        (),
        "an Intel Mac has no MPS build",
        names=("M1",),
        error="not one for macos-x86_64",
    ),
    # --- --cuda as a checked choice --------------------------------------------------------
    Case(
        "cuda-cu126-spelling",
        L,
        X86,
        "3.12",
        "580.95.05",
        (A100,),
        "uv's spelling cu126 is 12.6",
        constraints=Constraints(cuda="cu126"),
        variants=("cu126",),
    ),
    Case(
        "cuda-unknown-version",
        L,
        X86,
        "3.12",
        "580.95.05",
        (A100,),
        "no torch has a CUDA 12.7 build: refused, listing those that exist",
        constraints=Constraints(cuda="12.7"),
        error="Known: 11.8",
    ),
    Case(
        "cuda-foo",
        L,
        X86,
        "3.12",
        None,
        (),
        "--cuda foo names no build (it used to give a CPU plan)",
        constraints=Constraints(cuda="foo"),
        error="is not a build",
    ),
    Case(
        "cuda-unknown-rocm",
        L,
        X86,
        "3.12",
        None,
        (),
        "--cuda rocm9.9 is no ROCm build in the DB",
        constraints=Constraints(cuda="rocm9.9"),
        error="rocm7.2",
    ),
    Case(
        "mixed-vendors",
        L,
        X86,
        "3.12",
        None,
        (),
        "an AMD and an Intel GPU in one plan are refused",
        names=("MI300X", "Arc A770"),
        error="more than one vendor",
    ),
]


def _target(case: Case) -> Target:
    if not case.names:
        return Target(
            os=case.os,
            arch=case.arch,
            python=case.python,
            driver=DriverVersion(case.driver) if case.driver else None,
            gpus=case.gpus,
            jetson=case.jetson,
            os_version=Version(case.os_version) if case.os_version else None,
        )
    db = load_db()
    flags = MachineFlags(
        os=case.os, arch=case.arch, driver=case.driver, gpus=case.names, python=case.python
    )
    target = target_from_machine(apply_flags(None, flags, db), db, python=case.python)
    names = (*(n for n, _ in target.gpus), *(a.name for a in target.accelerators))
    if case.resolved:
        assert names == case.resolved, names
    return target


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_profile(case: Case) -> None:
    db = load_db()
    if case.error:
        with pytest.raises(ProvisionError) as info:
            make_plan(_target(case), db, case.constraints)
        assert case.error in str(info.value), str(info.value)
        return
    target = _target(case)
    plan = make_plan(target, db, case.constraints)
    t, b = plan.torch, plan.bitsandbytes
    got = f"torch {t.version}+{t.variant}, bnb {b.version} ({b.library})"
    if case.variants:
        assert t.variant in case.variants, got
    if case.torch_min:
        assert t.version >= Version(case.torch_min), got
    if case.torch_max:
        assert t.version <= Version(case.torch_max), got
    if case.bnb_min:
        assert b.version >= Version(case.bnb_min), got
    if case.bnb_max:
        assert b.version <= Version(case.bnb_max), got
    if case.library:
        assert b.library == case.library, got
    assert (plan.verified is not None) == case.verified, got
    if case.warning:
        assert any(case.warning in w for w in plan.warnings), plan.warnings
    _check_policy(case, plan)
    _check_invariants(case, target, plan)


def _check_policy(case: Case, plan: Plan) -> None:
    """The issue 13 expectations: floor, ladder, evidence, facts, companions, indexes."""
    if case.driver_floor:
        assert str(plan.driver_floor) == case.driver_floor, plan.driver_floor
    if case.driver is None and case.gpus and case.ladder is not None:
        rungs = tuple(f"{r.driver}={r.torch.label}" for r in plan.ladder)
        assert rungs == case.ladder, rungs
    assert bool(plan.evidence) == case.evidence, plan.evidence
    assert bool(plan.torch.unverified) == case.unverified, plan.torch.unverified
    for name, version in case.packages:
        assert plan.package(name) == version, plan.packages
        assert (name, version) in plan.companions
    assert (plan.bitsandbytes.index_url is not None) == case.bnb_index
    if case.build:
        assert plan.torch.build == case.build
    assert (plan.snippet == "") == case.no_snippet


def _check_invariants(case: Case, target: Target, plan: Plan) -> None:
    """What holds for every plan."""
    db = load_db()
    t, b = plan.torch, plan.bitsandbytes
    got = f"torch {t.version}+{t.variant}, bnb {b.version} ({b.library})"
    if t.variant.startswith("cu"):
        floor, _ = db.min_driver(t.cuda or "", case.os)
        assert floor is not None and plan.driver_floor is not None
        assert plan.driver_floor >= floor
        assert target.driver is None or target.driver >= plan.driver_floor
        assert {cc for cc, _ in t.coverage} == {f"{a}.{b}" for _, (a, b) in target.gpus}
        if b.index_url is None:  # the third-party index's kernels are not in the DB
            assert {cc for cc, _ in b.coverage} == {f"{a}.{b}" for _, (a, b) in target.gpus}
    if t.variant.startswith("rocm"):  # the library holds every AMD GPU's gfx (from the binary)
        lib = next(x for x in db.bnb_libs(b.version, target.platform) if x.file == b.library)
        assert all(lib.has_gfx(a.target or "") for a in target.accelerators), lib.gfx
    if t.variant in ("xpu", "mps") or t.variant.startswith("rocm"):
        assert not target.gpus, got
    for rung in plan.ladder:  # older floors, newest first, never the plan again
        assert rung.driver < (plan.driver_floor or rung.driver)
    if case.os == "windows" and t.variant != "cpu":
        assert t.index_url == f"https://download.pytorch.org/whl/{t.variant}"
    if case.constraints.profile == "qlora":
        assert plan.package("peft") is not None
        assert Version(plan.package("peft") or "0") >= Version("0.14.0")
    tr = plan.package("transformers")
    if tr and Version(tr).major >= 5:
        assert b.version >= Version("0.46.1")


def test_at_least_ninety_profiles() -> None:
    assert len(CASES) >= 90
    backends = {v[:4] for c in CASES for v in c.variants}
    assert {"rocm", "xpu", "mps", "cu12", "cu13", "cpu"} <= backends
    assert (
        sum(1 for c in CASES if c.names) >= 40
    )  # names, gfx targets and models as users write them
    covered = {cc[0] for c in CASES for _, cc in c.gpus}
    assert {3, 5, 6, 7, 8, 9, 10, 12, 13} <= covered
    assert all(c.why for c in CASES)
    no_driver = {cc[0] for c in CASES if c.driver is None for _, cc in c.gpus}
    assert {6, 7, 8, 9, 10, 12} <= no_driver  # Pascal, Turing, Ampere, Hopper, Blackwell
    assert {c.os for c in CASES} == {L, W, M}
    assert {c.python for c in CASES} >= {"3.9", "3.10", "3.11", "3.12", "3.14"}


def test_plans_are_deterministic() -> None:
    db = load_db()
    t = Target(os=L, arch=X86, python="3.12", driver=Version("550.54.14"), gpus=(RTX3090,))
    assert make_plan(t, db) == make_plan(t, db)


@pytest.mark.parametrize("cuda", ["12.x", "twelve", "cuda"])
def test_cuda_pin_that_names_no_build(cuda: str) -> None:
    t = Target(os=L, arch=X86, python="3.12", driver=Version("580.95.05"), gpus=(RTX3090,))
    with pytest.raises(NoPlanError, match=f"--cuda {cuda}: .* is not a build") as info:
        make_plan(t, load_db(), Constraints(cuda=cuda))
    assert "Known: 11.8, 12.1" in str(info.value)
    assert "rocm7.2" in str(info.value) and "xpu, mps, cpu" in str(info.value)


@pytest.mark.parametrize(
    ("cuda", "variant"), [("cu128", "cu128"), ("12.8", "cu128"), ("12.8.1", "cu128")]
)
def test_cuda_pin_spellings(cuda: str, variant: str) -> None:
    t = Target(os=L, arch=X86, python="3.12", driver=Version("580.95.05"), gpus=(RTX3090,))
    plan = make_plan(t, load_db(), Constraints(cuda=cuda))
    assert plan.torch.variant == variant
    assert plan.constraints.cuda == "12.8"
