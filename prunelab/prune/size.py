"""Size accounting: parameters counted the way the deployed model stores them.

Dense and structured / low-rank models store their real tensor sizes; unstructured models store only the
non-zeros of their masked matrices (sparse storage). `target_size` and `achieved_size` are fractions of
the base model's stored parameters."""
from __future__ import annotations

from prunelab.lm.adapter import ModelAdapter

SIZE_TOLERANCE = 0.01  # achieved size must be within 1% (absolute) of the target


def stored_params(lm: ModelAdapter) -> int:
    """Parameters the deployed model stores; a masked matrix counts its kept entries."""
    return lm.param_counts()["params_total"]


def check_size(achieved: float, target: float) -> None:
    if abs(achieved - target) > SIZE_TOLERANCE:
        raise RuntimeError(f"achieved size {achieved:.4f} is not within {SIZE_TOLERANCE} of the target {target:.4f}")
