"""Connected-mode measurements of one step, per UE over its K candidate cells: layer-3 filtering,
serving SINR, radio link monitoring and the handover events with their time-to-trigger.

For every UE ``u`` with serving slot ``s`` among its candidates ``j``:

- **L3 filter** (TS 38.331 5.5.3.2): ``F_j = (1 - a) F_j + a M_j`` on the RSRP samples ``M_j``
  (the first sample initialises the filter);
- **serving SINR**: ``S / (I + N)``, ``I`` the candidates' received power weighted by their
  cells' DL PRB load (the serving cell's excluded), and the control-channel SINR with fully
  loaded neighbours, ``S / (sum_j P_j - S + N)``;
- **radio link monitoring** (TS 38.331 5.3.10.1, TS 38.133 8.1): T310 starts at the first
  out-of-sync sample (control SINR below Qout or the serving cell gone), stops above Qin, and its
  expiry is a radio link failure;
- **handover events** (TS 38.331 5.5.4): A3 ``Mn + Ocn - Hys > Mp + Off`` between cells of equal
  priority (``Ocn`` the per-pair CIO), A4 / A5 towards a higher / lower layer priority
  (:mod:`mobileai.twin.layers`); an event fires once its entering condition has held for TTT.

Two implementations compute the same numbers bit for bit: torch tensor maths (any device, the
reference) and a numba loop over UEs for CPU, which does the ~40 small tensor operations of the
reference in one pass (about 5x less time on the twin's [2,850 x 8] state). The loop copies the
reference's float32 rounding: the filter's fused multiply-add (torch's ``add_`` with ``alpha``),
float32 constants, the same operation order. What it cannot copy exactly stays in torch around
it: the load-weighted interference sum (torch's reduction order over K) and the ``log10``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from mobileai.twin import layers
from mobileai.twin.config import LayerPriorityConfig
from mobileai.twin.gather import at as _at
from mobileai.twin.gather import take as _take

NEG = -1e9  # "no signal" in dBm


@dataclass(frozen=True)
class Thresholds:
    """The step's scalar parameters (linear SINR thresholds, seconds, dB)."""

    l3_a: float  #: L3 filter coefficient a
    qout_lin: float  #: Qout as a linear control-channel SINR
    qin_lin: float  #: Qin, linear
    t310_s: float  #: T310 duration
    a3_offset_db: float  #: A3 offset Off
    dt: float  #: step length, s
    t: float  #: time now, s


@dataclass
class MeasureResult:
    """What the step needs after the measurements: the new filter, T310 and TTT states (new
    tensors; the inputs are left as they were) and the step's SINR and events."""

    l3: torch.Tensor  #: [U, K] filtered RSRP
    t310: torch.Tensor  #: [U] T310 elapsed (< 0: not running)
    a3_timer: torch.Tensor  #: [U, K] time each entering condition has held (< 0: not met)
    sinr_db: torch.Tensor  #: [U] serving data SINR, dB
    rlf: torch.Tensor  #: [U] radio link failure now (a handover due pre-empts it)
    fire: torch.Tensor  #: [U, K] events that fired
    do_ho: torch.Tensor  #: [U] a handover event fired


def measure(
    *,
    l3: torch.Tensor,
    rsrp: torch.Tensor,
    rx_mw: torch.Tensor,
    rx_sum: torch.Tensor,
    noise_mw: torch.Tensor,
    cand_ok: torch.Tensor,
    cand: torch.Tensor,
    srv_slot: torch.Tensor,
    serving: torch.Tensor,
    dl_util: torch.Tensor,
    t310: torch.Tensor,
    a3_timer: torch.Tensor,
    out_until: torch.Tensor,
    oos: torch.Tensor,
    hysteresis_db: torch.Tensor,
    ttt_s: torch.Tensor,
    cio_db: torch.Tensor | None,
    copy_of_ue: torch.Tensor,
    prio: torch.Tensor | None,
    layer_cfg: LayerPriorityConfig,
    p: Thresholds,
) -> MeasureResult:
    """One step of the module docstring's procedures for all UEs. ``cio_db`` [copies, C', C']
    (C' cells per copy) or None when every CIO is 0; ``prio`` [C] layer priorities or None (A3
    only). CPU tensors take the numba path, others the torch reference."""
    args = dict(locals())
    if l3.device.type == "cpu":
        return _measure_numba(**args)
    return _measure_torch(**args)


def _interference_sum(rx_mw: torch.Tensor, dl_util: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Received power of every candidate weighted by its cell's DL PRB load, summed [U]."""
    return (rx_mw * _take(dl_util, cand)).sum(1)


def _measure_torch(
    *, l3, rsrp, rx_mw, rx_sum, noise_mw, cand_ok, cand, srv_slot, serving, dl_util, t310, a3_timer,
    out_until, oos, hysteresis_db, ttt_s, cio_db, copy_of_ue, prio, layer_cfg, p: Thresholds,
) -> MeasureResult:  # fmt: skip
    """The reference: tensor maths over [U, K] on any device."""
    at_srv = torch.arange(l3.shape[0], device=l3.device) * l3.shape[1] + srv_slot

    def at(v: torch.Tensor) -> torch.Tensor:
        return _at(v, at_srv)

    dt = p.dt
    l3 = torch.where(l3 > NEG / 2, l3.mul(1 - p.l3_a).add_(rsrp, alpha=p.l3_a), rsrp)
    srv_rx = at(rx_mw)
    i_data = _interference_sum(rx_mw, dl_util, cand) - srv_rx * _take(dl_util, at(cand))
    noise = at(noise_mw)
    srv_ok = at(cand_ok)
    sinr_db = 10 * torch.log10(srv_rx / (i_data + noise) + 1e-30)
    ctrl_lin = srv_rx / (rx_sum - srv_rx + noise)
    in_service = (out_until <= p.t) & ~oos
    below = (ctrl_lin < p.qout_lin) | ~srv_ok
    above = (ctrl_lin > p.qin_lin) & srv_ok
    # (a timer started in this step reads 0: it measures time since the first out-of-sync
    # sample, so one bad sample never expires T310, whatever the step length)
    starting = in_service & below & (t310 < 0)
    t310 = torch.where((t310 >= 0) & above, torch.full_like(t310, -1.0), t310)
    t310 = torch.where(t310 >= 0, t310 + dt, t310)
    t310 = torch.where(starting, torch.zeros_like(t310), t310)
    rlf = in_service & (t310 >= p.t310_s)
    srv_l3 = at(l3)
    hys = _take(hysteresis_db, serving)
    margin = l3 - (srv_l3 + hys + p.a3_offset_db)[:, None]
    if cio_db is not None:
        n_c = cio_db.shape[1]
        margin = margin + cio_db[copy_of_ue[:, None], serving[:, None] % n_c, cand % n_c]
    entering = margin > 0
    if prio is not None:
        srv_prio = _take(prio, serving)
        entering = layers.layer_entering(entering, l3, srv_l3, _take(prio, cand), srv_prio, hys, layer_cfg)
    entering = entering & cand_ok
    entering.view(-1).index_fill_(0, at_srv, False)
    # time the entering condition has held, from 0 at its first sample (TS 38.331 5.5.4.1)
    held = torch.where(a3_timer >= 0, a3_timer + dt, torch.zeros_like(a3_timer))
    a3_timer = torch.where(entering, held, torch.full_like(a3_timer, -1.0))
    ready = in_service[:, None] & (a3_timer >= (_take(ttt_s, serving) - 1e-6)[:, None])
    fire = entering & ready
    do_ho = fire.any(1)
    rlf = rlf & ~do_ho  # a handover due in the same step pre-empts T310 expiry (coarse steps)
    return MeasureResult(l3, t310, a3_timer, sinr_db, rlf, fire, do_ho)


def _measure_numba(
    *, l3, rsrp, rx_mw, rx_sum, noise_mw, cand_ok, cand, srv_slot, serving, dl_util, t310, a3_timer,
    out_until, oos, hysteresis_db, ttt_s, cio_db, copy_of_ue, prio, layer_cfg, p: Thresholds,
) -> MeasureResult:  # fmt: skip
    """The numba path: inputs as zero-copy NumPy views; the filter, T310 and TTT states are
    copied and updated in place on the copies (the reference returns new tensors too)."""
    f32 = np.float32
    u, k = l3.shape
    l3_out = l3.clone()
    t310_out = t310.clone()
    timer_out = a3_timer.clone()
    sinr_lin = torch.empty(u, dtype=torch.float32)
    rlf = torch.empty(u, dtype=torch.bool)
    fire = torch.empty((u, k), dtype=torch.bool)
    do_ho = torch.empty(u, dtype=torch.bool)
    use_cio = cio_db is not None
    use_prio = prio is not None
    cio = cio_db if use_cio else torch.zeros((1, 1, 1), dtype=torch.float32)
    pr = prio if use_prio else torch.zeros(1, dtype=torch.long)
    _measure_kernel(
        l3_out.numpy(), rsrp.numpy(), rx_mw.numpy(), rx_sum.numpy(), noise_mw.numpy(),
        cand_ok.numpy(), cand.numpy(), srv_slot.numpy(), serving.numpy(),
        dl_util.numpy(), _interference_sum(rx_mw, dl_util, cand).numpy(),
        t310_out.numpy(), timer_out.numpy(), out_until.numpy(), oos.numpy(),
        hysteresis_db.numpy(), ttt_s.numpy(), use_cio, cio.numpy(), copy_of_ue.numpy(),
        use_prio, pr.numpy(), f32(layer_cfg.a4_threshold_dbm), f32(layer_cfg.a5_threshold1_dbm),
        f32(layer_cfg.a5_threshold2_dbm), f32(1 - p.l3_a), f32(p.l3_a), f32(p.qout_lin),
        f32(p.qin_lin), f32(p.t310_s), f32(p.a3_offset_db), f32(p.dt), f32(p.t),
        sinr_lin.numpy(), rlf.numpy(), fire.numpy(), do_ho.numpy(),
    )  # fmt: skip
    sinr_db = 10 * torch.log10(sinr_lin + 1e-30)
    return MeasureResult(l3_out, t310_out, timer_out, sinr_db, rlf, fire, do_ho)


@intrinsic
def _fma32(typingctx, a, b, c):
    """``a * b + c`` rounded once in float32, as torch's vectorised ``add_(x, alpha=a)`` does."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder: ir.IRBuilder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@njit(cache=True, inline="always")
def control_sinr(rx_mw: np.ndarray, rx_sum: np.ndarray, noise_mw: np.ndarray, u: int, j: int) -> np.float32:
    """Control-channel SINR of slot ``j`` of UE ``u`` with fully loaded neighbours,
    ``S / (sum_j P_j - S + N)`` in float32 in the reference's order (compiled loops only)."""
    rx = rx_mw[u, j]
    return rx / (rx_sum[u] - rx + noise_mw[u, j])


@njit(cache=True)
def _measure_kernel(
    l3, rsrp, rx_mw, rx_sum, noise_mw, cand_ok, cand, srv_slot, serving, dl_util, i_sum,
    t310, a3_timer, out_until, oos, hysteresis_db, ttt_s, use_cio, cio, copy_of_ue,
    use_prio, prio, a4_thr, a5_thr1, a5_thr2, a1, a, qout, qin, t310_s, a3_off, dt, t,
    sinr_lin, rlf, fire, do_ho,
):  # fmt: skip
    """The reference's arithmetic UE by UE, every constant a float32 (see the module docstring)."""
    neg_half = np.float32(NEG / 2)
    zero = np.float32(0.0)
    minus_one = np.float32(-1.0)
    n_c = cio.shape[1]
    for u in range(l3.shape[0]):
        s = srv_slot[u]
        for j in range(l3.shape[1]):
            old = l3[u, j]
            l3[u, j] = _fma32(rsrp[u, j], a, old * a1) if old > neg_half else rsrp[u, j]
        srx = rx_mw[u, s]
        i_data = i_sum[u] - srx * dl_util[cand[u, s]]
        noise = noise_mw[u, s]
        sinr_lin[u] = srx / (i_data + noise)
        ctrl = control_sinr(rx_mw, rx_sum, noise_mw, u, s)
        ok = cand_ok[u, s]
        in_service = out_until[u] <= t and not oos[u]
        below = ctrl < qout or not ok
        above = ctrl > qin and ok
        tm = t310[u]
        starting = in_service and below and tm < zero
        if tm >= zero and above:
            tm = minus_one
        if tm >= zero:
            tm = tm + dt
        if starting:
            tm = zero
        t310[u] = tm
        expired = in_service and tm >= t310_s
        srv = serving[u]
        srv_l3 = l3[u, s]
        hys = hysteresis_db[srv]
        thr = srv_l3 + hys + a3_off
        ttt = ttt_s[srv] - np.float32(1e-6)
        any_fire = False
        for j in range(l3.shape[1]):
            c = cand[u, j]
            ent = l3[u, j] - thr
            if use_cio:
                ent = ent + cio[copy_of_ue[u], srv % n_c, c % n_c]
            entering = ent > zero
            if use_prio:
                if prio[c] > prio[srv]:
                    entering = l3[u, j] - hys > a4_thr
                elif prio[c] < prio[srv]:
                    entering = (srv_l3 + hys < a5_thr1) and (l3[u, j] - hys > a5_thr2)
            entering = entering and cand_ok[u, j] and j != s
            held = a3_timer[u, j]
            held = (held + dt if held >= zero else zero) if entering else minus_one
            a3_timer[u, j] = held
            f = entering and in_service and held >= ttt
            fire[u, j] = f
            any_fire = any_fire or f
        do_ho[u] = any_fire
        rlf[u] = expired and not any_fire
