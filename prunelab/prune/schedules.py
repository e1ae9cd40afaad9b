"""Schedule shapes: the sequence of model sizes an incremental run passes through, and how the
fine-tuning budget is split across its stages. Plain functions of their parameters, so that a schedule
is fully described by a small serialisable dict (what the sweep's Optuna search samples)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

SHAPES = ("polynomial", "exponential", "explicit")


@dataclass(frozen=True)
class Schedule:
    """`shape` and its parameters; `stages` is K (ignored for `explicit`, whose `fractions` give the sizes)."""

    shape: str = "polynomial"
    stages: int = 4
    exponent: float = 3.0                 # polynomial: 1 = linear, 3 = cubic (Zhu & Gupta 2017)
    fractions: tuple[float, ...] = field(default_factory=tuple)  # explicit: sizes after each stage
    budget_split: float = 1.0             # stage k gets a share of the steps proportional to budget_split**k

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"unknown schedule shape {self.shape!r}; expected one of {', '.join(SHAPES)}")
        if self.shape != "explicit" and self.stages < 1:
            raise ValueError(f"stages must be >= 1, got {self.stages}")
        if self.shape == "polynomial" and self.exponent <= 0:
            raise ValueError(f"exponent must be > 0, got {self.exponent}")
        if self.budget_split <= 0:
            raise ValueError(f"budget_split must be > 0, got {self.budget_split}")

    def to_dict(self) -> dict:
        return {**asdict(self), "fractions": list(self.fractions)}

    def sizes(self, target: float) -> list[float]:
        """[1.0, s_1, ..., s_K]: non-increasing, ending exactly at `target`."""
        if not 0 < target <= 1:
            raise ValueError(f"target size must be in (0, 1], got {target}")
        if self.shape == "explicit":
            return explicit_sizes(self.fractions, target)
        k_max = self.stages
        if self.shape == "polynomial":
            sizes = [target + (1 - target) * (1 - k / k_max) ** self.exponent for k in range(k_max + 1)]
        else:
            sizes = [target ** (k / k_max) for k in range(k_max + 1)]
        sizes[0], sizes[-1] = 1.0, target
        return sizes

    def stage_steps(self, total_steps: int, n_stages: int) -> list[int]:
        """Split `total_steps` over `n_stages` stages, proportional to budget_split**k, summing exactly."""
        weights = [self.budget_split ** k for k in range(1, n_stages + 1)]
        return split_integer(total_steps, weights)


def explicit_sizes(fractions: Sequence[float], target: float) -> list[float]:
    sizes = [1.0, *fractions]
    if sizes[-1] != target:
        sizes.append(target)
    if any(b > a for a, b in zip(sizes, sizes[1:])) or any(not 0 < s <= 1 for s in sizes):
        raise ValueError(f"explicit fractions must decrease from 1.0 to the target {target}: {list(fractions)}")
    return sizes


def split_integer(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of `total` in proportion to `weights`."""
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    parts = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)[: total - sum(parts)]:
        parts[i] += 1
    return parts
