"""The optimizer: L-BFGS on the pixels, projected onto [0, 1], for a fixed number of evaluations.

It knows nothing of images or networks: it minimises any `Objective` (x -> loss, gradient, terms).
Unit steps, no line search (each evaluation of a big layer is expensive, and L-BFGS steps are
well scaled once it has curvature); a step that makes the loss NaN or clearly larger is rejected
and the next try goes half as far along the same direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from stylecore.engine.optimize.objective import Objective, Terms

# A step is rejected when it raises the loss by more than this fraction. Not zero: the tiled and the
# whole-image objective differ by float rounding (~1e-6), and that must not decide the path taken.
UPHILL_TOLERANCE = 1e-3
# (evaluations done, loss terms of the current point, the current point); may raise Cancelled
StepHook = Callable[[int, Terms, torch.Tensor], None]


def history_size(numel: int, budget_bytes: float = 2e9, most: int = 50) -> int:
    """L-BFGS keeps two image-sized vectors per remembered step: bound them for huge layers."""
    return int(max(3, min(most, budget_bytes // (8 * numel))))


@dataclass(frozen=True)
class Curvature:
    """The inverse-Hessian scale L-BFGS learned, carried to the next scale.

    Without it every scale's first step is a blind, tiny one (torch's LBFGS takes 1/|g|_1) and
    the second evaluation is wasted; with few evaluations per fine scale that was a third of
    them. Gradients per pixel shrink as 1/pixels (Grams are averages), so the scale grows with
    the pixel count."""

    gamma: float
    pixels: int

    def at(self, pixels: int) -> float:
        return self.gamma * pixels / self.pixels


@dataclass
class _Memory:
    steps: list[tuple[torch.Tensor, torch.Tensor, float]]  # (s, y, 1 / y.s), oldest first
    size: int
    gamma: float | None

    def remember(self, s: torch.Tensor, y: torch.Tensor) -> None:
        ys = float(y.dot(s))
        if ys > 1e-10 * max(1e-30, float(s.dot(s))):  # curvature condition: keeps H positive definite
            self.steps.append((s, y, 1.0 / ys))
            if len(self.steps) > self.size:
                self.steps.pop(0)
            self.gamma = ys / float(y.dot(y))

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        if self.gamma is None:  # no curvature yet: a cautious steepest-descent step
            return -g * min(1.0, 1.0 / float(g.abs().sum().clamp_min(1e-30)))
        return -two_loop(g, self.steps, self.gamma)


def minimize(
    init: torch.Tensor, objective: Objective, evals: int, hook: StepHook | None = None, curvature: Curvature | None = None
) -> tuple[torch.Tensor, Curvature | None]:
    """Runs `evals` evaluations from `init`; returns the best point and the curvature to start the next scale with."""
    x = init.detach().clamp(0.0, 1.0).contiguous()
    pixels = x.shape[-1] * x.shape[-2]
    memory = _Memory([], min(history_size(x.numel()), max(evals, 3)), curvature.at(pixels) if curvature else None)
    loss, grad, terms = objective(x)
    if hook is not None:
        hook(1, terms, x)
    reach = 1.0  # fraction of the L-BFGS step to take: halved after each rejected step
    for count in range(2, evals + 1):
        g = grad.reshape(-1)
        new_x = (x + reach * memory.direction(g).view_as(x)).clamp_(0.0, 1.0)
        new_loss, new_grad, new_terms = objective(new_x)
        if (
            not math.isfinite(new_loss)
            or new_loss > loss + UPHILL_TOLERANCE * abs(loss)
            or not bool(torch.isfinite(new_grad).all())
        ):
            reach *= 0.5
        else:
            memory.remember((new_x - x).reshape(-1), (new_grad - grad).reshape(-1))
            x, loss, grad, terms, reach = new_x, new_loss, new_grad, new_terms, 1.0
        if hook is not None:
            hook(count, terms, x)
    return x, (Curvature(memory.gamma, pixels) if memory.gamma is not None else curvature)


def two_loop(g: torch.Tensor, steps: list[tuple[torch.Tensor, torch.Tensor, float]], gamma: float) -> torch.Tensor:
    """H·g for the L-BFGS inverse-Hessian estimate H (Nocedal & Wright, algorithm 7.4)."""
    q = g.clone()
    alphas = []
    for s, y, rho in reversed(steps):
        a = rho * float(s.dot(q))
        alphas.append(a)
        q.add_(y, alpha=-a)
    q.mul_(gamma)
    for (s, y, rho), a in zip(steps, reversed(alphas)):
        b = rho * float(y.dot(q))
        q.add_(s, alpha=a - b)
    return q
