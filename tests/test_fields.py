"""Spatially correlated fields: unit variance, Gaussian marginal, exponential correlation."""

from __future__ import annotations

import math

import pytest
import torch

from mobileai.twin.fields import SinusoidField


def test_field_statistics_match_exponential_correlation() -> None:
    n_fields, corr = 4000, 50.0
    f = SinusoidField(
        torch.full((n_fields,), corr, dtype=torch.float64),
        48,
        torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    idx = (torch.arange(n_fields)[None, :],)
    x0 = torch.zeros(1, n_fields, dtype=torch.float64)
    a = f.sample(x0, x0, idx)[0]
    assert a.mean().item() == pytest.approx(0.0, abs=0.06)
    assert a.std().item() == pytest.approx(1.0, abs=0.05)
    kurt = ((a - a.mean()) ** 4).mean() / a.var() ** 2
    assert kurt.item() == pytest.approx(3.0, abs=0.3)
    for lag in (25.0, 50.0, 100.0):
        b = f.sample(x0 + lag, x0, idx)[0]
        rho = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
        assert rho == pytest.approx(math.exp(-lag / corr), abs=0.06)


def test_field_is_a_function_of_position() -> None:
    f = SinusoidField(torch.tensor([10.0]), 48, torch.Generator().manual_seed(1))
    x = torch.tensor([[3.0], [3.0]])
    y = torch.tensor([[7.0], [7.0]])
    v = f.sample(x, y, (torch.zeros(1, 1, dtype=torch.long),))
    assert v[0, 0] == v[1, 0]
