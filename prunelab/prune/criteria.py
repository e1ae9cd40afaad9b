"""Importance criteria: which weights, units or directions matter.

A criterion scores the elements of a weight matrix (`__call__`), combines element scores into a unit's
score (`unit_score`, for structured pruning) and factorises a matrix into ranked directions (`factorize`,
for low-rank). A new criterion is one class here and one line in `CRITERIA`."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from prunelab.prune.calibration import Calibration

EPS = 1e-8


class Criterion(ABC):
    """How important a weight, a unit or a direction is. `name` is the spec and CLI word; `data_driven` says
    whether it reads calibration statistics; `needs_gradients` whether calibration runs a backward pass."""

    name = ""
    data_driven = True
    needs_gradients = False  # calibration runs a backward pass and keeps per-weight statistics only for these
    # with least-squares reconstruction, structured pruning keeps the units whose removal costs the least output
    # error after the refit, from the full Gram matrix of the reading matrix's input (prune.reconstruct), for the
    # criteria whose statistic is that matrix's diagonal (measured: benchmarks/unit_choice.py)
    gram_choice = False

    @abstractmethod
    def __call__(self, name: str, weight: torch.Tensor, calib: Calibration | None) -> torch.Tensor:
        """Element importance, same shape as `weight` (out x in).

        `name`: the matrix's parameter name, which keys its statistics in `calib`; `calib`: the calibration
        statistics (None for criteria that are not data-driven)."""

    def unit_score(self, element_scores: torch.Tensor, dim: int) -> torch.Tensor:
        """Score of each unit (a row when dim=1 is reduced, a column when dim=0)."""
        return element_scores.sum(dim=dim)

    @abstractmethod
    def factorize(self, name: str, weight: torch.Tensor, calib: Calibration | None):
        """(U, S, Vh) with weight ~= U @ diag(S) @ Vh; S ranks the directions, largest first. Arguments as for
        `__call__`."""


def _svd(matrix: torch.Tensor):
    return torch.linalg.svd(matrix.double(), full_matrices=False)


def _need(calib: Calibration | None, criterion: str) -> Calibration:
    if calib is None:
        raise ValueError(f"criterion {criterion!r} is data-driven and needs calibration statistics")
    return calib


class Magnitude(Criterion):
    """|w|; a unit's L2 norm; plain truncated SVD (singular values)."""

    name, data_driven = "magnitude", False

    def __call__(self, name, weight, calib):
        return weight.detach().abs()

    def unit_score(self, element_scores, dim):
        return element_scores.pow(2).sum(dim=dim).sqrt()

    def factorize(self, name, weight, calib):
        u, s, vh = _svd(weight.detach())
        return u.float(), s.float(), vh.float()


class Taylor(Criterion):
    """First-order Taylor importance |w * dL/dw| accumulated over calibration batches; summed over a unit;
    for low-rank a Fisher-weighted SVD: rows scaled by the square root of their summed squared gradients."""

    name = "taylor"
    needs_gradients = True

    def __call__(self, name, weight, calib):
        return _need(calib, self.name).taylor[name]

    def factorize(self, name, weight, calib):
        row = _need(calib, self.name).fisher[name].sum(dim=1).sqrt().double() + EPS
        u, s, vh = _svd(row[:, None] * weight.detach().double())
        return (u / row[:, None]).float(), s.float(), vh.float()


class Activation(Criterion):
    """|w| * ||x|| with input-feature norms from calibration; summed over a unit; for low-rank the SVD of
    W diag(s) with the scaling undone afterwards (activation-aware SVD)."""

    name = "activation"
    gram_choice = True

    def __call__(self, name, weight, calib):
        return weight.detach().abs() * _need(calib, self.name).input_norms[name][None, :]

    def factorize(self, name, weight, calib):
        scale = _need(calib, self.name).input_norms[name].double() + EPS
        u, s, vh = _svd(weight.detach().double() * scale[None, :])
        return u.float(), s.float(), (vh / scale[None, :]).float()


CRITERIA: dict[str, Criterion] = {c.name: c for c in (Magnitude(), Taylor(), Activation())}


def get_criterion(name: str) -> Criterion:
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; expected one of {', '.join(CRITERIA)}")
    return CRITERIA[name]
