"""Per-UE uplink rate: what an AI flow can get now, a calibrated prediction of it, and real traces.

**Available rate.** The twin's PF scheduler serves the UE's *own* traffic; an AI task adds a new
flow. We estimate the rate that flow gets as an extra PF user of the serving cell:

    R = peak_ul x max(1 - cell_ul_util, 1 / (n_active + 1)) x in_service

``peak_ul`` is the rate with all PRBs of the cell's uplink TDD share (TS 38.214 link adaptation in
the twin), ``1 - util`` the PRBs nobody uses, and ``1 / (n_active + 1)`` the time share a new
user gets from a PF scheduler among ``n_active`` backlogged users of similar average rate (the
equal-share property of proportional fairness, Kelly 1997; Jalali et al., VTC 2000). The larger
of the two is taken because the scheduler hands idle PRBs to whoever has data. ``in_service`` is
false during handover interruption and RLF recovery, so the rate is 0 then.

**Prediction.** :class:`UplinkPredictor` keeps, per UE, exponentially weighted mean and variance
of log R (a log-normal rate model, the usual fit for throughput distributions, e.g. Raca et al.,
"Beyond throughput, the next generation: a 5G dataset with channel and context metrics", ACM
MMSys 2020) and a two-state good/bad channel (Gilbert, Bell Syst Tech J 1960; Elliott, 1963):
the bad state is an outage (no rate) or a *dip*, a sample more than 10 dB (``DIP_NATS``) below
the UE's predicted level, as at a handover interruption, a cell edge or a coverage hole on a
drive; dips do not enter the log-normal statistics or its width (a mixture, not one log-normal
stretched over both states; a dip lasting ``DIP_RELEVEL_S`` is a new level instead, and a rise
of more than 10 dB above the level in two samples running restarts it there). Decayed
counts of the transitions good -> bad and bad -> bad give P(bad | good) and P(bad | bad), so
the bad-state probability of the next interval depends on whether the UE is in one now, and a
bad spell is expected to last dt / (1 - P(bad | bad)). Below, "outage" means the bad state.
Outages are not memoryless (a handover interruption ends after one step, a coverage hole
lasts), so once an outage has lasted r steps
P(out | out) is at least r / (r + 1) (Laplace's rule of succession on the current run). After a
handover the log-mean restarts from the first in-service sample in the new cell (the old cell's
level says little about it), and the UE's handovers are counted (a Poisson rate, for the risk of
an interruption during a transfer). An outage in the interval of a handover is that handover's
interruption, over within the interval: it counts as a good -> bad transition, but the channel
is not left in the bad state after it. The predictive law for the next interval is
log R ~ N(m, (k s)^2) with probability 1 - p_out, else 0. The scale factor k (one per UE: each
UE's rate is its own time series) is
adapted online so that the central 80 % interval covers 80 % of what follows: adaptive conformal
inference (Gibbs and Candès, "Adaptive conformal inference under distribution shift", NeurIPS
2021) applied to the interval width. The baseline is the single measured bandwidth of
Neurosurgeon (Kang et al., ASPLOS 2017): one number, the recent mean rate.

**Real traces.** :func:`load_cork5g` reads the Cork 5G production dataset (Raca et al., MMSys
2020): 1-second UE traces with DL/UL bitrate, RSRP, SNR, CQI and the serving CellID while
static and driving. Its ``Download`` traces hold a greedy TCP download, so their DL bitrate is a
measured capacity series; their UL bitrate is TCP acknowledgements (not capacity).
:func:`calibration_on_traces` scores the predictor's intervals on both series;
:func:`replay_uplinks` turns the capacity series into per-UE uplink traces for the benchmark.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri

from mobileai.errors import UserError

#: Rates below this are treated as an outage (bit/s).
OUTAGE_BPS = 1e3
#: A sample more than this far below the UE's predicted log-level (10 dB) is a *dip*: the bad
#: state of the Gilbert-Elliott channel, like an outage, not a draw of the log-normal good state.
DIP_NATS = math.log(10.0)
#: A dip that lasts this long is a new level, not a dip (the level restarts there), s.
DIP_RELEVEL_S = 1.0
#: Floor of the per-UE log-rate standard deviation (a few samples must not claim certainty).
MIN_LOG_STD = 0.05
#: Innovations beyond this many standard deviations are clipped (Huber), in the mean update.
HUBER_K = 2.0
#: Central interval the adaptive scale targets.
INTERVAL = 0.8
#: Memory of the outage-transition and handover counts, s (outages and handovers are rare
#: events: they need a longer memory than the rate itself).
EVENT_HALF_LIFE_S = 30.0
#: Beta prior of the Gilbert-Elliott transition probabilities: (P(out | in), weight in samples)
#: and (P(out | out), weight).
PRIOR_IN_OUT = (0.01, 10.0)
PRIOR_OUT_OUT = (0.5, 2.0)


def available_rate_bps(links: dict[str, np.ndarray], n_cells: int, direction: str = "ul") -> np.ndarray:
    """The rate a new AI flow of each UE would get now (see the module docstring)."""
    serving = links["serving"]
    active = links[f"served_{direction}_bps"] > 0
    n_act = np.bincount(serving[active], minlength=n_cells)[serving]
    share = np.maximum(1.0 - links[f"cell_{direction}_util"], 1.0 / (n_act + 1.0))
    return links[f"peak_{direction}_bps"] * share * links["in_service"]


@dataclass
class RatePrediction:
    """Predictive law of each UE's rate over the next interval."""

    mu: np.ndarray  # mean of log rate
    sigma: np.ndarray  # std of log rate (scaled)
    p_out: np.ndarray  # probability that the next interval is an outage (rate 0), given the state now
    mean_bps: np.ndarray  # single-number baseline: recent mean rate
    outage_left_s: np.ndarray  # expected rest of an outage once in one, s
    ho_rate_hz: np.ndarray  # handovers per second

    def quantile(self, q: float) -> np.ndarray:
        """Rate quantile q of the non-outage part, bit/s."""
        return np.exp(self.mu + self.sigma * ndtri(q))


class UplinkPredictor:
    """Vectorised per-UE log-normal rate predictor with an adaptively calibrated width, a
    Gilbert-Elliott outage state and a handover rate (see the module docstring).

    ``half_life_s`` sets the EWMA memory; ``gamma`` the step of the adaptive width update;
    ``mean_window_s`` the memory of the single-bandwidth baseline's mean.
    """

    def __init__(
        self,
        n: int,
        dt_s: float,
        half_life_s: float = 1.0,
        gamma: float = 0.05,
        mean_window_s: float = 10.0,
    ) -> None:
        if n < 0 or not dt_s > 0:
            raise ValueError(f"need n >= 0 and dt_s > 0 (got {n}, {dt_s})")
        self.n, self.dt = n, dt_s
        self.a = 1.0 - 0.5 ** (dt_s / half_life_s)
        self.a_mean = 1.0 - math.exp(-dt_s / mean_window_s)
        self.gamma = gamma
        self.m = np.zeros(n)
        self.v = np.ones(n)
        self.a_event = 1.0 - 0.5 ** (dt_s / EVENT_HALF_LIFE_S)
        self.last_out = np.zeros(n, dtype=bool)
        self.out_run = np.zeros(n)  # consecutive outage samples up to now
        self.fresh = np.zeros(n, dtype=bool)  # handed over, no in-service sample since
        self.has_level = np.zeros(n, dtype=bool)  # an in-service sample seen
        # decayed counts: samples in / out of an outage and the transitions out of each state
        self.n_in = np.full(n, PRIOR_IN_OUT[1])
        self.n_in_out = np.full(n, PRIOR_IN_OUT[0] * PRIOR_IN_OUT[1])
        self.n_out = np.full(n, PRIOR_OUT_OUT[1])
        self.n_out_out = np.full(n, PRIOR_OUT_OUT[0] * PRIOR_OUT_OUT[1])
        self.ho_rate = np.zeros(n)
        self.mean = np.zeros(n)
        self.seen = np.zeros(n, dtype=bool)
        self.scale = np.ones(n)  # per-UE adaptive width factor
        self._z = float(ndtri(0.5 + INTERVAL / 2))
        self.relevel_run = max(1, round(DIP_RELEVEL_S / dt_s))
        self.high_last = np.zeros(n, dtype=bool)  # the last sample was > DIP_NATS above the level

    def is_dip(self, rate_bps: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Which samples would be dips of UEs ``idx`` (more than ``DIP_NATS`` below the level)."""
        idx = np.arange(self.n) if idx is None else idx
        r = np.asarray(rate_bps, dtype=np.float64)
        lr = np.log(np.maximum(r, OUTAGE_BPS))
        return self.has_level[idx] & ~self.fresh[idx] & (r >= OUTAGE_BPS) & (lr < self.m[idx] - DIP_NATS)

    def predict(self) -> RatePrediction:
        sigma = self.scale * np.sqrt(np.maximum(self.v, MIN_LOG_STD**2))
        p_oo = np.maximum(self.n_out_out / self.n_out, self.out_run / (self.out_run + 1.0))
        p_out = np.where(self.last_out, p_oo, self.n_in_out / self.n_in)
        left = self.dt / np.maximum(1.0 - p_oo, 1e-3)
        return RatePrediction(self.m.copy(), sigma, p_out, self.mean.copy(), left, self.ho_rate.copy())

    def update(
        self, rate_bps: np.ndarray, idx: np.ndarray | None = None, handover: np.ndarray | None = None
    ) -> None:
        """Observe the rates of UEs ``idx`` (all UEs when None) over the last interval, and
        optionally which of them handed over in it."""
        idx = np.arange(self.n) if idx is None else idx
        r = np.asarray(rate_bps, dtype=np.float64)
        if handover is not None:
            self.fresh[idx] |= np.asarray(handover, dtype=bool)
        # bad state: an outage, or a dip below the level; a dip that has lasted DIP_RELEVEL_S is
        # a new level (restarted below), not a dip
        dip = self.is_dip(r, idx)
        relevel = dip & (self.out_run[idx] >= self.relevel_run)
        dip &= ~relevel
        out = (r < OUTAGE_BPS) | dip
        # a handover interruption (no rate in the interval of the handover) is over within the
        # interval (on the twin 4,579 of 4,606 handover outages of the moving workload last one
        # 100 ms step): it counts as a good -> bad transition (it does hit transfers), but it does
        # not leave the channel in the bad state (else the succession floor below predicts a 50 %
        # outage for the interval after every handover)
        ho_now = np.zeros(len(idx), bool) if handover is None else np.asarray(handover, dtype=bool)
        ge_out = out & ~(ho_now & (r < OUTAGE_BPS))
        # a handover starts a new rate level: the first in-service sample in the new cell
        # restarts the log-mean (the variance and the width factor are the UE's, kept)
        restart = self.fresh[idx] & ~out
        self.fresh[idx] &= out
        first = ~self.seen[idx]
        # the log-mean starts at the first in-service sample (an outage says nothing of the level)
        new_level = ~self.has_level[idx] & ~out
        # two samples in a row more than DIP_NATS above the level: a new, higher level (e.g. the
        # end of a low spell that had become the level; the Huber clip would otherwise crawl back
        # up for seconds); a single spike stays an outlier
        high = self.has_level[idx] & ~out & (np.log(np.maximum(r, OUTAGE_BPS)) > self.m[idx] + DIP_NATS)
        surge = high & self.high_last[idx]
        self.high_last[idx] = high & ~surge
        restart |= new_level | relevel | surge
        self.has_level[idx] |= ~out
        # adaptive width: did the central interval of the previous prediction cover this sample?
        ok = ~out & ~restart
        if ok.any():
            lr = np.log(r[ok])
            io = idx[ok]
            sig = self.scale[io] * np.sqrt(np.maximum(self.v[io], MIN_LOG_STD**2))
            miss = np.abs(lr - self.m[io]) > self._z * sig
            self.scale[io] = np.clip(
                self.scale[io] * np.exp(self.gamma * (miss - (1.0 - INTERVAL))), 0.2, 20.0
            )
        lr_all = np.log(np.maximum(r, OUTAGE_BPS))
        m, v = self.m[idx], self.v[idx]
        upd = ~out
        # Huber-clipped innovation: one deep fade must not drag the log-mean far down
        lim = HUBER_K * np.sqrt(np.maximum(v, MIN_LOG_STD**2))
        d = np.clip(lr_all - m, -lim, lim)
        m_new = np.where(restart, lr_all, np.where(upd, m + self.a * d, m))  # no clipping then
        v_upd = (1 - self.a) * (v + self.a * d * d)
        v_new = np.where(new_level, 0.25, np.where(upd & ~restart, v_upd, v))
        self.m[idx], self.v[idx] = m_new, v_new
        # Gilbert-Elliott transition counts (from the previous state of each UE), decayed
        prev_out = self.last_out[idx]
        keep = 1.0 - self.a_event
        was_in, was_out = ~first & ~prev_out, ~first & prev_out
        self.n_in[idx] = np.where(was_in, self.n_in[idx] * keep + 1.0, self.n_in[idx])
        self.n_in_out[idx] = np.where(was_in, self.n_in_out[idx] * keep + out, self.n_in_out[idx])
        self.n_out[idx] = np.where(was_out, self.n_out[idx] * keep + 1.0, self.n_out[idx])
        self.n_out_out[idx] = np.where(was_out, self.n_out_out[idx] * keep + out, self.n_out_out[idx])
        self.last_out[idx] = ge_out
        self.out_run[idx] = np.where(ge_out, self.out_run[idx] + 1.0, 0.0)
        if handover is not None:
            rate_now = np.asarray(handover, dtype=np.float64) / self.dt
            self.ho_rate[idx] += self.a_event * (rate_now - self.ho_rate[idx])
        am = np.where(first, 1.0, self.a_mean)
        self.mean[idx] = self.mean[idx] + am * (r - self.mean[idx])
        self.seen[idx] = True


# --------------------------------------------------------------------------- Cork 5G traces


@dataclass(frozen=True)
class Trace:
    """One 1-second trace: capacity (DL bitrate of a greedy download), UL bitrate, cell changes."""

    name: str
    mobility: str  # "static" or "driving"
    dl_bps: np.ndarray
    ul_bps: np.ndarray
    cell_change: np.ndarray  # bool, serving CellID differs from the previous second


def default_cork_path() -> Path:
    """``../shared/data/cork5g`` relative to the repository (the documented data location)."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "cork5g"


def load_cork5g(path: str | Path | None = None, apps: tuple[str, ...] = ("Download",)) -> list[Trace]:
    """The Cork 5G traces of the given application folders (``Download``, ``Netflix``,
    ``Amazon_Prime``); ``path`` is the folder holding the zip, or the zip itself."""
    import pandas as pd

    p = Path(path) if path is not None else default_cork_path()
    zpath = p if p.suffix == ".zip" else p / "5G-production-dataset.zip"
    if not zpath.is_file():
        raise UserError(f"--data {p}: no Cork 5G zip (5G-production-dataset.zip) found there")
    traces = []
    with zipfile.ZipFile(zpath) as z:
        for name in sorted(z.namelist()):
            parts = name.split("/")
            if not name.endswith(".csv") or len(parts) < 4 or parts[1] not in apps:
                continue
            df = pd.read_csv(io.BytesIO(z.read(name)), na_values=["-"])
            for col in ("DL_bitrate", "UL_bitrate", "CellID"):
                if col not in df:
                    raise UserError(f"{zpath}:{name}: missing column {col}")
            cell = df["CellID"].ffill().to_numpy()
            change = np.concatenate(([False], cell[1:] != cell[:-1]))
            traces.append(
                Trace(
                    name="/".join(parts[1:]),
                    mobility="driving" if "Driving" in parts else "static",
                    dl_bps=df["DL_bitrate"].fillna(0).to_numpy(np.float64) * 1e3,
                    ul_bps=df["UL_bitrate"].fillna(0).to_numpy(np.float64) * 1e3,
                    cell_change=change,
                )
            )
    if not traces:
        raise UserError(f"{zpath}: no traces for {apps}")
    return traces


def calibration_on_traces(traces: list[Trace], series: str = "dl_bps", warmup: int = 10) -> dict:
    """Score one-step-ahead (1 s) predictions on each trace, all traces stepped together.

    Returns coverage of the central 50 % / 80 % / 90 % intervals of the good-state law on the
    samples that are not in the bad state (target: nominal), the bad-state probability against
    the bad-state frequency (outage or dip, reliability by bins of the prediction), the median
    absolute log error of the median prediction on every in-service sample, and for the
    baselines (last value; the single-bandwidth mean of Neurosurgeon) their median absolute log
    error, split by mobility.
    """
    length = max(len(t.dl_bps) for t in traces)
    n = len(traces)
    x = np.full((length, n), np.nan)
    for j, t in enumerate(traces):
        x[: len(t.dl_bps), j] = getattr(t, series)
    pred = UplinkPredictor(n, dt_s=1.0, half_life_s=3.0, mean_window_s=10.0)
    levels = (0.5, 0.8, 0.9)
    hits = {q: [] for q in levels}
    err_ours, err_last, err_mean, groups = [], [], [], []
    pit = []
    p_bad, was_bad, bad_groups = [], [], []
    last = np.full(n, np.nan)
    mobility = np.array([t.mobility for t in traces])
    for k in range(length):
        alive = np.flatnonzero(~np.isnan(x[k]))
        if k >= warmup:
            p = pred.predict()
            r = x[k, alive]
            bad = (r < OUTAGE_BPS) | pred.is_dip(r, alive)
            p_bad.append(p.p_out[alive])
            was_bad.append(bad)
            bad_groups.append(mobility[alive])
            good = ~bad
            lr_good = np.log(r[good])
            z = (lr_good - p.mu[alive[good]]) / p.sigma[alive[good]]
            for q in levels:
                hits[q].append(np.abs(z) <= ndtri(0.5 + q / 2))
            pit.append(ndtr(z))
            ok = r >= OUTAGE_BPS
            ii = alive[ok]
            lr = np.log(r[ok])
            err_ours.append(np.abs(lr - p.mu[ii]))
            err_last.append(np.abs(lr - np.log(np.maximum(last[ii], OUTAGE_BPS))))
            err_mean.append(np.abs(lr - np.log(np.maximum(p.mean_bps[ii], OUTAGE_BPS))))
            groups.append(mobility[ii])
        pred.update(x[k, alive], alive)
        last[alive] = x[k, alive]
    g = np.concatenate(groups)
    pb, wb, gb = np.concatenate(p_bad), np.concatenate(was_bad), np.concatenate(bad_groups)
    gg = gb[~wb]  # mobility of the good-state samples the intervals are scored on
    out: dict = {"series": series, "traces": n, "samples": len(g), "by_mobility": {}}
    for name, mask, mg, mb in (
        ("all", np.ones(len(g), bool), np.ones(len(gg), bool), np.ones(len(gb), bool)),
        ("static", g == "static", gg == "static", gb == "static"),
        ("driving", g == "driving", gg == "driving", gb == "driving"),
    ):
        if not mask.any():
            continue
        row = {f"coverage_{int(q * 100)}": float(np.concatenate(hits[q])[mg].mean()) for q in levels}
        row["bad_state"] = {
            "predicted_mean": float(pb[mb].mean()),
            "observed": float(wb[mb].mean()),
            "brier": float(np.mean((pb[mb] - wb[mb]) ** 2)),
        }
        row["median_abs_log_error"] = {
            "ours_median": float(np.median(np.concatenate(err_ours)[mask])),
            "last_value": float(np.median(np.concatenate(err_last)[mask])),
            "single_bandwidth_mean": float(np.median(np.concatenate(err_mean)[mask])),
        }
        row["samples"] = int(mask.sum())
        out["by_mobility"][name] = row
    hist, _ = np.histogram(np.concatenate(pit), bins=10, range=(0, 1))
    out["pit_histogram"] = (hist / hist.sum()).round(4).tolist()
    # reliability of the bad-state probability: observed frequency per bin of the prediction
    edges = np.array([0.0, 0.01, 0.05, 0.2, 0.5, 1.0 + 1e-9])
    b = np.digitize(pb, edges) - 1
    out["bad_state_reliability"] = [
        {
            "predicted": f"{edges[i]:.2f}-{min(edges[i + 1], 1.0):.2f}",
            "samples": int((b == i).sum()),
            "predicted_mean": float(pb[b == i].mean()),
            "observed": float(wb[b == i].mean()),
        }
        for i in range(len(edges) - 1)
        if (b == i).any()
    ]
    out["final_scale_median"] = float(np.median(pred.scale))
    return out


def replay_uplinks(
    traces: list[Trace],
    n_ues: int,
    steps: int,
    dt_s: float,
    level_bps: np.ndarray,
    rng: np.random.Generator,
    interruption_s: float = 0.05,
    moving: np.ndarray | None = None,
) -> np.ndarray:
    """[steps, n_ues] uplink rate series built from measured capacity traces.

    ``moving`` [n_ues] bool: a moving UE replays the ``driving`` traces and a static one the
    ``static`` traces (where the set holds both kinds), so that a 120 km/h UE carries measured
    driving fluctuations and cell changes; None: every UE draws from all traces.
    UE i replays trace ``i mod len(traces)`` of its set from a random offset (wrapping), held per second and
    sampled every ``dt_s``; the trace is normalised by its median and multiplied by
    ``level_bps[i]`` (the twin's median available uplink rate of that UE), so the measured
    fluctuations, outages and cell changes are kept while the level stays the twin's (the traces
    are LTE/5G-NSA downlink measurements, not uplink capacities). A cell change removes
    ``interruption_s`` of service from its step (handover interruption).
    """
    out = np.zeros((steps, n_ues))
    t = np.arange(steps) * dt_s
    pools = {False: traces, True: traces}
    if moving is not None:
        drive = [tr for tr in traces if tr.mobility == "driving"]
        still = [tr for tr in traces if tr.mobility != "driving"]
        pools = {False: still or traces, True: drive or traces}
    for i in range(n_ues):
        pool = pools[moving is not None and bool(moving[i])]
        tr = pool[i % len(pool)]
        cap = tr.dl_bps
        med = np.median(cap[cap > 0]) if (cap > 0).any() else 1.0
        off = int(rng.integers(0, len(cap)))
        sec = (off + np.floor(t).astype(np.int64)) % len(cap)
        frac = np.ones(steps)
        first_in_second = np.concatenate(([True], sec[1:] != sec[:-1]))
        frac[first_in_second & tr.cell_change[sec]] = max(0.0, 1.0 - interruption_s / dt_s)
        out[:, i] = cap[sec] / med * level_bps[i] * frac
    return out
