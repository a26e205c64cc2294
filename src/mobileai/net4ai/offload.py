"""Placement and split decisions for AI tasks: device, edge (which MEC), cloud or a split point.

Each task class has a table of *options* (split point s, target node): s = n runs the whole model
on the device; s < n runs blocks [0, s) on the device, sends the output of block s - 1 (or the raw
input when s = 0) uplink, and runs the rest on a MEC or the cloud. Split points are pruned as in
Neurosurgeon (Kang et al., ASPLOS 2017): a later split is kept only if it sends strictly fewer
bytes than every earlier allowed one (otherwise it costs more device time for no radio gain).
Privacy (:class:`~mobileai.compute.workloads.TaskClass`) removes the options whose upload is not
allowed, for every policy, before any policy sees them.

The latency of option (s, j) for a task is ``a + B / R``: ``a`` sums the deterministic parts
(device queue and compute of blocks [0, s) at the device's current, possibly throttled, speed;
the UE's uplink queue; radio access delay; transport to node j and back; node j's queue and its
compute of blocks [s, n); the result's downlink), ``B`` is the upload in bits and ``R`` the UE's
uplink rate over the transfer.

Policies (all vectorised over tasks x options, no Python loop over tasks):

- ``device``, ``edge``, ``cloud``: static placement. ``edge`` sends the earliest allowed data
  (raw input, or the features at ``min_split``) to the UE's serving-site MEC (another up MEC if it
  is down), ``cloud`` to the cloud; both fall back to the device where nothing may leave.
- ``neurosurgeon``: Kang et al.: one measured bandwidth (the UE's recent mean uplink rate), the
  serving-site MEC, the node's current queue, minimum estimated latency.
- ``radio_aware`` (ours): the predicted rate *distribution* (log-normal with outage probability
  from :class:`~mobileai.net4ai.uplink.UplinkPredictor`), every MEC and the cloud, node queues,
  device speed (thermal throttling), memory and battery; it maximises the probability of meeting
  the deadline, P(a + B/R <= D) = (1 - p_out) x (1 - Phi((ln(B / (D - a)) - mu) / sigma)), and
  among near-equal options prefers lower device energy, weighted up when the battery is low. The
  simulator adds service continuity: uploads that degrade or cross a handover are re-decided
  and may fall back to the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from mobileai.compute.nodes import DEVICE_CLASSES
from mobileai.compute.profiles import ModelProfile, load_profile
from mobileai.compute.workloads import TaskClass

POLICIES = ("device", "edge", "cloud", "neurosurgeon", "radio_aware")

#: Mean uplink access delay (scheduling request + grant over a 2.5 ms DDDSU TDD period at 30 kHz
#: SCS: on average half a period of waiting, one period to the grant), s.
UL_ACCESS_S = 3.75e-3
#: Mean downlink delay of a small result (half a TDD period plus one slot), s.
DL_ACCESS_S = 1.75e-3
#: Energy weight of the radio-aware score (probability units per device-only energy).
ENERGY_WEIGHT = 0.02
#: Below this deadline probability for every option the radio-aware policy minimises latency.
HOPELESS = 0.05
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
    device_option: np.ndarray  # [C] column of the on-device option
    edge_option: np.ndarray  # [C, nodes] column of the static edge/cloud option per node (-1: none)

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
    p_out: np.ndarray
    mean_bps: np.ndarray  # single measured bandwidth (baseline)
    dl_bps: np.ndarray  # recent downlink rate for the result
    one_way_s: np.ndarray  # [N, nodes]
    serving_edge: np.ndarray  # MEC index of the serving site
    node_wait_s: np.ndarray  # [nodes]
    node_up: np.ndarray  # [nodes] bool
    node_flops: np.ndarray  # [nodes]
    node_overhead_s: np.ndarray  # [nodes]
    transport_bps: np.ndarray  # [nodes]
    ref_flops: float  # reference CPU FLOP/s of the profile


@dataclass
class Decision:
    option: np.ndarray  # [N] column in the option table
    est_latency_s: np.ndarray  # [N] the policy's own estimate
    p_meet: np.ndarray  # [N] radio-aware probability estimate (nan for other policies)


def _components(opt: OptionTable, x: DecisionInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per task x option: deterministic latency a [N, K], upload bits [N, K], device energy
    without radio [N, K], validity [N, K]."""
    c = x.cls
    node = opt.node[c]
    remote = node >= 0
    nj = np.where(remote, node, 0)
    dev_t = opt.dev_cpu_s[c] * x.ref_flops / x.dev_flops[:, None]
    srv_t = opt.srv_cpu_s[c] * x.ref_flops / x.node_flops[nj] + opt.srv_blocks[c] * x.node_overhead_s[nj]
    bits = opt.up_bytes[c] * 8.0 * remote
    ow = np.take_along_axis(x.one_way_s, nj, axis=1)
    res_bits = (opt.result_bytes[c] * 8.0)[:, None]
    net = (
        x.wait_ul_s[:, None]
        + UL_ACCESS_S
        + 2.0 * ow
        + bits / x.transport_bps[nj]
        + x.node_wait_s[nj]
        + srv_t
        + res_bits / np.maximum(x.dl_bps, 1e3)[:, None]
        + DL_ACCESS_S
    )
    a = x.wait_dev_s[:, None] + dev_t + np.where(remote, net, 0.0)
    valid = opt.valid[c] & (~remote | x.node_up[nj]) & (opt.dev_model_bytes[c] <= x.dev_memory_bytes[:, None])
    e_dev = dev_t * x.dev_power_w[:, None]
    return a, bits, e_dev, valid


def _first_valid(valid: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """preferred column where valid, else the first valid column."""
    rows = np.arange(len(preferred))
    ok = (preferred >= 0) & valid[rows, np.maximum(preferred, 0)]
    return np.where(ok, preferred, np.argmax(valid, axis=1))


def decide(policy: str, opt: OptionTable, x: DecisionInputs) -> Decision:
    """One decision per task (vectorised)."""
    n = len(x.cls)
    if n == 0:
        z = np.zeros(0)
        return Decision(np.zeros(0, np.int64), z, z)
    a, bits, e_dev, valid = _components(opt, x)
    rows = np.arange(n)
    nan = np.full(n, np.nan)
    dev_col = opt.device_option[x.cls]
    if policy == "device":
        return Decision(dev_col, a[rows, dev_col], nan)
    if policy in ("edge", "cloud"):
        if policy == "cloud":
            pref = opt.edge_option[x.cls, -1]
        else:
            n_e = x.one_way_s.shape[1] - 1
            # serving-site MEC if up, else the up MEC nearest by transport, else the cloud
            ow = np.where(x.node_up[None, :n_e], x.one_way_s[:, :n_e], np.inf)
            ow[rows, x.serving_edge] = np.where(x.node_up[x.serving_edge], -1.0, np.inf)
            best = np.argmin(ow, axis=1)
            best = np.where(np.isfinite(ow[rows, best]), best, n_e)
            pref = opt.edge_option[x.cls, best]
        col = _first_valid(valid, pref)
        col = np.where(pref >= 0, col, dev_col)
        return Decision(col, a[rows, col], nan)
    if policy == "neurosurgeon":
        node = opt.node[x.cls]
        own = (node < 0) | (node == x.serving_edge[:, None])
        est = a + bits / np.maximum(x.mean_bps, 1e3)[:, None]
        est = np.where(valid & own, est, np.inf)
        col = np.argmin(est, axis=1)
        col = np.where(np.isfinite(est[rows, col]), col, dev_col)
        return Decision(col, est[rows, col], nan)
    if policy == "radio_aware":
        d = x.deadline_s[:, None]
        slack = d - a
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.log(bits / slack)
            p_rate = (1.0 - x.p_out[:, None]) * (1.0 - ndtr((need - x.mu[:, None]) / x.sigma[:, None]))
        p = np.where(slack <= 0, 0.0, np.where(bits > 0, p_rate, 1.0))
        p = np.where(valid, p, -1.0)
        median_rate = np.exp(x.mu)[:, None]
        tx_t = bits / median_rate
        energy = e_dev + tx_t * x.tx_power_w[:, None]
        e_ref = np.maximum(e_dev[rows, dev_col], 1e-9)[:, None]
        w = ENERGY_WEIGHT * np.where(x.soc < LOW_BATTERY, LOW_BATTERY / np.maximum(x.soc, 0.02), 1.0)
        est = a + tx_t
        score = p - w[:, None] * energy / e_ref - 1e-3 * est / d
        col = np.argmax(np.where(valid, score, -np.inf), axis=1)
        # no option is likely to make it: finish as early as possible (least late)
        hopeless = p[rows, col] < HOPELESS
        if hopeless.any():
            fast = np.argmin(
                np.where(valid, est + np.where(bits > 0, bits / np.exp(x.mu)[:, None], 0), np.inf), axis=1
            )
            col = np.where(hopeless, fast, col)
        return Decision(col, est[rows, col], p[rows, col])
    raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")


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
