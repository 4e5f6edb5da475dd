"""Where ``device_map="auto"`` puts each module: a replay of transformers' planning.

transformers (``integrations/accelerate.py`` in 5.x, accelerate's ``utils/modeling.py``
before) sizes every module with the quantizer's element sizes (0.5 byte per 4-bit weight,
1 per int8 weight), balances GPUs (``get_balanced_memory``), keeps its headroom
(``adjust_max_memory``), then walks the modules in order, keeping room on the first GPU for
the largest layer still to come, splitting a module that does not fit unless it is a
decoder layer. A bitsandbytes model with any module left for the CPU is refused ("Some
modules are dispatched on the CPU or the disk").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from bnb_provision.core.text import is_digits
from bnb_provision.fit.weights import Planned

__all__ = ["Node", "Placement", "balanced_budgets", "build_tree", "place"]

_BLOCK_PARENTS: Final = ("layers", "h", "blocks", "layer", "block")
_FIRST: Final = re.compile(r"embed|wte|wpe|tok_|word_")
_LAST: Final = re.compile(r"^(lm_head|embed_out|output)$")
_LATE: Final = re.compile(r"^(norm|final_layernorm|ln_f|final_norm)$")


@dataclass(slots=True)
class Node:
    name: str
    no_split: bool = False
    map_bytes: float = 0.0
    gpu_bytes: float = 0.0
    elements: int = 0
    children: list[Node] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True, slots=True)
class Placement:
    """Per GPU: planning bytes and real bytes of the modules put there; what was left over."""

    map_bytes: tuple[float, ...]
    gpu_bytes: tuple[float, ...]
    leftover: tuple[str, ...]  # modules that went to the CPU (a refusal for bitsandbytes)
    leftover_elements: int  # parameters of those modules
    modules: tuple[tuple[str, int], ...]  # (module, GPU index) in order

    @property
    def refused(self) -> bool:
        return bool(self.leftover)


def _order_key(name: str) -> tuple[tuple[int, int, str], ...]:
    key = []
    for part in name.split("."):
        if is_digits(part):
            key.append((1, int(part), ""))
        elif _LAST.match(part):
            key.append((3, 0, part))
        elif _LATE.match(part):
            key.append((2, 0, part))
        else:
            key.append((0 if _FIRST.search(part) else 1, 0, part))
    return tuple(key)


def build_tree(tensors: tuple[Planned, ...]) -> Node:
    """The module tree, in the order the model defines its modules."""
    root = Node(name="")
    index: dict[str, Node] = {"": root}
    for t in sorted(tensors, key=lambda p: _order_key(p.name)):
        parts = t.name.split(".")[:-1]
        node = root
        node.map_bytes += t.map_bytes
        node.gpu_bytes += t.gpu_bytes
        node.elements += t.numel
        for depth in range(len(parts)):
            path = ".".join(parts[: depth + 1])
            child = index.get(path)
            if child is None:
                no_split = (
                    is_digits(parts[depth]) and depth > 0 and parts[depth - 1] in _BLOCK_PARENTS
                )
                child = Node(name=path, no_split=no_split)
                node.children.append(child)
                index[path] = child
            child.map_bytes += t.map_bytes
            child.gpu_bytes += t.gpu_bytes
            child.elements += t.numel
            node = child
    return root


def _max_layer(nodes: list[Node]) -> tuple[float, list[str]]:
    """accelerate's get_max_layer_size: the largest leaf or unsplittable module."""
    best, names = 0.0, []
    todo = list(nodes)
    while todo:
        n = todo.pop(0)
        if not n.children or n.no_split:
            if n.map_bytes > best:
                best, names = n.map_bytes, [n.name]
            elif n.map_bytes == best:
                names.append(n.name)
        else:
            todo = n.children + todo
    return best, names


def place(root: Node, budgets: list[float]) -> Placement:
    """Replay infer_auto_device_map over GPUs with these byte budgets, then the CPU."""
    todo = list(root.children)
    used = [0.0] * len(budgets)
    real = [0.0] * len(budgets)
    modules: list[tuple[str, int]] = []
    leftover: list[str] = []
    left_elements = 0
    device = 0
    max_layer, names = _max_layer(todo)
    while todo:
        node = todo.pop(0)
        names = [n for n in names if n != node.name and not n.startswith(node.name + ".")]
        if not names:
            max_layer, names = _max_layer(todo)
        if device >= len(budgets):
            leftover.append(node.name)
            left_elements += node.elements
            continue
        limit = budgets[device] - (max_layer if device == 0 else 0.0)
        if used[device] + node.map_bytes <= limit:
            used[device] += node.map_bytes
            real[device] += node.gpu_bytes
            modules.append((node.name, device))
            continue
        if node.children and not node.no_split:
            todo = node.children + todo
            max_layer, names = _max_layer(todo)
            continue
        device += 1
        todo.insert(0, node)
    return Placement(
        map_bytes=tuple(used),
        gpu_bytes=tuple(real),
        leftover=tuple(leftover),
        leftover_elements=left_elements,
        modules=tuple(modules),
    )


def _no_split_max(root: Node) -> float:
    best = 0.0
    todo = [root]
    while todo:
        n = todo.pop()
        if n.no_split:
            best = max(best, n.map_bytes)
        else:
            todo.extend(n.children)
    return best


def _leaves(root: Node) -> list[float]:
    out, todo = [], [root]
    while todo:
        n = todo.pop()
        if n.children:
            todo.extend(n.children)
        else:
            out.append(n.map_bytes)
    return out


def balanced_budgets(
    root: Node,
    free: list[float],
    *,
    user_max_memory: bool,
    single_gpu_reserve: float,
    quantizer_reserve: float,
) -> list[float]:
    """get_balanced_memory, then the quantizer's adjust_max_memory."""
    budgets = list(free)
    if len(budgets) == 1:
        if not user_max_memory:
            budgets[0] *= 1 - single_gpu_reserve
    else:
        leaves = _leaves(root)
        mean_leaf = sum(leaves) / max(len(leaves), 1)
        per_gpu = root.map_bytes / len(budgets) + 1.25 * max(_no_split_max(root), mean_leaf)
        budgets = [min(per_gpu, b) for b in budgets[:-1]] + budgets[-1:]
    return [b * (1 - quantizer_reserve) for b in budgets]
