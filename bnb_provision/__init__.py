"""bnb-provision: detect, plan, lock and repair bitsandbytes / PyTorch / CUDA stacks."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
