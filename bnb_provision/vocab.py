"""The tool's closed vocabularies, as types; each runtime tuple is derived from its type.

Click choices, DB validation and JSON schemas all read these, so a new word is added
in one place.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "CATEGORIES",
    "COMPANIONS",
    "FLEET_ENGINES",
    "FLEET_MODES",
    "HF_PACKAGES",
    "NODE_STATUSES",
    "PLATFORMS",
    "PROFILES",
    "QUANTS",
    "REPORT_TOOLS",
    "SEVERITIES",
    "STACKS",
    "Category",
    "Companion",
    "FleetEngine",
    "FleetMode",
    "HfPackage",
    "NodeStatus",
    "Platform",
    "Profile",
    "Quant",
    "ReportTool",
    "Severity",
    "Stack",
]

Stack = Literal["bnb", "gptq", "awq"]
"""A quantization stack; each gets its own environment and lock."""
STACKS: Final[tuple[Stack, ...]] = get_args(Stack)

Profile = Literal["inference", "qlora"]
"""What the stack is for: qlora adds peft and trl."""
PROFILES: Final[tuple[Profile, ...]] = get_args(Profile)

Platform = Literal[
    "linux-x86_64",
    "linux-aarch64",
    "windows-x86_64",
    "windows-aarch64",
    "macos-arm64",
    "macos-x86_64",
]
"""An OS and CPU architecture pair, as wheels are built for them."""
PLATFORMS: Final[tuple[Platform, ...]] = get_args(Platform)

Severity = Literal["error", "warning", "info"]
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)

Category = Literal[
    "cuda_runtime_mismatch",
    "arch_not_compiled",
    "driver_too_old",
    "windows_install",
    "oom_on_quant_load",
    "conflicting_quant_libs",
    "cpu_only_build",
    "hf_stack",
    "dtype",
    "drift",
    "other",
]
"""What kind of failure a finding is; doctor, explain and the DB's error patterns share it."""
CATEGORIES: Final[tuple[Category, ...]] = get_args(Category)

Quant = Literal["nf4", "fp4", "int8"]
"""A bitsandbytes weight format."""
QUANTS: Final[tuple[Quant, ...]] = get_args(Quant)

HfPackage = Literal["transformers", "accelerate", "peft", "trl"]
"""The Hugging Face packages a plan pins (peft and trl only for qlora)."""
HF_PACKAGES: Final[tuple[HfPackage, ...]] = get_args(HfPackage)

FleetEngine = Literal["ansible", "slurm"]
"""What drives a fleet run: an Ansible inventory, or a Slurm allocation."""
FLEET_ENGINES: Final[tuple[FleetEngine, ...]] = get_args(FleetEngine)

FleetMode = Literal["snapshot", "init"]
"""What a fleet run does on each node: detect --json, or init --lock."""
FLEET_MODES: Final[tuple[FleetMode, ...]] = get_args(FleetMode)

NodeStatus = Literal["ok", "unreachable", "failed"]
"""How a node came out of a fleet run."""
NODE_STATUSES: Final[tuple[NodeStatus, ...]] = get_args(NodeStatus)


Companion = Literal["torchvision", "torchaudio"]
"""The torch companions a plan pins on request (``--with``) to the release built for its
torch, so that installing them later cannot replace torch."""
COMPANIONS: Final[tuple[Companion, ...]] = get_args(Companion)


ReportTool = Literal["nvidia-smi", "collect_env", "bitsandbytes", "hf-env", "pip", "text"]
"""The tool whose output a section of a pasted report is (``plan --from``): nvidia-smi
(table and ``-q``), torch's collect_env, ``python -m bitsandbytes``, the Hugging Face
``env`` commands (transformers, accelerate, diffusers, trl), pip list / freeze, and free
text (facts stated in prose, paths, error lines)."""
REPORT_TOOLS: Final[tuple[ReportTool, ...]] = get_args(ReportTool)
