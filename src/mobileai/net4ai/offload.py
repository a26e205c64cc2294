"""Placement and split decisions for AI tasks: device, edge (which MEC), cloud or a split point.

Each task class has a table of *options* (split point s, target node): s = n runs the whole model
on the device; s < n runs blocks [0, s) on the device, sends the output of block s - 1 (or the raw
input when s = 0) uplink, and runs the rest on a MEC or the cloud. Split points are pruned as in
Neurosurgeon (Kang et al., ASPLOS 2017): a later split is kept only if it sends strictly fewer
bytes than every earlier allowed one (otherwise it costs more device time for no radio gain).
Privacy (:class:`~mobileai.compute.workloads.TaskClass`) removes the options whose upload is not
allowed, for every policy, before any policy sees them. Column 0 of every class is the on-device
option.

The latency of option (s, j) for a task is ``a + B / R``. ``a`` sums the deterministic parts:
the upload starts when both the device has run blocks [0, s) (behind its queue; nothing to run
and no device queue to wait for when s = 0, the raw input is ready at arrival) and the UE's
uplink is free; then radio access, transport to node j and back, node j's queue and its compute
of blocks [s, n), and the result's downlink. ``B`` is the upload in bits and ``R`` the UE's
uplink rate over the transfer.

Policies (one batch call decides all N tasks: numpy over N tasks x S split points, the node
for each split point being a running minimum over the few nodes; no Python loop over tasks):

- ``device``, ``edge``, ``cloud``: static placement. ``edge`` sends the earliest allowed data
  (raw input, or the features at ``min_split``) to the UE's serving-site MEC (another up MEC if it
  is down), ``cloud`` to the cloud; both fall back to the device where nothing may leave.
- ``neurosurgeon``: Kang et al.: one measured bandwidth (the UE's recent mean uplink rate), the
  serving-site MEC, the node's current queue, minimum estimated latency.
- ``radio_aware`` (ours): the predicted rate *distribution* of
  :class:`~mobileai.net4ai.uplink.UplinkPredictor` (log-normal log R ~ N(mu, sigma^2), an outage
  probability conditioned on the UE's current outage state, a Gilbert-Elliott two-state channel),
  the UE's handover rate, every MEC and the cloud, node queues, device speed (thermal
  throttling), memory and battery. For each option it predicts the probability of meeting the
  deadline,

      P(a + B/R <= D) = (1 - p_out) x (1 - lambda_ho x B E[1/R]) x Phi((mu - ln(B / (D - a))) / sigma),

  (the middle factor: no handover interruption during the transfer, Poisson handovers at rate
  lambda_ho; for the device option P is 1 or 0, its latency being known), and the latency tail
  t_q = a + B exp(z_q sigma - mu) (+ the expected rest of an outage, or one interval for a
  handover interruption, when the bad state is likelier than 1 - q), q = ``TAIL_Q`` = 0.95, with
  the per-interval law turned into the law of the mean rate over the transfer (Fenton-Wilkinson).
  The decision is chance-constrained (Charnes and Cooper, Management Science 1959; for
  offloading e.g. Liu, Bennis and Poor, "Latency and reliability-aware task offloading and
  resource allocation for mobile edge computing", IEEE Globecom Workshops 2017, who constrain
  the probability of an excessive task queue instead of its mean), lexicographic in the
  probability:

  1. Eligible are the options whose P is within ``P_TIE`` (0: equal) of the best option's P and at
     least ``P_REAL`` (0.1, "a real chance": the rate needed lies inside the predictor's
     calibrated 80 % interval or below it). An option with P ~ 0 thus loses to any option with
     a real chance, whatever its energy or expected lateness (a dashcam frame whose embedded CPU
     needs 102 ms for a 100 ms deadline goes to a MEC that can make it).
  2. Among the eligible options the least t_q / D + energy wins (device compute and transmit
     energy per device-only energy, ``ENERGY_WEIGHT`` deadlines each, more when the battery is
     low): similar on-time chances, the shorter tail.
  3. When no option has a real chance, every option is eligible and the same cost picks the
     shortest tail: the least late option instead of a gamble on a small chance (a late frame
     still has to be delivered).

  Online recalibration (``DecisionInputs.calibration``, :class:`OnTimeCalibration`; the simulator
  turns it on by default, ``simulate(recalibrate=False)`` turns it off): P is mapped through a
  monotone per-class map fitted on the outcomes of the policy's earlier remote tasks that are
  known at decision time (binned raw P vs deadline met, shrunk to the identity with few
  outcomes, isotonic, linear in logit between bins). The model's P is pessimistic in [0.1, 0.5)
  and over-confident above 0.95 (docs/benchmarks.md, "Calibration of ours' on-time
  probability"); the map corrects the level of the remote options against the device's known P
  and against ``P_REAL``, and the P the decision reports (``Decision.p_raw`` keeps the model's).

  The result's downlink time uses the predicted in-service downlink level (``dl_level_bps``);
  the other policies use the downlink's recent mean (``dl_bps``), one number. The simulator
  adds service continuity: uploads that degrade, stall in an outage or cross a handover are
  re-decided and may fall back to the device. Neurosurgeon is the baseline (one bandwidth, one
  MEC, the minimum latency estimate; Kang et al., ASPLOS 2017).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri
from sklearn.isotonic import isotonic_regression

from mobileai.compute.nodes import DEVICE_CLASSES
from mobileai.compute.profiles import ModelProfile, load_profile
from mobileai.compute.workloads import TaskClass
from mobileai.net4ai.uplink import INTERVAL

POLICIES = ("device", "edge", "cloud", "neurosurgeon", "radio_aware")

#: Mean uplink access delay (scheduling request + grant over a 2.5 ms DDDSU TDD period at 30 kHz
#: SCS: on average half a period of waiting, one period to the grant), s.
UL_ACCESS_S = 3.75e-3
#: Mean downlink delay of a small result (half a TDD period plus one slot), s.
DL_ACCESS_S = 1.75e-3
#: Latency quantile the radio-aware policy ranks its eligible options by (the tail, not the mean:
#: the issue's target is the p95 end-to-end latency).
TAIL_Q = 0.95
#: Standard normal quantile of ``TAIL_Q``.
Z_TAIL = float(ndtri(TAIL_Q))
#: A "real chance" of meeting the deadline: the rate the option needs is inside the predictor's
#: calibrated central interval (or below it), i.e. P(on time) >= (1 - INTERVAL) / 2 = 0.1. A
#: smaller probability is the log-normal's extrapolated tail, beyond what the conformal width
#: is calibrated on (:data:`~mobileai.net4ai.uplink.INTERVAL`).
P_REAL = (1.0 - INTERVAL) / 2.0
#: On-time probabilities closer than this are ties, ranked by the latency tail. 0: a pure
#: lexicographic order (only equal probabilities, e.g. two certain options, go to the tail). A
#: tolerance of 1 - TAIL_Q = 0.05 was the first choice; on seeds 45 and 46, held out, 0 was
#: better or equal on all eight benchmark configurations (docs/benchmarks.md, offload section):
#: the predictor's over-confident split uploads (0.99 predicted, 0.93 met on the Cork replay) made
#: the tolerance give up certain on-device results.
P_TIE = 0.0
#: Energy weight among eligible options: deadlines of tail latency per device-only energy at a
#: full battery, the exchange rate of the former expected-cost score (0.02 probability per
#: device-only energy against 0.1 per deadline of latency). Any value >= 0 is valid: energy only
#: ranks options that already passed the on-time probability test.
ENERGY_WEIGHT = 0.2
#: Below this battery state of charge the energy weight grows as 1 / soc.
LOW_BATTERY = 0.2


@dataclass(frozen=True)
class OptionTable:
    """Options of all task classes, padded to K columns: split [C, K], node [C, K] (-1 = device),
    valid [C, K], per-option reference-CPU seconds on the device and on the server, upload bytes,
    blocks on the server; per class: result bytes, device memory need per option (bytes)."""

    split: np.ndarray
    node: np.ndarray
    valid: np.ndarray
    dev_cpu_s: np.ndarray
    srv_cpu_s: np.ndarray
    up_bytes: np.ndarray
    srv_blocks: np.ndarray
    dev_model_bytes: np.ndarray
    result_bytes: np.ndarray
    device_option: np.ndarray  # [C] column of the on-device option (always 0)
    edge_option: np.ndarray  # [C, nodes] column of the static edge/cloud option per node (-1: none)
    cache: dict = field(default_factory=dict, compare=False, repr=False)  # per-node-set tables

    @property
    def n_options(self) -> int:
        return self.split.shape[1]


def candidate_splits(profile: ModelProfile, allowed: np.ndarray) -> np.ndarray:
    """Allowed split points s < n that send strictly fewer bytes than every earlier allowed one."""
    up = profile.split_upload_bytes()
    keep, best = [], np.inf
    for s in range(profile.n_blocks):
        if allowed[s] and up[s] < best:
            keep.append(s)
            best = up[s]
    return np.array(keep, dtype=np.int64)


def build_options(classes: list[TaskClass], n_nodes: int) -> OptionTable:
    rows = []
    for tc in classes:
        prof = load_profile(tc.model)
        allowed = tc.upload_allowed()
        splits = candidate_splits(prof, allowed)
        opts = [(prof.n_blocks, -1)] + [(int(s), j) for s in splits for j in range(n_nodes)]
        rows.append((tc, prof, opts, splits))
    k = max(len(r[2]) for r in rows)
    c = len(classes)
    split = np.zeros((c, k), np.int64)
    node = np.full((c, k), -1, np.int64)
    valid = np.zeros((c, k), bool)
    dev_cpu = np.zeros((c, k))
    srv_cpu = np.zeros((c, k))
    up = np.zeros((c, k))
    blocks = np.zeros((c, k))
    mem = np.zeros((c, k))
    res = np.zeros(c)
    edge_opt = np.full((c, n_nodes), -1, np.int64)
    for i, (tc, prof, opts, splits) in enumerate(rows):
        pre = prof.prefix_cpu_s()
        upb = prof.split_upload_bytes()
        if tc.input_bytes is not None:
            upb[0] = tc.input_bytes
        params = prof.prefix_params()
        for col, (s, j) in enumerate(opts):
            split[i, col], node[i, col], valid[i, col] = s, j, True
            dev_cpu[i, col] = pre[s]
            srv_cpu[i, col] = pre[-1] - pre[s]
            up[i, col] = upb[s]
            blocks[i, col] = prof.n_blocks - s
            mem[i, col] = params[s] * 2.0
            if j >= 0 and s == splits[0]:
                edge_opt[i, j] = col
        res[i] = prof.result_bytes
    return OptionTable(
        split, node, valid, dev_cpu, srv_cpu, up, blocks, mem, res, np.zeros(c, np.int64), edge_opt
    )


@dataclass
class DecisionInputs:
    """What a policy knows about each of N tasks at decision time (arrays of length N unless noted)."""

    cls: np.ndarray  # task class index
    deadline_s: np.ndarray
    wait_dev_s: np.ndarray  # until the device is free
    dev_flops: np.ndarray  # device effective FLOP/s x current speed factor
    dev_memory_bytes: np.ndarray
    dev_power_w: np.ndarray
    tx_power_w: np.ndarray
    soc: np.ndarray
    wait_ul_s: np.ndarray  # until the UE's uplink is free
    mu: np.ndarray  # predicted log uplink rate
    sigma: np.ndarray
    p_out: np.ndarray  # probability that the next interval is an outage (given the current state)
    mean_bps: np.ndarray  # single measured bandwidth (baseline)
    dl_bps: np.ndarray  # downlink rate for the result: one measured number (recent mean)
    one_way_s: np.ndarray  # [N, nodes]
    serving_edge: np.ndarray  # MEC index of the serving site
    node_wait_s: np.ndarray  # [nodes]
    node_up: np.ndarray  # [nodes] bool
    node_flops: np.ndarray  # [nodes]
    node_overhead_s: np.ndarray  # [nodes]
    transport_bps: np.ndarray  # [nodes]
    ref_flops: float  # reference CPU FLOP/s of the profile
    ho_rate_hz: np.ndarray | None = None  # recent handovers per second (radio-aware only)
    outage_left_s: np.ndarray | None = None  # expected rest of an outage (radio-aware only)
    rate_interval_s: float | None = None  # interval the predicted rate law is for (None: any)
    dl_level_bps: np.ndarray | None = None  # predicted in-service downlink level (radio-aware)
    #: online recalibration of the on-time probability (radio-aware; None: the model's P as is)
    calibration: OnTimeCalibration | None = None


@dataclass
class Decision:
    option: np.ndarray  # [N] column in the option table
    est_latency_s: np.ndarray  # [N] the policy's own estimate
    p_meet: np.ndarray  # [N] radio-aware probability estimate (nan for other policies)
    #: [N] the model's probability before recalibration (radio-aware; None: not recalibrated)
    p_raw: np.ndarray | None = None


#: Edges of the raw on-time probability bins of :class:`OnTimeCalibration` (the interior of (0, 1);
#: an exact 0 and an exact 1 have a bin each): finer towards 1, where most offloads are decided.
CALIB_EDGES = np.array(
    [0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999, 1.0]
)
#: Pseudo-outcomes per bin at the bin's own mean raw probability: with few outcomes the map stays
#: near the identity (a Beta prior centred on the model's P).
CALIB_PRIOR_N = 30.0
#: Logits are clipped to +-this (P in [1e-12, 1 - 1e-12]) inside the map.
_LOGIT_MAX = 27.7
#: Logit grid of the map's lookup table (0.2 nats apart).
_GRID = np.linspace(-_LOGIT_MAX, _LOGIT_MAX, 278)


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1.0 - 1e-12)
    return np.log(q / (1.0 - q))


class OnTimeCalibration:
    """Online recalibration of the radio-aware policy's on-time probability, per task class.

    Fed with (raw P, deadline met) of the remote decisions whose outcome is *known* at decision
    time (the simulator's outcome feedback; no outcome from the future). Outcomes are binned by
    raw P (:data:`CALIB_EDGES`, plus one bin for an exact 0 and one for an exact 1); each bin's
    met rate is shrunk towards the bin's mean raw P with :data:`CALIB_PRIOR_N` pseudo-outcomes,
    made non-decreasing over the bins (weighted isotonic regression, scikit-learn), and the map is
    piecewise linear in logit space between the bins' mean raw logits (beyond the outer bins, the
    outer bin's logit offset). With no outcomes it is the identity; it is monotone
    non-decreasing, so a task's remote options keep their order (with ``P_TIE`` = 0 the decision
    ranks them by raw P; flat stretches where the isotonic fit pooled bins are ties only on the
    ``P_TIE`` > 0 path); what changes is their level against the device's known P and
    ``P_REAL``, and the P reported. :meth:`refit` rebuilds the map from the counts (the simulator
    calls it every :data:`~mobileai.net4ai.simulator.RECALIBRATE_EVERY_S`); :meth:`decay`
    forgets old outcomes."""

    def __init__(self, n_classes: int) -> None:
        nb = len(CALIB_EDGES) + 1  # bin 0: P == 0, 1..len-1: interior, last: P == 1
        self.n_classes = n_classes
        self.n = np.zeros((n_classes, nb))
        self.met = np.zeros((n_classes, nb))
        self.sum_p = np.zeros((n_classes, nb))
        self.sum_logit = np.zeros((n_classes, nb))
        self.refit()

    @staticmethod
    def _bin(p: np.ndarray) -> np.ndarray:
        b = np.searchsorted(CALIB_EDGES, p, side="right")  # 1 .. len-1 in (0, 1)
        b = np.minimum(b, len(CALIB_EDGES) - 1)
        b = np.where(p <= 0.0, 0, b)
        return np.where(p >= 1.0, len(CALIB_EDGES), b)

    def observe(self, cls: np.ndarray, p_raw: np.ndarray, met: np.ndarray) -> None:
        """Add outcomes (class, raw P of the chosen remote option, deadline met)."""
        if len(cls) == 0:
            return
        p = np.clip(np.asarray(p_raw, np.float64), 0.0, 1.0)
        b = self._bin(p)
        key = (np.asarray(cls, np.int64), b)
        np.add.at(self.n, key, 1.0)
        np.add.at(self.met, key, np.asarray(met, np.float64))
        np.add.at(self.sum_p, key, p)
        np.add.at(self.sum_logit, key, _logit(p))

    def decay(self, factor: float) -> None:
        """Forget: every count times ``factor`` (exponential memory; bins' means unchanged)."""
        for a in (self.n, self.met, self.sum_p, self.sum_logit):
            a *= factor

    def refit(self) -> None:
        """Rebuild the per-class maps from the counts.

        The map is one table over all classes, for one np.interp per call: class c's raw P
        [0, 1] sits at [2c, 2c + 1] (grid points uniform in logit, the map linear in P between
        them), its calibrated P likewise (a 1e-12 ramp keeps it strictly increasing, so that the
        inverse is an np.interp too); a last point (2C, 2C) closes the inverse."""
        nb = self.n.shape[1]
        mids = 0.5 * (CALIB_EDGES[:-1] + CALIB_EDGES[1:])
        prior_p = np.concatenate(([0.0], mids, [1.0]))
        raw_c = np.concatenate(([0.0], 1.0 / (1.0 + np.exp(-_GRID)), [1.0]))
        raw, val, inv = [], [], []
        self.raw_real, self.raw_one = np.zeros(self.n_classes), np.zeros(self.n_classes)
        for c in range(self.n_classes):
            n, m = self.n[c], self.met[c]
            mean_p = np.where(n > 0, self.sum_p[c] / np.maximum(n, 1.0), prior_p)
            rate = (m + CALIB_PRIOR_N * mean_p) / (n + CALIB_PRIOR_N)
            rate = isotonic_regression(rate, sample_weight=n + CALIB_PRIOR_N)  # exact 0 and 1 bins too
            lo, hi = rate[0], rate[-1]
            x = np.where(n > 0, self.sum_logit[c] / np.maximum(n, 1.0), _logit(prior_p))[1:-1]
            y = _logit(rate[1:-1]) + np.arange(nb - 2) * 1e-9  # strictly increasing
            # beyond the outer bins: their logit offset, to the clip bounds
            x = np.concatenate(([-_LOGIT_MAX - 1.0], x, [_LOGIT_MAX + 1.0]))
            y = np.concatenate(([y[0] - (x[1] - x[0]) - 1e-9], y, [y[-1] + (x[-1] - x[-2]) + 1e-9]))
            v = 1.0 / (1.0 + np.exp(-np.interp(_GRID, x, y)))
            v = np.concatenate(([lo], np.clip(v, lo, hi), [hi]))
            raw.append(raw_c + 2 * c)
            val.append(v + 2 * c)
            inv.append(v + np.arange(len(v)) * 1e-12 + 2 * c)
            # the least raw P whose calibrated P reaches P_REAL ("a real chance") and 1 (2.0:
            # none), for the decision's P_TIE = 0 path
            self.raw_real[c] = _least_raw(raw_c, v, P_REAL)
            self.raw_one[c] = _least_raw(raw_c, v, 1.0)
        end = np.array([2.0 * self.n_classes])
        self._raw = np.concatenate([*raw, end])
        self._val = np.concatenate([*val, end])
        self._inv = np.concatenate([*inv, end])

    def apply(self, p: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """Calibrated P of raw ``p`` [N] for tasks of classes ``cls`` [N]; negative p (an invalid
        option) stays as it is."""
        return np.where(p < 0.0, p, self.forward(p, 2.0 * cls))

    def raw_floor(self, y: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """The least raw P whose calibrated P is >= ``y`` [N] (> 1: none; <= 0: any)."""
        return self.inverse(y, 2.0 * cls)

    def forward(self, p: np.ndarray, off: np.ndarray) -> np.ndarray:
        """:meth:`apply` for p >= 0, with the classes' table offsets ``off`` = 2 x class."""
        r = np.interp(p + off, self._raw, self._val)
        r -= off
        return r

    def inverse(self, y: np.ndarray, off: np.ndarray) -> np.ndarray:
        """:meth:`raw_floor` with the classes' table offsets ``off`` = 2 x class."""
        r = np.interp(y + off, self._inv, self._raw)
        r -= off
        return r


def _least_raw(raw: np.ndarray, val: np.ndarray, y: float) -> float:
    """The least raw P at which the piecewise-linear table (raw, val), non-decreasing, reaches y
    (2.0: never)."""
    j = int(np.searchsorted(val, y, side="left"))
    if j >= len(val):
        return 2.0
    if j == 0 or val[j] == val[j - 1]:
        return float(raw[j])
    return float(raw[j - 1] + (y - val[j - 1]) / (val[j] - val[j - 1]) * (raw[j] - raw[j - 1]))


@dataclass
class _Parts:
    """Latency parts of one batch: the device option [N] and the remote options [N, S] (split
    index i, each at its best node ``node_best``; for a fixed split every score prefers the node
    with the least transport + queue + compute, so the node choice is separable)."""

    a_dev: np.ndarray  # [N] on-device latency (queue + compute)
    t_dev: np.ndarray  # [N] on-device compute seconds
    start: np.ndarray  # [N, S] time from arrival to the upload's start
    t_pre: np.ndarray  # [N, S] device compute of blocks [0, s)
    base_n: np.ndarray  # [N, J, S] node part of the latency after the upload (inf: invalid)
    after_fixed: np.ndarray  # [N] result downlink, the same at every node
    node_best: np.ndarray  # [N, S]
    a_rem: np.ndarray  # [N, S] deterministic latency at the best node
    bits: np.ndarray  # [N, S] upload bits
    log_bits: np.ndarray  # [N, S]
    valid_dev: np.ndarray  # [N]
    valid_rem: np.ndarray  # [N, S]


@dataclass(frozen=True)
class _Static:
    """What does not change between batches, per class x split index (x node): [C, S] and
    [C, J, S] views of the option table and the node-independent latency terms."""

    base: np.ndarray  # [C, J, S] access + transport serialisation + server compute (inf: invalid)
    t_pre_ref: np.ndarray  # [C, S] reference-CPU seconds of blocks [0, s)
    waits_dev: np.ndarray  # [C, S] split > 0 (the upload waits for the device)
    bits: np.ndarray  # [C, S]
    log_bits: np.ndarray  # [C, S] (0 where nothing is sent)
    mem: np.ndarray  # [C, S]


def _static(opt: OptionTable, x: DecisionInputs) -> _Static:
    key = (x.ref_flops, x.node_flops.tobytes(), x.node_overhead_s.tobytes(), x.transport_bps.tobytes())
    hit = opt.cache.get(key)
    if hit is not None:
        return hit
    n_c, k = opt.split.shape
    j_n = len(x.node_flops)
    n_s = (k - 1) // j_n
    shape3 = (n_c, n_s, j_n)
    rem = (slice(None), slice(1, 1 + n_s * j_n))
    srv_t = opt.srv_cpu_s[rem].reshape(shape3) * (x.ref_flops / x.node_flops)
    srv_t += opt.srv_blocks[rem].reshape(shape3) * x.node_overhead_s
    bits3 = opt.up_bytes[rem].reshape(shape3) * 8.0
    base = UL_ACCESS_S + bits3 / x.transport_bps + srv_t + DL_ACCESS_S
    base[~opt.valid[rem].reshape(shape3)] = np.inf
    base = np.ascontiguousarray(base.transpose(0, 2, 1))
    first = slice(1, 1 + n_s * j_n, j_n)  # node 0 of each split index
    st = _Static(
        base,
        opt.dev_cpu_s[:, first],
        opt.split[:, first] > 0,
        opt.up_bytes[:, first] * 8.0,
        np.log(np.maximum(opt.up_bytes[:, first] * 8.0, 1.0)),
        opt.dev_model_bytes[:, first],
    )
    opt.cache[key] = st
    return st


def _components(opt: OptionTable, x: DecisionInputs) -> _Parts:
    """Node-level terms are folded into a [C, J, S] table first, so that the per-task work is a
    handful of gathers and adds over [N, S] (and a running minimum over the J nodes)."""
    c = x.cls
    st = _static(opt, x)
    node_extra = np.where(x.node_up, x.node_wait_s, np.inf)
    base_n = np.take(st.base, c, axis=0)
    # best node per split: a running minimum over the J nodes (J is small; numpy reductions
    # over a short last axis are slow)
    after = node_best = None
    for j in range(base_n.shape[1]):
        v = base_n[:, j, :] + (2.0 * x.one_way_s[:, j] + node_extra[j])[:, None]
        if after is None:
            after, node_best = v, np.zeros(v.shape, np.int64)
        else:
            better = v < after
            np.copyto(after, v, where=better)
            node_best[better] = j
    after_fixed = opt.result_bytes[c] * 8.0 / np.maximum(x.dl_bps, 1e3)
    after += after_fixed[:, None]
    inv_flops = x.ref_flops / x.dev_flops
    t_pre = np.take(st.t_pre_ref, c, axis=0) * inv_flops[:, None]
    # the upload waits for the device only if the device has blocks to run (s > 0)
    ready = (t_pre + x.wait_dev_s[:, None]) * np.take(st.waits_dev, c, axis=0)
    start = np.maximum(ready, x.wait_ul_s[:, None])
    a_rem = start + after
    bits = np.take(st.bits, c, axis=0)
    valid_rem = np.isfinite(after) & (np.take(st.mem, c, axis=0) <= x.dev_memory_bytes[:, None])
    t_dev = opt.dev_cpu_s[c, 0] * inv_flops
    valid_dev = opt.valid[c, 0] & (opt.dev_model_bytes[c, 0] <= x.dev_memory_bytes)
    return _Parts(
        x.wait_dev_s + t_dev,
        t_dev,
        start,
        t_pre,
        base_n,
        after_fixed,
        node_best,
        a_rem,
        bits,
        np.take(st.log_bits, c, axis=0),
        valid_dev,
        valid_rem,
    )


def _after_at(pt: _Parts, x: DecisionInputs, node: np.ndarray) -> np.ndarray:
    """[N, S] latency after the upload when every task's node is ``node`` [N] (inf: invalid)."""
    rows = np.arange(len(node))
    extra = 2.0 * x.one_way_s[rows, node] + np.where(x.node_up, x.node_wait_s, np.inf)[node]
    return pt.base_n[rows, node, :] + (extra + pt.after_fixed)[:, None]


def _column(opt: OptionTable, split_idx: np.ndarray, node: np.ndarray) -> np.ndarray:
    """Option-table column of (split index, node); split_idx < 0 means the device (column 0)."""
    j_n = opt.edge_option.shape[1]
    return np.where(split_idx >= 0, 1 + np.maximum(split_idx, 0) * j_n + node, 0)


def decide(policy: str, opt: OptionTable, x: DecisionInputs) -> Decision:
    """One decision per task, all N tasks in one vectorised call."""
    n = len(x.cls)
    if n == 0:
        z = np.zeros(0)
        return Decision(np.zeros(0, np.int64), z, z)
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    pt = _components(opt, x)
    rows = np.arange(n)
    nan = np.full(n, np.nan)
    if policy == "device":
        return Decision(np.zeros(n, np.int64), pt.a_dev, nan)
    if policy in ("edge", "cloud"):
        j_n = x.one_way_s.shape[1]
        n_e = j_n - 1
        if policy == "cloud":
            node = np.full(n, n_e)
        else:
            # serving-site MEC if up, else the up MEC nearest by transport, else the cloud
            ow = np.where(x.node_up[None, :n_e], x.one_way_s[:, :n_e], np.inf)
            ow[rows, x.serving_edge] = np.where(x.node_up[x.serving_edge], -1.0, np.inf)
            best = np.argmin(ow, axis=1)
            node = np.where(np.isfinite(ow[rows, best]), best, n_e)
        # the earliest allowed upload (split index 0) where it may leave, else the device
        after = _after_at(pt, x, node)[:, 0]
        ok = pt.valid_rem[:, 0] & np.isfinite(after)
        col = np.where(ok, _column(opt, np.zeros(n, np.int64), node), 0)
        est = np.where(ok, pt.start[:, 0] + after, pt.a_dev)
        return Decision(col, est, nan)
    if policy == "neurosurgeon":
        # serving-site MEC only, one measured bandwidth, minimum estimated latency
        se = x.serving_edge
        est = pt.start + _after_at(pt, x, se) + pt.bits / np.maximum(x.mean_bps, 1e3)[:, None]
        est[~pt.valid_rem] = np.inf
        i = np.argmin(est, axis=1)
        e_rem = est[rows, i]
        dev = ~np.isfinite(e_rem) | (pt.valid_dev & (pt.a_dev <= e_rem))
        col = np.where(dev, 0, _column(opt, i, se))
        return Decision(col, np.where(dev, pt.a_dev, e_rem), nan)
    return _radio_aware(opt, x, pt)


def _radio_aware(opt: OptionTable, x: DecisionInputs, pt: _Parts) -> Decision:
    """Chance-constrained choice: the best on-time probability first, then the latency tail, then
    energy (module docstring, "radio_aware")."""
    n = len(x.cls)
    rows = np.arange(n)
    d = x.deadline_s
    if x.dl_level_bps is not None:
        # the result comes back over the predicted downlink level, not over the recent mean (a
        # handover interruption in the mean says nothing of the downlink a few ms from now)
        res_bits = opt.result_bytes[x.cls] * 8.0
        delta = res_bits / np.maximum(x.dl_level_bps, 1e3) - pt.after_fixed
        pt.a_rem += delta[:, None]
    slack = d[:, None] - pt.a_rem
    # The law is for the rate of one interval; a transfer over n intervals sees their mean, a
    # sum of log-normals: Fenton-Wilkinson (IRE Trans. Commun. Syst. 1960) matches it with a
    # log-normal of the same mean, sigma_n^2 = ln(1 + (e^{sigma^2} - 1) / n) (independent
    # intervals), mu_n = mu + (sigma^2 - sigma_n^2) / 2.
    mu0 = x.mu[:, None]
    var0 = (x.sigma**2)[:, None]
    b_med = pt.bits * np.exp(-mu0)  # transfer time at the median rate of one interval
    if x.rate_interval_s is not None:
        g = np.maximum(b_med / x.rate_interval_s, 1.0)  # n intervals
        np.divide(np.expm1(np.minimum(var0, 50.0)), g, out=g)
        g += 1.0  # exp(sigma_n^2)
        var = np.log(g)
        mu = mu0 + 0.5 * (var0 - var)
        sig = np.sqrt(var)
        # transfer time: mean E[1/R] = exp(sigma_n^2 / 2 - mu_n) for a log-normal R, and the
        # TAIL_Q quantile exp(z_q sigma_n - mu_n) of the good state, from exp(-mu_n) =
        # exp(-mu) exp(-sigma^2 / 2) exp(sigma_n^2 / 2)
        b_med *= np.exp(-0.5 * var0)
        tx_mean = b_med * g
        tx_tail = b_med * np.exp(0.5 * var + Z_TAIL * sig)
    else:
        mu, sig = mu0, np.sqrt(var0)
        tx_mean = b_med * np.exp(0.5 * var0)
        tx_tail = b_med * np.exp(Z_TAIL * sig)
    # z = (mu - ln(B / slack)) / sigma, for remote options with time left
    live = pt.valid_rem & (slack > 0)
    z = np.log(np.where(live, slack, 1.0))
    z -= pt.log_bits
    z += mu
    z /= sig
    # Phi(z) where it is not 0 or 1 to double precision (the normal CDF is the costly ufunc)
    p = (z > 0).astype(np.float64)
    mid = np.abs(z) < 9.0
    p[mid] = ndtr(z[mid])
    p *= live
    p *= (1.0 - x.p_out)[:, None]
    if x.ho_rate_hz is not None:
        # no handover interruption during the transfer (Poisson handovers), first order
        p_ho = np.minimum(tx_mean * x.ho_rate_hz[:, None], 1.0)
        p *= 1.0 - p_ho
        p_bad = p_ho + x.p_out[:, None]  # outage or handover in the transfer (union bound)
    else:
        p_bad = np.broadcast_to(x.p_out[:, None], p.shape)
    # the TAIL_Q quantile falls into the bad state when that state is likelier than 1 - TAIL_Q:
    # then it waits out the expected rest of an outage (or one interval, a handover interruption)
    q_bad = 1.0 - TAIL_Q
    stall_out = x.outage_left_s if x.outage_left_s is not None else np.zeros(n)
    stall = np.where(x.p_out > q_bad, stall_out, x.rate_interval_s or 0.0)
    p = np.where(pt.valid_rem, p, -1.0)
    p_dev = np.where(pt.valid_dev, (pt.a_dev <= d).astype(np.float64), -1.0)
    # 1. eligibility on the on-time probability (chance constraint)
    cal = x.calibration
    if cal is None:
        p_star = p_dev.copy()
        for j in range(p.shape[1]):  # short axis: a running maximum beats a reduction
            np.maximum(p_star, p[:, j], out=p_star)
        floor = np.where(p_star >= P_REAL, np.maximum(p_star - P_TIE, P_REAL), -0.5)
        floor_rem = floor
    else:
        # recalibrated: the map is monotone in the raw P of one task's remote options, so only
        # the best one's raw P matters ([N] work, not [N, S])
        p_rem = np.full(n, -1.0)
        for j in range(p.shape[1]):
            np.maximum(p_rem, p[:, j], out=p_rem)
        off = 2.0 * x.cls
        if P_TIE == 0.0:
            # the device's P is 1, 0 or -1: "a real chance" is a raw P at or above a per-class
            # constant, and the eligible remote options are those at the best one's raw P (or,
            # when the device is certain, those whose calibrated P is 1 too): no map evaluated
            real = (p_dev >= P_REAL) | (p_rem >= cal.raw_real[x.cls])
            dev_sure = p_dev >= 1.0
            floor_rem = np.where(real, np.where(dev_sure, cal.raw_one[x.cls], p_rem), -0.5)
            floor = np.where(real, np.where(dev_sure, 1.0, 2.0), -0.5)  # the device's test
        else:
            # the floor in calibrated P, mapped back to raw P
            p_rem_cal = np.where(p_rem < 0.0, p_rem, cal.forward(p_rem, off))
            p_star = np.maximum(p_dev, p_rem_cal)
            floor = np.where(p_star >= P_REAL, np.maximum(p_star - P_TIE, P_REAL), -0.5)
            floor_rem = cal.inverse(floor, off)
            np.minimum(floor_rem, p_rem, out=floor_rem)  # the best remote option stays eligible
            floor_rem[p_rem_cal < floor] = 2.0  # no remote option is
            np.copyto(floor_rem, floor, where=floor < 0.0)  # no real chance anywhere: all are
    # 2. among the eligible: the latency tail in deadlines + energy (battery-weighted, per
    # device-only energy)
    w = ENERGY_WEIGHT * np.where(x.soc < LOW_BATTERY, LOW_BATTERY / np.maximum(x.soc, 0.02), 1.0)
    w_e = w / np.maximum(pt.t_dev * x.dev_power_w, 1e-9)
    inv_d = 1.0 / d
    cost = pt.a_rem + tx_tail
    cost += (p_bad > q_bad) * stall[:, None]
    cost *= inv_d[:, None]
    cost += pt.t_pre * (x.dev_power_w * w_e)[:, None]
    cost += tx_mean * (x.tx_power_w * w_e)[:, None]
    cost = np.where(p >= floor_rem[:, None], cost, np.inf)
    i = np.argmin(cost, axis=1)
    c_rem = cost[rows, i]
    c_dev = np.where(p_dev >= floor, pt.a_dev * inv_d + w, np.inf)
    use_dev = (c_dev <= c_rem) | ~np.isfinite(c_rem)
    node = pt.node_best[rows, i]
    col = np.where(use_dev, 0, _column(opt, i, node))
    # the policy's own estimate: the expected latency of the chosen option
    lat = pt.a_rem[rows, i] + tx_mean[rows, i]
    if x.outage_left_s is not None:
        lat += x.p_out * x.outage_left_s
    est = np.where(use_dev, pt.a_dev, lat)
    p_best = np.maximum(np.where(use_dev, p_dev, p[rows, i]), 0.0)
    if cal is None:
        return Decision(col, est, p_best)
    p_cal = np.where(use_dev, p_best, cal.forward(p_best, off))
    return Decision(col, est, p_cal, p_best)


def device_params(classes: tuple[str, ...], kind: np.ndarray) -> dict[str, np.ndarray]:
    """Per-UE device constants the decisions use."""

    def col(name: str) -> np.ndarray:
        return np.array([getattr(DEVICE_CLASSES[c], name) for c in classes])[kind]

    return {
        "flops": col("flops_per_s"),
        "memory_bytes": col("memory_gb") * 1e9,
        "power_w": col("compute_power_w"),
        "tx_power_w": col("tx_power_w"),
    }
