"""Link adaptation: SINR -> rank, CQI -> spectral efficiency -> BLER -> rate, for all UEs at once.

- CQI: TS 38.214 V18 clause 5.2.2.1, 4-bit CQI Table 1 (Table 5.2.2.1-2, QPSK to 64QAM). The UE
  reports the highest CQI whose transport block would be received with BLER not above 0.1; here
  that is the highest CQI whose 10 % BLER SINR threshold (:data:`CQI_SINR_THRESHOLDS_DB`) the
  (per-layer) SINR reaches.
- SINR thresholds: 3GPP does not specify them (they are UE implementation). We use the 15-entry
  SNR -> CQI mapping at 10 % BLER for this CQI table that LTE/NR system-level simulators commonly
  use (-6.7 ... 22.7 dB), cited to Kawser et al., "Downlink SNR to CQI Mapping for Different
  Multiple Antenna Techniques in LTE", IJIEE 2(5), 2012. What the tests check is the comparison
  with NVIDIA Sionna SYS's NR LDPC AWGN curves for MCS Table 1
  (``sionna/sys/bler_tables/PDSCH_table1.json``): our thresholds lie 1.8 to 4.0 dB above their
  10 % BLER points, the margin a geometry (large-scale) SINR needs for fast fading and receiver
  losses (``tests/test_linkadapt.py``; table in ``docs/models.md``).
- BLER at the chosen CQI: a logistic curve in the SINR margin over the CQI's threshold,
  ``BLER = 1 / (1 + 9 exp(k m))`` (0.1 at m = 0), with the logit slope k fitted to the Sionna AWGN
  curves (:data:`BLER_LOGIT_SLOPE_PER_DB`).
- Rank: rank r is used above :data:`RANK_SINR_THRESHOLDS_DB` (rank 2 at 12 dB, then 18, 24, 30,
  35, 40, 45 dB), capped by the configured maximum; the power is split equally over the layers,
  so each layer runs at SINR - 10 log10(r). The thresholds follow a Monte-Carlo rank selection on
  exponentially correlated Rayleigh MIMO channels (see ``docs/models.md``).
- Peak rate: N_PRB x 12 x 14 x slots/s x efficiency x layers x (1 - overhead) x (1 - BLER) x time
  share, which at BLER 0 is the TS 38.306 V18 clause 4.1.2 peak data rate formula with
  Qm x R_max replaced by the CQI efficiency.

Everything is vectorised torch (float32 in, float32 out; CQI and rank int64), on CPU or CUDA; on
CPU the threshold search goes through NumPy (see :func:`_count_reached`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from mobileai.twin.gather import take as _take

#: TS 38.214 Table 5.2.2.1-2 (4-bit CQI Table 1): CQI -> (modulation order Qm, code rate x 1024,
#: efficiency in information bits per resource element and layer). CQI 0 is "out of range".
CQI_TABLE: tuple[tuple[int, int, float], ...] = (
    (0, 0, 0.0),
    (2, 78, 0.1523),
    (2, 120, 0.2344),
    (2, 193, 0.3770),
    (2, 308, 0.6016),
    (2, 449, 0.8770),
    (2, 602, 1.1758),
    (4, 378, 1.4766),
    (4, 490, 1.9141),
    (4, 616, 2.4063),
    (6, 466, 2.7305),
    (6, 567, 3.3223),
    (6, 666, 3.9023),
    (6, 772, 4.5234),
    (6, 873, 5.1152),
    (6, 948, 5.5547),
)

#: Highest CQI of Table 5.2.2.1-2.
MAX_CQI = len(CQI_TABLE) - 1

#: SINR (dB) at which CQI 1..15 reach 10 % BLER (index i is CQI i + 1); see the module docstring.
CQI_SINR_THRESHOLDS_DB: tuple[float, ...] = (
    -6.7, -4.7, -2.3, 0.2, 2.4, 4.3, 5.9, 8.1, 10.3, 11.7, 14.1, 16.3, 18.7, 21.0, 22.7,
)  # fmt: skip

#: MCS index of TS 38.214 Table 5.1.3.1-1 (MCS Table 1) with the same modulation and code rate as
#: CQI 1..15 (None: CQI 1, code rate 78, has no MCS Table 1 entry). Used for the Sionna cross-check.
CQI_TO_MCS_TABLE1: tuple[int | None, ...] = (None, 0, 2, 4, 6, 8, 11, 13, 15, 18, 20, 22, 24, 26, 28)

#: Logit slope (per dB) of the BLER curve around the 10 % point. Fitted to the Sionna SYS NR LDPC
#: AWGN curves of MCS Table 1 (median slope over MCS 3..28 at code-block size 500 bits: 3.6/dB).
BLER_LOGIT_SLOPE_PER_DB = 3.6

#: Per-layer SINR (dB) above which rank 2..8 is used (index i is rank i + 2).
RANK_SINR_THRESHOLDS_DB: tuple[float, ...] = (12.0, 18.0, 24.0, 30.0, 35.0, 40.0, 45.0)

#: Maximum MIMO layers of NR (TS 38.214: up to 8 layers for PDSCH).
MAX_LAYERS = 8

#: Subcarrier spacings of NR (kHz) and symbols per slot (normal cyclic prefix).
SUBCARRIER_SPACINGS_KHZ = (15, 30, 60, 120)
SYMBOLS_PER_SLOT = 14
SUBCARRIERS_PER_PRB = 12

_LN9 = math.log(9.0)


class LinkAdaptation(NamedTuple):
    """Per-UE link adaptation outcome (all [U])."""

    layers: torch.Tensor  # int64, 1..max_layers
    cqi: torch.Tensor  # int64, 0..15, of each layer (per-layer SINR)
    efficiency: torch.Tensor  # float32, information bits per RE and layer (Table 5.2.2.1-2)
    bler: torch.Tensor  # float32, first-transmission BLER at that CQI
    bits_per_re: torch.Tensor  # float32, layers x efficiency x (1 - BLER)


def _count_reached(s: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Number of (sorted) thresholds at or below each value, int64. On CPU through NumPy: torch's
    bucketize spreads even a few thousand values over threads, which stalls on a busy machine."""
    if s.device.type == "cpu":
        found = np.searchsorted(thresholds.numpy(), s.detach().numpy(), side="right")
        return torch.from_numpy(np.asarray(found, dtype=np.int64))
    return torch.bucketize(s, thresholds, right=True)


class _Consts(NamedTuple):
    thr: torch.Tensor  # [15] CQI 1..15 thresholds
    thr_by_cqi: torch.Tensor  # [16] threshold of CQI c at index c (-inf for CQI 0)
    eff: torch.Tensor  # [16] efficiency of CQI c
    rank_thr: torch.Tensor  # [7] rank 2..8 thresholds
    split_db: torch.Tensor  # [9] 10 log10(r) at index r (power split over r layers)


@lru_cache(maxsize=16)
def _consts(device: torch.device) -> _Consts:
    def f32(values) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=device)

    split = [0.0] + [10.0 * math.log10(r) for r in range(1, MAX_LAYERS + 1)]
    return _Consts(
        f32(CQI_SINR_THRESHOLDS_DB),
        f32((-math.inf, *CQI_SINR_THRESHOLDS_DB)),
        f32([row[2] for row in CQI_TABLE]),
        f32(RANK_SINR_THRESHOLDS_DB),
        f32(split),
    )


def _sinr(x: torch.Tensor) -> torch.Tensor:
    """float32 SINR with NaN as -inf (no link)."""
    x = torch.as_tensor(x)
    return torch.nan_to_num(x.to(torch.float32), nan=-math.inf)


def _sinr_np(x: torch.Tensor) -> np.ndarray:
    """float32 SINR of a CPU tensor as a NumPy array, NaN as -inf (no link). Unlike :func:`_sinr`
    it keeps +-inf (``nan_to_num`` clips them to the float32 range): the CQI, rank, BLER and rate
    of every caller come out the same, without ``nan_to_num``'s cost."""
    a = x.detach().numpy().astype(np.float32, copy=False)
    nan = np.isnan(a)
    return np.where(nan, np.float32(-math.inf), a) if nan.any() else a


def sinr_to_cqi(sinr_db: torch.Tensor) -> torch.Tensor:
    """Wideband CQI 0..15 (int64): the number of 10 % BLER thresholds at or below the SINR.

    0 means out of range (below CQI 1's threshold); NaN maps to 0.
    """
    x = torch.as_tensor(sinr_db)
    if x.device.type == "cpu":
        found = np.searchsorted(_np_consts().thr, _sinr_np(x), side="right")
        return torch.from_numpy(np.asarray(found, dtype=np.int64))
    s = _sinr(x)
    return _count_reached(s, _consts(s.device).thr)


def cqi_efficiency(cqi: torch.Tensor) -> torch.Tensor:
    """Efficiency of Table 5.2.2.1-2 (information bits per RE and layer, float32); 0 for CQI 0.

    ``cqi`` must hold integers 0..15.
    """
    cqi = torch.as_tensor(cqi)
    return _take(_consts(cqi.device).eff, cqi.long())


def cqi_sinr_threshold_db(cqi: torch.Tensor) -> torch.Tensor:
    """The 10 % BLER SINR threshold of each CQI (float32, dB); -inf for CQI 0."""
    cqi = torch.as_tensor(cqi)
    return _take(_consts(cqi.device).thr_by_cqi, cqi.long())


def _check_max_layers(max_layers: int | torch.Tensor) -> None:
    if isinstance(max_layers, int) and not 1 <= max_layers <= MAX_LAYERS:
        raise ValueError(f"max_layers must be 1..{MAX_LAYERS} (got {max_layers})")


def _rank(s: torch.Tensor, c: _Consts, max_layers: int | torch.Tensor) -> torch.Tensor:
    rank = _count_reached(s, c.rank_thr).add_(1)
    if isinstance(max_layers, int):
        return rank.clamp_(max=max_layers)
    return torch.minimum(rank, torch.as_tensor(max_layers, device=s.device).long())


def layers(sinr_db: torch.Tensor, max_layers: int | torch.Tensor) -> torch.Tensor:
    """Rank (MIMO layers, int64 >= 1): 1 + the number of :data:`RANK_SINR_THRESHOLDS_DB` reached,
    capped at ``max_layers`` (an int, or a per-UE tensor broadcastable to ``sinr_db``)."""
    _check_max_layers(max_layers)
    s = _sinr(sinr_db)
    return _rank(s, _consts(s.device), max_layers)


def _bler(s: torch.Tensor, cqi: torch.Tensor, c: _Consts) -> torch.Tensor:
    margin = s - _take(c.thr_by_cqi, cqi)  # CQI 0: +inf or NaN, set to 1 below
    out = torch.sigmoid(margin.mul_(-BLER_LOGIT_SLOPE_PER_DB).sub_(_LN9))
    return out.masked_fill_(cqi == 0, 1.0)


def bler(sinr_db: torch.Tensor, cqi: torch.Tensor) -> torch.Tensor:
    """First-transmission BLER of a transport block sent at ``cqi`` to a link at ``sinr_db``.

    ``1 / (1 + 9 exp(k (SINR - threshold(cqi))))`` with k = :data:`BLER_LOGIT_SLOPE_PER_DB`: 0.1 at
    the CQI's threshold, about 0.1 exp(-k m) with a margin of m dB, towards 1 below the threshold
    (a stale or forced CQI). CQI 0 (nothing sent) gives 1.
    """
    s = _sinr(sinr_db)
    cqi = torch.as_tensor(cqi, device=s.device).long()
    s, cqi = torch.broadcast_tensors(s, cqi)
    return _bler(s, cqi, _consts(s.device))


def link_adaptation(sinr_db: torch.Tensor, max_layers: int | torch.Tensor = 1) -> LinkAdaptation:
    """Rank, per-layer CQI, efficiency and BLER for SINR values (dB).

    The power is split over the layers: each of ``r`` layers sees ``SINR - 10 log10(r)``.
    """
    _check_max_layers(max_layers)
    s = _sinr(sinr_db)
    if s.device.type == "cpu":
        out = _link_adaptation_np(s.numpy(), max_layers)
        return LinkAdaptation(*(torch.from_numpy(np.asarray(a)) for a in out))
    c = _consts(s.device)
    rank = _rank(s, c, max_layers)
    s_layer = s - _take(c.split_db, rank)
    cqi = _count_reached(s_layer, c.thr)
    eff = _take(c.eff, cqi)
    err = _bler(s_layer, cqi, c)
    return LinkAdaptation(rank, cqi, eff, err, (1.0 - err).mul_(eff).mul_(rank))


@lru_cache(maxsize=1)
def _np_consts() -> _Consts:
    return _Consts(*(t.numpy() for t in _consts(torch.device("cpu"))))


def _link_adaptation_np(s: np.ndarray, max_layers: int | torch.Tensor) -> tuple[np.ndarray, ...]:
    """:func:`link_adaptation` in NumPy for CPU tensors (``s``: float32, NaN already -inf): the
    same float32 arithmetic with a lower per-operation cost for the few hundred UEs a step
    schedules (the logistic's exp may differ from torch's in the last bit)."""
    c = _np_consts()
    rank = np.asarray(np.searchsorted(c.rank_thr, s, side="right"), np.int64) + 1
    if not isinstance(max_layers, int):
        max_layers = np.asarray(torch.as_tensor(max_layers).cpu(), np.int64)
    rank = np.minimum(rank, max_layers)
    s_layer = s - c.split_db[rank]
    cqi = np.asarray(np.searchsorted(c.thr, s_layer, side="right"), np.int64)
    eff = c.eff[cqi]
    with np.errstate(over="ignore", invalid="ignore"):
        x = (s_layer - c.thr_by_cqi[cqi]) * np.float32(BLER_LOGIT_SLOPE_PER_DB) + np.float32(_LN9)
        err = np.where(cqi == 0, np.float32(1.0), np.float32(1.0) / (np.float32(1.0) + np.exp(x)))
    bits = (np.float32(1.0) - err) * eff * rank.astype(np.float32)
    return rank, cqi, eff, err, bits


def slots_per_second(scs_khz: int) -> float:
    """NR slots per second, 1000 x 2^mu for subcarrier spacing 15 x 2^mu kHz (TS 38.211 4.3.2)."""
    if scs_khz not in SUBCARRIER_SPACINGS_KHZ:
        raise ValueError(
            f"subcarrier spacing {scs_khz} kHz not supported; allowed: {SUBCARRIER_SPACINGS_KHZ}"
        )
    return 1000.0 * scs_khz / 15.0


def resource_elements_per_s(scs_khz: int, overhead: float) -> float:
    """Resource elements per second of one PRB after the overhead share ``overhead``
    (12 subcarriers x 14 symbols per slot, TS 38.211 4.3.2 and 4.4.4.1)."""
    if not 0.0 <= overhead < 1.0:
        raise ValueError(f"overhead must be in [0, 1) (got {overhead})")
    return SUBCARRIERS_PER_PRB * SYMBOLS_PER_SLOT * slots_per_second(scs_khz) * (1.0 - overhead)


def peak_rate_bps(
    sinr_db: torch.Tensor,
    n_prb: int | torch.Tensor,
    scs_khz: int,
    overhead: float,
    max_layers: int | torch.Tensor,
    fraction: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """Rate (bit/s, float32) a UE gets with all ``n_prb`` PRBs of its cell for the time share
    ``fraction`` (e.g. the TDD DL or UL share):

    ``n_prb x 12 x 14 x slots/s x efficiency x layers x (1 - overhead) x (1 - BLER) x fraction``.

    With BLER 0 and efficiency Qm x R_max this is the TS 38.306 clause 4.1.2 peak data rate
    (one component carrier, scaling factor f = 1, OH = ``overhead``).
    """
    re_per_s = resource_elements_per_s(scs_khz, overhead)
    x = torch.as_tensor(sinr_db)
    if x.device.type == "cpu":  # NumPy: the same float32 products, cheaper per operation
        _check_max_layers(max_layers)
        out = _link_adaptation_np(_sinr_np(x), max_layers)[4]
        for factor in (n_prb, fraction):
            if isinstance(factor, torch.Tensor):
                out = out * factor.detach().to(torch.float32).numpy()
            else:
                re_per_s *= float(factor)
        return torch.from_numpy(np.asarray(out * np.float32(re_per_s), np.float32))
    bits = link_adaptation(x, max_layers).bits_per_re
    for factor in (n_prb, fraction):
        if isinstance(factor, torch.Tensor):
            bits = bits * factor.to(device=bits.device, dtype=torch.float32)
        else:
            re_per_s *= float(factor)
    return bits.mul_(re_per_s)
