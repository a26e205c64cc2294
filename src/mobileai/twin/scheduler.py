"""Resource sharing over one twin step: proportional fair, round robin or max rate, batched over
all cells (or cell x slice groups), with water-filling of the resources that satisfied UEs leave.

A fluid model of the MAC scheduler over a step of ``dt_s`` (100 ms: hundreds of slots). Each
schedulable UE ``u`` of group ``g`` gets a share ``x_u`` of the cell's time-frequency resources,
``sum_u x_u <= capacity_g``, and is served ``x_u rate_u dt`` bits, ``rate_u`` being its rate with
all the resources (``linkadapt.peak_rate_bps``). Shares follow the policy's weights ``w_u``:

- ``pf``: ``w_u = rate_u / avg_u``, the proportional fair metric (Jalali, Padovani and Pankaj,
  VTC 2000; Sionna SYS ``PFSchedulerSUMIMO``), ``avg_u`` the EMA of the UE's past throughput
  (:func:`update_average`). The UE with the lower average gets more time; at the PF equilibrium
  (``avg_u`` proportional to ``rate_u``) full-buffer UEs get equal time shares;
- ``rr``: ``w_u = 1``, equal time shares (round robin);
- ``maxrate``: strict priority by rate, highest first.

Water-filling: a UE never takes more than it needs to empty its buffer, ``n_u = demand_u / (rate_u
dt)``; what it leaves goes to the others in proportion to their weights, so
``x_u = min(n_u, lambda_g w_u)`` with the water level ``lambda_g`` at which the group uses
``min(capacity_g, sum_u n_u)``. The level is found exactly, without iterating over passes: with
the group's UEs sorted by ``n_k / w_k``, ``A_k`` the needs before ``k`` and ``B_k`` the weights
from ``k`` on, ``lambda_g = max_k (capacity_g - A_k) / B_k`` (the maximum is reached at the first
UE the level does not satisfy; every other term is below it). One sort by (group, key), segmented
prefix sums and a scatter-max do it for all groups at once; one more step recomputes the level
from the satisfied / unsatisfied split with per-group sums, which removes the rounding of the
prefix sums (their running totals span all groups). No Python loop over UEs or groups, no host
sync. ``maxrate`` fills UEs in descending rate order with the same prefix sums.

The same code runs on two array back ends: torch on CUDA, NumPy on CPU (zero-copy views of the
CPU tensors). For a few thousand UEs the work is a few dozen small vector operations, and NumPy's
per-operation overhead and its sort are lower than torch's on CPU (about 2x for the whole call).
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Literal

import numpy as np
import torch

Policy = Literal["pf", "rr", "maxrate"]
POLICIES: tuple[str, ...] = ("pf", "rr", "maxrate")

#: Floor of the PF average throughput (bit/s), so a UE with no history gets a large finite weight.
MIN_AVG_BPS = 1.0

_TINY = float(np.finfo(np.float64).tiny)


def pf_share(
    group: torch.Tensor,
    rate_bps: torch.Tensor,
    demand_bits: torch.Tensor,
    avg_tput_bps: torch.Tensor,
    capacity: torch.Tensor,
    dt_s: float,
    policy: Policy = "pf",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Share each group's resources among its UEs for one step.

    Args:
        group: [U] integer group (cell, or cell x slice) of each UE, -1 = not schedulable.
        rate_bps: [U] rate with all of the cell's resources all the time (bit/s); when
            ``capacity`` carries the TDD share, compute it with ``peak_rate_bps(..., fraction=1)``.
        demand_bits: [U] buffered bits.
        avg_tput_bps: [U] PF average throughput (bit/s); ignored by ``rr`` and ``maxrate``.
        capacity: [G] share 0..1 of the resources the group may use during the step
            (TDD share x slice share x availability).
        dt_s: step length, s.
        policy: ``pf`` (default), ``rr`` or ``maxrate``.

    Returns:
        ``served_bits`` [U] (float32) and ``used_fraction`` [G] (float32, <= capacity): the share of
        resources the group's UEs used. On the inputs' device.

    A UE is scheduled when its group is >= 0, its demand and rate are > 0; the others get 0.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES} (got {policy!r})")
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0 (got {dt_s})")
    args = (group, rate_bps, demand_bits, avg_tput_bps, capacity)
    if rate_bps.device.type != "cpu":
        return _water_fill(_TORCH, *args, dt_s, policy)
    arrays = [a.detach().numpy() for a in args]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        served, used = _water_fill(_NUMPY, *arrays, dt_s, policy)
    return torch.from_numpy(served), torch.from_numpy(used)


def _water_fill(xp, group, rate_bps, demand_bits, avg_tput_bps, capacity, dt_s: float, policy: str):
    """The algorithm of the module docstring on array back end ``xp`` (:data:`_TORCH`, :data:`_NUMPY`)."""
    n_groups = capacity.shape[0]
    # float64 inside: the segmented prefix sums below subtract running totals
    full_bits = xp.clamp_min(xp.f64(rate_bps) * dt_s, _TINY)  # bits with the whole cell, > 0
    active = (group >= 0) & (xp.minimum(rate_bps, demand_bits) > 0)
    g = xp.where(active, xp.long(group), n_groups)  # unschedulable UEs: a dummy group, capacity 0
    cap_ext = xp.clamp01(xp.pad1(xp.f64(capacity)))
    # share that empties the buffer, capped at the group's capacity (0 for unschedulable UEs:
    # fmin drops the NaN of a NaN input)
    need = xp.fmin(xp.clamp_min(demand_bits, 0.0) / full_bits, xp.take(cap_ext, g))
    # per group: capacity plus the needs of all earlier groups (offset of the prefix sums below)
    n_tot = xp.seg_sum(need, g, n_groups + 1)
    cap_off = cap_ext + n_tot.cumsum(0) - n_tot

    if policy == "maxrate":
        key = 1.0 / full_bits  # ascending key = descending rate
    else:
        if policy == "pf":
            w = xp.clamp_min(full_bits / xp.clamp_min(avg_tput_bps, MIN_AVG_BPS), _TINY)
        else:
            w = xp.ones_like(full_bits)
        # scale each group's weights to sum 1: the shares are unchanged and the running totals of
        # the prefix sums below stay small (at most the number of groups)
        w_sum = xp.seg_sum(w, g, n_groups + 1)
        w = w / xp.take(w_sum, g)
        key = need / w  # a UE is satisfied at water level lambda iff key <= lambda

    # one sort by (group, key): the key squashed into [0, 0.5) is added to the group index
    order = xp.argsort(g + 0.5 * key / (key + 1.0))
    gs = xp.take(g, order)
    ns = xp.take(need, order)
    # capacity left after the needs of the UEs before each one in its group: c - A_k
    left = xp.take(cap_off, gs) - ns.cumsum(0) + ns

    if policy == "maxrate":
        x = xp.unsort(xp.clamp_min(xp.minimum(left, ns), 0.0), order)
    else:
        ws = xp.take(w, order)
        # weights of this UE and the later ones in its group: B_k
        b_k = xp.take(xp.f64(w_sum > 0).cumsum(0), gs) - ws.cumsum(0) + ws
        # water level of each group: lambda = max_k (c - A_k) / B_k (see the module docstring)
        level = xp.seg_max(left / b_k, gs, n_groups + 1, 0.0)
        # B_k above is a difference of running totals over all groups: when the unsatisfied UEs'
        # weights are tiny next to the group's largest, it carries a relative error. Recompute the
        # level from the satisfied / unsatisfied split it gives, with per-group sums only.
        sat = key <= xp.take(level, g)
        w_unsat = xp.seg_sum(xp.where(sat, 0.0, w), g, n_groups + 1)
        left_g = xp.clamp_min(cap_ext - xp.seg_sum(xp.where(sat, need, 0.0), g, n_groups + 1), 0.0)
        level = xp.where(w_unsat > 0, left_g / w_unsat, math.inf)
        x = xp.minimum(need, w * xp.take(level, g))

    served = xp.where(active, xp.minimum(x * full_bits, demand_bits), 0.0)
    used = xp.minimum(n_tot[:n_groups], cap_ext[:n_groups])  # water-filling uses min(c, sum n)
    return xp.f32(served), xp.f32(used)


def _torch_seg(v: torch.Tensor, seg: torch.Tensor, n: int, reduce: str, init: float) -> torch.Tensor:
    out = torch.full((n,), init, dtype=v.dtype, device=v.device)
    if reduce == "sum":
        return out.index_add_(0, seg, v)
    return out.scatter_reduce_(0, seg, v, reduce="amax")


def _numpy_seg_max(v: np.ndarray, seg: np.ndarray, n: int, init: float) -> np.ndarray:
    out = np.full(n, init)
    np.maximum.at(out, seg, v)
    return out


def _numpy_unsort(v: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty_like(v)
    out[order] = v
    return out


#: Array back ends of :func:`_water_fill`: the few operations whose spelling differs.
_TORCH = SimpleNamespace(
    f64=lambda a: a.to(torch.float64),
    f32=lambda a: a.to(torch.float32),
    long=lambda a: a.long(),
    clamp_min=torch.clamp_min,
    clamp01=lambda a: a.clamp(0.0, 1.0),
    where=torch.where,
    minimum=torch.minimum,
    fmin=torch.fmin,
    ones_like=torch.ones_like,
    pad1=lambda a: torch.nn.functional.pad(a, (0, 1)),
    take=lambda a, i: a.index_select(0, i),
    seg_sum=lambda v, seg, n: _torch_seg(v, seg, n, "sum", 0.0),
    seg_max=lambda v, seg, n, init: _torch_seg(v, seg, n, "amax", init),
    argsort=torch.argsort,
    unsort=lambda v, order: torch.empty_like(v).index_copy_(0, order, v),
)
_NUMPY = SimpleNamespace(
    f64=lambda a: a.astype(np.float64),
    f32=lambda a: a.astype(np.float32),
    long=lambda a: a.astype(np.int64, copy=False),
    clamp_min=np.maximum,  # NaN-propagating, like torch.clamp_min
    clamp01=lambda a: np.minimum(np.maximum(a, 0.0), 1.0),
    where=np.where,
    minimum=np.minimum,
    fmin=np.fmin,
    ones_like=np.ones_like,
    pad1=lambda a: np.append(a, 0.0),
    take=lambda a, i: a[i],
    seg_sum=lambda v, seg, n: np.bincount(seg, weights=v, minlength=n),
    seg_max=_numpy_seg_max,
    argsort=np.argsort,
    unsort=_numpy_unsort,
)


def update_average(
    avg_bps: torch.Tensor, served_bits: torch.Tensor, dt_s: float, tc_s: float = 1.0
) -> torch.Tensor:
    """PF average throughput after a step: an EMA of ``served_bits / dt_s`` with time constant
    ``tc_s``, weight ``beta = 1 - exp(-dt_s / tc_s)`` (so the memory does not depend on the step;
    for ``dt_s << tc_s`` it is the classic ``1 / t_c`` in steps)."""
    if not dt_s > 0 or not tc_s > 0:
        raise ValueError(f"dt_s and tc_s must be > 0 (got {dt_s}, {tc_s})")
    beta = 1.0 - math.exp(-dt_s / tc_s)
    if avg_bps.device.type == "cpu" and avg_bps.dtype == torch.float32:
        # NumPy: the same float32 operations (scalars rounded to float32 as torch does)
        f32 = np.float32
        rate = served_bits.numpy().astype(np.float32, copy=False) / f32(dt_s)
        return torch.from_numpy(f32(1.0 - beta) * avg_bps.numpy() + f32(beta) * rate)
    return (1.0 - beta) * avg_bps + beta * (served_bits.to(avg_bps.dtype) / dt_s)
