"""The optimizer on problems whose answers are known."""

import math

import pytest
import torch

from stylecore.engine.optimize import lbfgs

SHAPE = (1, 3, 4, 5)


def quadratic(center: torch.Tensor, curvature: torch.Tensor, log: list | None = None):
    """f(x) = 1/2 sum curvature * (x - center)^2: minimum at `center`, or at its clamp to [0, 1] in the box."""

    def objective(x):
        if log is not None:
            log.append(x.clone())
        d = x - center
        loss = float(0.5 * (curvature * d * d).sum())
        return loss, curvature * d, {"total": loss}

    return objective


def test_a_convex_quadratic_reaches_its_minimum():
    gen = torch.Generator().manual_seed(0)
    center = 0.2 + 0.6 * torch.rand(SHAPE, generator=gen)
    curvature = 1 + 9 * torch.rand(SHAPE, generator=gen)  # condition number up to 10
    x, _ = lbfgs.minimize(torch.full(SHAPE, 0.5), quadratic(center, curvature), 40)
    assert float((x - center).abs().max()) < 1e-4


def test_the_bounds_hold_at_every_evaluation_and_the_box_minimum_is_found():
    gen = torch.Generator().manual_seed(1)
    center = -0.5 + 2 * torch.rand(SHAPE, generator=gen)  # about half of it outside [0, 1]
    evaluated = []
    x, _ = lbfgs.minimize(torch.full(SHAPE, 0.5), quadratic(center, torch.full(SHAPE, 3.0), evaluated), 30)
    assert all(float(p.min()) >= 0.0 and float(p.max()) <= 1.0 for p in evaluated)
    assert float((x - center.clamp(0, 1)).abs().max()) < 1e-4


def test_the_curvature_carried_from_the_previous_scale_is_used():
    center, k = torch.full(SHAPE, 0.7), 4.0
    pixels = SHAPE[-1] * SHAPE[-2]
    # learned on a scale of a quarter the pixels: Curvature scales gamma with the pixel count
    carried = lbfgs.Curvature(gamma=1 / k / 4, pixels=pixels // 4)
    assert carried.at(pixels) == pytest.approx(1 / k)
    x, _ = lbfgs.minimize(torch.full(SHAPE, 0.3), quadratic(center, torch.full(SHAPE, k)), 2, curvature=carried)
    assert float((x - center).abs().max()) < 1e-6  # the first step, with the exact curvature, lands on the minimum
    blind, learned = lbfgs.minimize(torch.full(SHAPE, 0.3), quadratic(center, torch.full(SHAPE, k)), 2)
    assert float((blind - center).abs().max()) > 0.1  # without it the first step is a cautious one
    assert learned is not None and learned.gamma == pytest.approx(1 / k)  # and the curvature learned is returned


def test_an_uphill_step_is_rejected_and_the_next_goes_half_as_far():
    center, k = torch.full(SHAPE, 0.6), 1.0
    wild = lbfgs.Curvature(gamma=3.0, pixels=SHAPE[-1] * SHAPE[-2])  # three times too long a step: overshoots uphill
    evaluated, totals = [], []
    x, _ = lbfgs.minimize(
        torch.full(SHAPE, 0.5),
        quadratic(center, torch.full(SHAPE, k), evaluated),
        12,
        curvature=wild,
        hook=lambda step, terms, x: totals.append(terms["total"]),
    )
    first_step = evaluated[1] - evaluated[0]
    assert torch.allclose(evaluated[2] - evaluated[0], first_step / 2)  # rejected: half as far, from the same point
    assert totals == sorted(totals, reverse=True)  # the reported loss never goes up
    assert totals[-1] < totals[0]


def test_a_nan_step_is_rejected():
    center = torch.full(SHAPE, 0.9)
    inner = quadratic(center, torch.full(SHAPE, 1.0))
    calls = []

    def objective(x):
        calls.append(x.clone())
        loss, grad, terms = inner(x)
        if len(calls) == 3:  # e.g. an overflow in the network
            return math.nan, grad * math.nan, {"total": math.nan}
        return loss, grad, terms

    x, _ = lbfgs.minimize(torch.full(SHAPE, 0.1), objective, 20)
    assert torch.isfinite(x).all()
    assert torch.allclose(calls[3] - calls[1], (calls[2] - calls[1]) / 2)
    assert float((x - center).abs().max()) < 1e-3
