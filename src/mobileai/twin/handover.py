"""Connected-mode mobility events of one step on CPU, compiled: handover execution or failure,
radio link failure, and RRC re-establishment of the UEs out of service.

For the UEs whose measurements fired (:mod:`mobileai.twin.measurement`):

- **handover** (TS 38.331 5.3.5): the target is the strongest triggering neighbour by filtered
  RSRP, among the highest layer priority that triggered (:func:`mobileai.twin.layers.preferred`);
  it fails when the target's control-channel SINR is below Qout (TS 38.133 8.1), otherwise the
  user plane pauses for the interruption time and a return to the previous cell within the
  ping-pong window counts as a ping-pong;
- **radio link failure or handover failure**: the UE's session is dropped and it is out of
  service for ``ran.reestablishment_ms``;
- **re-establishment** (TS 38.331 5.3.7): an out-of-service UE whose wait is over tries its
  strongest available candidate, and succeeds when that cell's control SINR is above Qin.

The torch reference is ``Twin._mobility_events`` / ``Twin._reestablish`` (any device); these
loops compute the same numbers bit for bit on the single-carrier twin, where a target's control
SINR is ``S / (sum_j P_j - S + N)`` over the cached row sum. Per UE the arithmetic is the
reference's float32 operations in its order, times and offsets rounded to float32 as torch
rounds a Python scalar; the counters' float64 sums run in UE order as ``add_ue_columns`` adds
them. On a multi-carrier twin the target's interference sum depends on its carrier (a torch
reduction whose order a loop does not copy), so that case stays with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from mobileai.twin.measurement import NEG, control_sinr

#: Per-UE columns a handover pass adds to its source cell's counters, in this order.
HANDOVER_COLUMNS = ("ho_req", "ho_succ", "ho_fail", "ping_pong", "rlf", "sessions_dropped")
_HO_FAIL, _RLF = HANDOVER_COLUMNS.index("ho_fail"), HANDOVER_COLUMNS.index("rlf")


@dataclass
class UeState:
    """The per-UE connection state the events change (NumPy views of the twin's tensors)."""

    serving: np.ndarray  #: [U] int64
    prev_cell: np.ndarray  #: [U] int64, -1: none
    last_ho_t: np.ndarray  #: [U] float32, s
    out_until: np.ndarray  #: [U] float32, s
    a3_timer: np.ndarray  #: [U, K] float32
    t310: np.ndarray  #: [U] float32
    oos: np.ndarray  #: [U] bool
    srv_slot: np.ndarray  #: [U] int64


@dataclass(frozen=True)
class Radio:
    """Each UE's candidates and what their control SINR takes (NumPy views)."""

    cand: np.ndarray  #: [U, K] int64
    cand_ok: np.ndarray  #: [U, K] bool
    l3: np.ndarray  #: [U, K] float32, filtered RSRP
    rx_mw: np.ndarray  #: [U, K] float32
    rx_sum: np.ndarray  #: [U] float32
    noise_mw: np.ndarray  #: [U, K] float32


def execute(
    ev: np.ndarray,
    do_ho: np.ndarray,
    fire: np.ndarray,
    rlf: np.ndarray,
    radio: Radio,
    state: UeState,
    in_session: np.ndarray,
    prio: np.ndarray | None,
    *,
    qout_lin: float,
    t: float,
    ping_pong_window_s: float,
    ho_interruption_ms: float,
    reestablishment_ms: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Handovers and failures of the UEs ``ev`` (ascending; ``do_ho``, ``fire``, ``rlf`` are
    over all UEs), updating ``state`` in place. Returns the source cells [n] and the
    :data:`HANDOVER_COLUMNS` [6, n] float64 to add to the counters, and the UEs now out of
    service (HO failure or RLF), whose traffic the caller drops."""
    f32 = np.float32
    n = ev.shape[0]
    src = np.empty(n, dtype=np.int64)
    cols = np.empty((len(HANDOVER_COLUMNS), n))
    use_prio = prio is not None
    _execute_kernel(
        ev, do_ho, fire, rlf, radio.cand, radio.l3, radio.rx_mw, radio.rx_sum, radio.noise_mw,
        use_prio, prio if use_prio else np.zeros(1, dtype=np.int64), state.serving, state.prev_cell,
        state.last_ho_t, state.out_until, state.a3_timer, state.t310, state.oos, state.srv_slot,
        in_session, f32(qout_lin), f32(t), f32(ping_pong_window_s), f32(t + ho_interruption_ms / 1e3),
        f32(t + reestablishment_ms / 1e3), src, cols,
    )  # fmt: skip
    return src, cols, ev[(cols[_HO_FAIL] > 0) | (cols[_RLF] > 0)]


def due(oos: np.ndarray, out_until: np.ndarray, t: float) -> int:
    """How many out-of-service UEs may retry re-establishment now (their wait is over)."""
    return _count_due(oos, out_until, np.float32(t))


def reestablish(
    radio: Radio,
    state: UeState,
    n_due: int,
    *,
    qin_lin: float,
    t: float,
    reestablishment_ms: float,
    n_cells: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-establishment of the ``n_due`` (:func:`due`) out-of-service UEs whose wait is over,
    updating ``state`` in place. Returns the cell each of them re-established on (``n_cells``:
    it failed and waits again) and a float64 1 / 0 success column, in UE order."""
    f32 = np.float32
    cell = np.empty(n_due, dtype=np.int64)
    won = np.empty(n_due)
    _reestablish_kernel(
        radio.cand, radio.cand_ok, radio.l3, radio.rx_mw, radio.rx_sum, radio.noise_mw,
        state.serving, state.out_until, state.a3_timer, state.oos, state.srv_slot, f32(qin_lin),
        f32(t), f32(t + reestablishment_ms / 1e3), n_cells, cell, won,
    )  # fmt: skip
    return cell, won


@njit(cache=True)
def _slot_of(cand_row: np.ndarray, cell: int) -> int:
    """First slot listing ``cell`` (0 when none), as ``(cand == cell).argmax()``."""
    for j in range(cand_row.shape[0]):
        if cand_row[j] == cell:
            return j
    return 0


@njit(cache=True)
def _execute_kernel(
    ev, do_ho, fire, rlf, cand, l3, rx_mw, rx_sum, noise_mw, use_prio, prio, serving, prev_cell,
    last_ho_t, out_until, a3_timer, t310, oos, srv_slot, in_session, qout, t, pp_window, t_ho_end,
    t_reest, src, cols,
):  # fmt: skip
    """``Twin._mobility_events`` UE by UE (see the module docstring)."""
    no_fire = np.float32(2 * NEG)
    minus_one = np.float32(-1.0)
    k = cand.shape[1]
    for i in range(ev.shape[0]):
        u = ev[i]
        top = -1
        if use_prio:  # the highest layer priority among the triggering cells
            for j in range(k):
                if fire[u, j] and prio[cand[u, j]] > top:
                    top = prio[cand[u, j]]
        slot = 0
        best = no_fire
        for j in range(k):  # strongest triggering candidate, the first on a tie (argmax)
            f = fire[u, j] and (not use_prio or prio[cand[u, j]] == top)
            v = l3[u, j] if f else no_fire
            if v > best:
                best, slot = v, j
        target = cand[u, slot]
        ho = do_ho[u]
        fail = ho and control_sinr(rx_mw, rx_sum, noise_mw, u, slot) < qout
        ok = ho and not fail
        s = serving[u]
        pp = ok and target == prev_cell[u] and t - last_ho_t[u] <= pp_window
        lost = rlf[u] or fail
        src[i] = s
        cols[0, i] = 1.0 if ho else 0.0
        cols[1, i] = 1.0 if ok else 0.0
        cols[2, i] = 1.0 if fail else 0.0
        cols[3, i] = 1.0 if pp else 0.0
        cols[4, i] = 1.0 if rlf[u] else 0.0
        cols[5, i] = 1.0 if in_session[u] and lost else 0.0
        if ok:
            prev_cell[u] = s
            last_ho_t[u] = t
            serving[u] = target
            out_until[u] = t_ho_end
        if lost:
            oos[u] = True
            out_until[u] = t_reest
            t310[u] = minus_one
            prev_cell[u] = -1
        for j in range(k):
            a3_timer[u, j] = minus_one
        srv_slot[u] = _slot_of(cand[u], serving[u])


@njit(cache=True)
def _count_due(oos, out_until, t):
    n = 0
    for u in range(oos.shape[0]):
        if oos[u] and out_until[u] <= t:
            n += 1
    return n


@njit(cache=True)
def _reestablish_kernel(
    cand, cand_ok, l3, rx_mw, rx_sum, noise_mw, serving, out_until, a3_timer, oos, srv_slot, qin,
    t, t_retry, n_cells, cell, won,
):  # fmt: skip
    """``Twin._reestablish`` UE by UE (see the module docstring)."""
    no_cell = np.float32(2 * NEG)
    minus_one = np.float32(-1.0)
    k = cand.shape[1]
    i = 0
    for u in range(oos.shape[0]):
        if not (oos[u] and out_until[u] <= t):
            continue
        slot = 0
        best = no_cell
        for j in range(k):  # strongest available candidate, the first on a tie (argmax)
            v = l3[u, j] if cand_ok[u, j] else no_cell
            if v > best:
                best, slot = v, j
        ok = control_sinr(rx_mw, rx_sum, noise_mw, u, slot) > qin and cand_ok[u, slot]
        if ok:
            serving[u] = cand[u, slot]
            oos[u] = False
            for j in range(k):
                a3_timer[u, j] = minus_one
        else:
            out_until[u] = t_retry
        cell[i] = cand[u, slot] if ok else n_cells
        won[i] = 1.0 if ok else 0.0
        srv_slot[u] = _slot_of(cand[u], serving[u])
        i += 1
