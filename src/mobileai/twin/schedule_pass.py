"""One scheduling pass of the twin's step on CPU, compiled: link adaptation of the entries to
serve, their GBR PRB need (admission control) and proportional-fair water-filling per cell x
slice, DL and UL at once.

It computes, bit for bit, what the step's reference composition computes on CPU:
:func:`mobileai.twin.linkadapt.peak_rate_bps` (TS 38.214 CQI / rank / BLER link adaptation, its
NumPy path) and :func:`mobileai.twin.scheduler.pf_share` (the exact water-filling of that
module's docstring, its NumPy back end), glued as ``Twin._pf_active`` does. The
reference spends ~0.9 ms per step in some 80 small array operations on a few hundred entries;
these two loops take a few tens of microseconds. Float64 accumulations run in the same order
(sequential sums and prefix sums, in the same sort order), float32 products in the same order,
and the logistic's ``exp`` stays NumPy's (its float32 ``exp`` is not the C library's).
Only the ``pf`` policy is here: the step uses no other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from mobileai.twin import linkadapt
from mobileai.twin.scheduler import _TINY, MIN_AVG_BPS


@dataclass(frozen=True)
class UplinkPower:
    """What the UL SINR per PRB of a UE takes (``Twin._ul_sinr_db``: open-loop power control,
    TS 38.213 7.1.1): computed here for the UEs with UL data only."""

    coupling_gain_db: torch.Tensor  #: [U, K] of each UE's candidates
    srv_slot: torch.Tensor  #: [U] the serving cell's slot among them
    share_db: torch.Tensor  #: [C] PRBs per UL-active UE of each cell, dB
    iot_db: torch.Tensor  #: [C] noise rise
    p0_dbm: float
    alpha: float
    p_max_dbm: float
    noise_prb_dbm: float


def schedule(
    *,
    sched_dl: torch.Tensor,
    sched_ul: torch.Tensor,
    sinr_dl: torch.Tensor,
    ul_power: UplinkPower,
    tdd_dl: torch.Tensor,
    buffer_dl: torch.Tensor,
    buffer_ul: torch.Tensor,
    avg_dl: torch.Tensor,
    avg_ul: torch.Tensor,
    serving: torch.Tensor,
    slice_of_ue: torch.Tensor,
    n_rb: torch.Tensor,
    slice_cap: torch.Tensor,
    gfbr_bps: torch.Tensor,
    re_per_s: float,
    max_layers: int,
    gbr_limit: float,
    dt: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Served bits [2U] (DL of the UEs then UL; 0 outside ``sched_*``), the share of resources
    used per group [2G] (DL groups cell x slice, then UL) and the PRB share the GBR flows need
    per cell [2, C] (a flow that alone needs more than ``gbr_limit`` reserves nothing, TS 23.501
    5.7.2.4). ``tdd_dl`` is per UE (its serving cell's DL share), ``n_rb`` per cell."""
    c = linkadapt._np_consts()
    f32 = np.float32
    up = ul_power
    ue, rank, cqi, eff, x = _link_terms(
        sched_dl.numpy(), sched_ul.numpy(), sinr_dl.numpy(), serving.numpy(), up.coupling_gain_db.numpy(),
        up.srv_slot.numpy(), up.share_db.numpy(), up.iot_db.numpy(), f32(up.p0_dbm), f32(up.alpha),
        f32(up.p_max_dbm), f32(up.noise_prb_dbm), max_layers,
        c.rank_thr, c.split_db, c.thr, c.thr_by_cqi, c.eff,
        f32(linkadapt.BLER_LOGIT_SLOPE_PER_DB), f32(linkadapt._LN9),
    )  # fmt: skip
    with np.errstate(over="ignore"):
        ex = np.exp(x)
    u, n_groups = serving.shape[0], slice_cap.shape[0]
    served = torch.zeros(2 * u, dtype=torch.float32)
    used = torch.empty(2 * n_groups, dtype=torch.float32)
    gbr_need = torch.zeros(2 * n_rb.shape[0], dtype=torch.float32)
    _fill(
        ue, rank, cqi, eff, ex, serving.numpy(), slice_of_ue.numpy(), n_rb.numpy(), tdd_dl.numpy(),
        buffer_dl.numpy(), buffer_ul.numpy(), avg_dl.numpy(), avg_ul.numpy(), slice_cap.numpy(),
        gfbr_bps.numpy(), f32(re_per_s), f32(gbr_limit), float(dt), served.numpy(), used.numpy(),
        gbr_need.numpy(),
    )  # fmt: skip
    return served, used, gbr_need.view(2, -1)


@njit(cache=True, inline="always")
def _minimum(a, b):
    """NumPy's (and torch's) ``minimum``: NaN if either is NaN; the arguments' type."""
    if np.isnan(a):
        return a
    if np.isnan(b):
        return b
    return a if a < b else b


@njit(cache=True)
def _link_terms(sched_dl, sched_ul, sinr_dl, serving, cg, srv_slot, share_db, iot_db, p0, alpha, p_max, noise,
                max_layers, rank_thr, split_db, thr, thr_by_cqi, eff_t, slope, ln9):  # fmt: skip
    """Entries to serve (``ue`` >= U: UL of UE ``ue - U``), their rank, CQI, efficiency and the
    logistic's argument ``x`` (BLER = 1 / (1 + exp(x))), as linkadapt's NumPy path computes them;
    the UL SINR as ``Twin._ul_sinr_db`` does."""
    u = sched_dl.shape[0]
    n = 0
    for i in range(u):
        n += sched_dl[i] + sched_ul[i]
    ue = np.empty(n, np.int64)
    rank = np.empty(n, np.int64)
    cqi = np.empty(n, np.int64)
    eff = np.empty(n, np.float32)
    x = np.empty(n, np.float32)
    k = 0
    for ul in range(2):
        sched = sched_ul if ul else sched_dl
        cap = 1 if ul else max_layers
        for i in range(u):
            if not sched[i]:
                continue
            if ul:
                pl = -cg[i, srv_slot[i]]
                cell = serving[i]
                p_prb = _minimum(p0 + alpha * pl, p_max - share_db[cell])
                s = p_prb - pl - noise - iot_db[cell]
            else:
                s = sinr_dl[i]
            if np.isnan(s):
                s = np.float32(-np.inf)
            r = 1
            for t in rank_thr:
                r += t <= s
            r = min(r, cap)
            s_layer = s - split_db[r]
            q = 0
            for t in thr:
                q += t <= s_layer
            ue[k] = i + ul * u
            rank[k] = r
            cqi[k] = q
            eff[k] = eff_t[q]
            x[k] = (s_layer - thr_by_cqi[q]) * slope + ln9
            k += 1
    return ue, rank, cqi, eff, x


@njit(cache=True)
def _fill(ue, rank, cqi, eff, ex, serving, slice_of_ue, n_rb, tdd_dl, buffer_dl, buffer_ul, avg_dl, avg_ul,
          slice_cap, gfbr, re_per_s, gbr_limit, dt, served, used, gbr_need):  # fmt: skip
    """Rates, GBR needs and the PF water-filling of ``scheduler._water_fill`` (NumPy back end)."""
    n = ue.shape[0]
    u = serving.shape[0]
    n_cells = n_rb.shape[0]
    g1 = slice_cap.shape[0]  # groups per direction
    n_groups = 2 * g1
    n_slices = g1 // n_cells
    one = np.float32(1.0)
    rate = np.empty(n, np.float32)
    demand = np.empty(n, np.float32)
    avg = np.empty(n, np.float32)
    group = np.empty(n, np.int64)
    for k in range(n):
        i = ue[k]
        ul = i >= u
        j = i - u if ul else i
        err = one if cqi[k] == 0 else one / (one + ex[k])
        bits = (one - err) * eff[k] * np.float32(rank[k])
        cell = serving[j]
        frac = one - tdd_dl[j] if ul else tdd_dl[j]
        r = bits * n_rb[cell] * frac * re_per_s
        rate[k] = r
        need = gfbr[i] / max(r, one)
        if need <= gbr_limit:
            gbr_need[cell + ul * n_cells] += need
        group[k] = cell * n_slices + slice_of_ue[j] + ul * g1
        demand[k] = buffer_ul[j] if ul else buffer_dl[j]
        avg[k] = avg_ul[j] if ul else avg_dl[j]
    # water-filling (scheduler._water_fill, policy pf), float64 inside
    cap_ext = np.empty(n_groups + 1)
    for gi in range(n_groups):
        cap_ext[gi] = min(max(np.float64(slice_cap[gi % g1]), 0.0), 1.0)
    cap_ext[n_groups] = 0.0
    full_bits = np.empty(n)
    g = np.empty(n, np.int64)
    need = np.empty(n)
    w = np.empty(n)
    n_tot = np.zeros(n_groups + 1)
    w_sum = np.zeros(n_groups + 1)
    for k in range(n):
        full_bits[k] = max(np.float64(rate[k]) * dt, _TINY)
        active = group[k] >= 0 and min(rate[k], demand[k]) > 0
        g[k] = group[k] if active else n_groups
        need[k] = min(np.float64(max(demand[k], np.float32(0.0))) / full_bits[k], cap_ext[g[k]])
        n_tot[g[k]] += need[k]
        w[k] = max(full_bits[k] / np.float64(max(avg[k], np.float32(MIN_AVG_BPS))), _TINY)
        w_sum[g[k]] += w[k]
    cap_off = np.empty(n_groups + 1)
    run = 0.0
    for gi in range(n_groups + 1):
        run += n_tot[gi]
        cap_off[gi] = cap_ext[gi] + run - n_tot[gi]
    key = np.empty(n)
    sort_key = np.empty(n)
    for k in range(n):
        w[k] = w[k] / w_sum[g[k]]
        key[k] = need[k] / w[k]
        sort_key[k] = g[k] + 0.5 * key[k] / (key[k] + 1.0)
    order = np.argsort(sort_key)
    groups_with_weight = np.empty(n_groups + 1)
    run = 0.0
    for gi in range(n_groups + 1):
        run += 1.0 if w_sum[gi] > 0 else 0.0
        groups_with_weight[gi] = run
    level = np.zeros(n_groups + 1)
    level_nan = np.zeros(n_groups + 1, np.bool_)
    need_run = 0.0
    w_run = 0.0
    for m in range(n):
        k = order[m]
        gs = g[k]
        need_run += need[k]
        w_run += w[k]
        left = cap_off[gs] - need_run + need[k]
        b_k = groups_with_weight[gs] - w_run + w[k]
        v = left / b_k
        if np.isnan(v):
            level_nan[gs] = True
        elif v > level[gs]:
            level[gs] = v
    # the level again from the satisfied / unsatisfied split, with per-group sums only
    w_unsat = np.zeros(n_groups + 1)
    need_sat = np.zeros(n_groups + 1)
    for k in range(n):
        lv = np.nan if level_nan[g[k]] else level[g[k]]
        if key[k] <= lv:
            need_sat[g[k]] += need[k]
        else:
            w_unsat[g[k]] += w[k]
    for gi in range(n_groups + 1):
        left_g = max(cap_ext[gi] - need_sat[gi], 0.0)
        level[gi] = left_g / w_unsat[gi] if w_unsat[gi] > 0 else math.inf
    for k in range(n):
        x = _minimum(need[k], w[k] * level[g[k]])
        served_k = _minimum(x * full_bits[k], np.float64(demand[k])) if g[k] < n_groups else 0.0
        served[ue[k]] = np.float32(served_k)
    for gi in range(n_groups):
        used[gi] = np.float32(min(n_tot[gi], cap_ext[gi]))
