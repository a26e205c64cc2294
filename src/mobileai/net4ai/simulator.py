"""Run an AI workload over the twin's radio: record per-UE radio state, then play every task.

1. :func:`record_radio` steps the twin and keeps, for the UEs that run AI tasks, the available
   uplink and downlink rate per 100 ms step (:func:`~mobileai.net4ai.uplink.available_rate_bps`)
   and the serving site. A real-trace variant (:func:`~mobileai.net4ai.uplink.replay_uplinks`)
   swaps in measured uplink series.
2. :func:`simulate` plays the workload for one policy over that record. Per step: MEC queues,
   background load and failures advance; the predictor sees the finished step only (the rate left
   to the AI tensors after the UE's higher-priority side flows, and whether the UE handed over);
   tasks that arrived in the step are decided in one vectorised call (each task draws its radio
   access delays whatever the policy does with it: common random numbers, so every policy sees
   the same delays for the same task); their outcome is realised on
   the *recorded future* of their UE's radio (the uplink transfer integrates the per-step rate,
   FIFO per UE behind its earlier uploads; a raw upload starts at arrival, one after device
   blocks when the device has run them; the result integrates the recorded downlink the same
   way), node queues (pooled FIFO work backlog) and device state (queue, thermal throttling,
   battery). A task whose node is down at any step from its dispatch to its end is lost
   (:func:`_mec_failures`): a failed MEC loses what it holds. The radio-aware policy also
   re-checks its tasks in flight each step (service continuity, :func:`_continuity_check`):
   a task whose MEC failed is re-sent to the up node that finishes it first or finished on the
   device (application mobility, ETSI GS MEC 021); an upload that crossed a handover or whose
   rate fell below half of plan (an outage included) and now misses its deadline is abandoned
   for the device if the device finishes earlier and in time; a split task's device runs only
   the blocks after the split. The radio-aware policy's on-time probability is recalibrated
   online (:class:`OutcomeFeedback`, :class:`~mobileai.net4ai.offload.OnTimeCalibration`): a
   remote task's outcome is handed to the calibration at the first step at which it is known (its
   result is back, or its deadline passed without it), never earlier; ``recalibrate=False``
   turns it off.
   What every policy is told of its UE's uplink queue is what the UE knows at the task's arrival
   (:class:`_UplinkQueue`): the bits still in its buffer (the queued uploads' bits less what the
   radio carried up to the arrival) at the predicted mean rate; when the upload really starts is
   played on the realised queue (the recorded future), which no policy reads.

Simplifications (wave 1): the AI tasks' own uplink bits are not fed back into the twin's
scheduler (the rate estimate treats them as an extra PF user instead); a task's server work
joins the node backlog at decision time; device speed is the one at decision time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from mobileai.compute.nodes import ComputeLayer, DeviceFleet
from mobileai.compute.profiles import load_profile, reference_cpu_flops_per_s
from mobileai.compute.workloads import ArrivalProcess, Workload
from mobileai.net4ai.offload import (
    DL_ACCESS_S,
    UL_ACCESS_S,
    DecisionInputs,
    OnTimeCalibration,
    OptionTable,
    build_options,
    decide,
    device_params,
)
from mobileai.net4ai.qos import FIVE_QI, MODALITY_5QI
from mobileai.net4ai.uplink import UplinkPredictor, available_rate_bps

#: Steps of radio history recorded before the first task (predictor warm-up).
WARMUP_STEPS = 20
#: The radio-aware policy recalibrates its on-time probability online from the outcomes of its
#: earlier remote tasks (:class:`~mobileai.net4ai.offload.OnTimeCalibration`, fed by
#: :class:`OutcomeFeedback`); ``simulate(recalibrate=False)`` or this flag turns it off.
RECALIBRATE = True
#: Seconds of simulated time between refits of the recalibration map.
RECALIBRATE_EVERY_S = 1.0
#: Memory of the recalibration's outcome counts, s (half-life; inf: the whole run so far).
RECALIBRATE_HALF_LIFE_S = 30.0


@dataclass
class RadioRecord:
    """Per-step radio state of the AI UEs: rates [T, U] bit/s, serving site [T, U]."""

    dt: float
    ul_bps: np.ndarray
    dl_bps: np.ndarray
    site: np.ndarray
    site_x: np.ndarray
    site_y: np.ndarray
    ue_ids: np.ndarray  # twin UE index of each column
    source: str = "twin"

    @property
    def steps(self) -> int:
        return self.ul_bps.shape[0]

    def with_uplink(self, ul_bps: np.ndarray, source: str) -> RadioRecord:
        if ul_bps.shape != self.ul_bps.shape:
            raise ValueError(f"uplink series must be {self.ul_bps.shape} (got {ul_bps.shape})")
        return RadioRecord(
            self.dt, ul_bps, self.dl_bps, self.site, self.site_x, self.site_y, self.ue_ids, source
        )


@dataclass
class Members:
    """Which twin UEs run which class: column in the radio record, class, device kind."""

    col: np.ndarray
    cls: np.ndarray
    device_classes: tuple[str, ...]
    kind: np.ndarray
    speed_kmh: np.ndarray | None = None  # [U] the UE's speed class (None: unknown, all static)


def assign_members(
    workload: Workload,
    service: np.ndarray,
    service_names: tuple[str, ...],
    speed_kmh: np.ndarray | None = None,
) -> tuple[np.ndarray, Members]:
    """Pick the twin UEs of every class (seeded); returns (twin UE ids, members).

    ``speed_kmh`` [all UEs]: the twin's speed per UE (``twin.mobility.speed`` x 3.6), needed by
    classes with ``ue_min_speed_kmh``."""
    rng = np.random.default_rng(workload.seed)
    taken = np.zeros(len(service), bool)
    speed = np.zeros(len(service)) if speed_kmh is None else np.asarray(speed_kmh, np.float64)
    ids, cls = [], []
    for c, tc in enumerate(workload.classes):
        fast = speed >= tc.ue_min_speed_kmh - 0.01  # float32 speeds in the twin
        pool = np.flatnonzero(
            np.isin(service, [service_names.index(s) for s in tc.ue_services]) & ~taken & fast
        )
        pick = rng.permutation(pool)[: round(tc.ue_share * len(pool))]
        taken[pick] = True
        ids.append(pick)
        cls.append(np.full(len(pick), c))
    ue_ids = np.concatenate(ids).astype(np.int64)
    devs = tuple(sorted({tc.device for tc in workload.classes}))
    cls_arr = np.concatenate(cls).astype(np.int64)
    kind = np.array([devs.index(workload.classes[c].device) for c in cls_arr], dtype=np.int64)
    return ue_ids, Members(np.arange(len(ue_ids)), cls_arr, devs, kind, speed[ue_ids])


def record_radio(
    twin,
    ue_ids: np.ndarray,
    steps: int,
    on_step: Callable[[int, dict[str, np.ndarray]], None] | None = None,
) -> RadioRecord:
    """Step ``twin`` ``steps`` times and record the AI UEs' radio state; ``on_step(k, links)``
    sees each step's ``twin.ue_links()`` (meters, network actions such as the TDD controller)."""
    ul = np.zeros((steps, len(ue_ids)))
    dl = np.zeros((steps, len(ue_ids)))
    site = np.zeros((steps, len(ue_ids)), np.int64)
    cell_site = (
        twin.cells.site.cpu().numpy() if hasattr(twin.cells.site, "cpu") else np.asarray(twin.cells.site)
    )
    for k in range(steps):
        twin.step()
        links = twin.ue_links()
        ul[k] = available_rate_bps(links, twin.n_cells, "ul")[ue_ids]
        dl[k] = available_rate_bps(links, twin.n_cells, "dl")[ue_ids]
        site[k] = cell_site[links["serving"][ue_ids]]
        if on_step is not None:
            on_step(k, links)
    cx = twin.cells.x.cpu().numpy() if hasattr(twin.cells.x, "cpu") else np.asarray(twin.cells.x)
    cy = twin.cells.y.cpu().numpy() if hasattr(twin.cells.y, "cpu") else np.asarray(twin.cells.y)
    n_sites = int(cell_site.max()) + 1
    sx = np.array([cx[cell_site == s].mean() for s in range(n_sites)])
    sy = np.array([cy[cell_site == s].mean() for s in range(n_sites)])
    return RadioRecord(twin.dt, ul, dl, site, sx, sy, np.asarray(ue_ids))


class _Uplinks:
    """Cumulative-bits curves of every UE, flattened so one searchsorted finds transfer ends."""

    def __init__(self, rate_bps: np.ndarray, dt: float) -> None:
        t, u = rate_bps.shape
        self.dt, self.t_steps, self.u = dt, t, u
        self.rate = rate_bps
        cum = np.zeros((t + 1, u))
        np.cumsum(rate_bps * dt, axis=0, out=cum[1:])
        self.cum = cum
        self.big = float(cum[-1].max()) * 2.0 + 1e6
        self.flat = (cum.T + (np.arange(u) * self.big)[:, None]).ravel()

    def bits_at(self, ue: np.ndarray, t: np.ndarray) -> np.ndarray:
        j = np.clip((t / self.dt).astype(np.int64), 0, self.t_steps - 1)
        return self.cum[j, ue] + self.rate[j, ue] * np.clip(t - j * self.dt, 0.0, self.dt)

    def finish(self, ue: np.ndarray, t0: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """Time at which ``bits`` sent from ``t0`` are through (inf if not within the record)."""
        target = self.bits_at(ue, t0) + bits
        pos = np.searchsorted(self.flat, target + ue * self.big, side="left")
        j = pos - ue * (self.t_steps + 1)  # index into cum of the UE
        ok = (j >= 1) & (j <= self.t_steps)
        jj = np.clip(j - 1, 0, self.t_steps - 1)
        r = self.rate[jj, ue]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = jj * self.dt + (target - self.cum[jj, ue]) / r
        t = np.maximum(t, t0)
        return np.where(ok & (bits > 0), t, np.where(bits > 0, np.inf, t0))


class _UplinkQueue:
    """The uploads every UE has queued or is sending (FIFO on its uplink): what the UE itself
    knows of them at a time ``t`` is how many of their bits are still in its buffer (those the
    realised radio has not carried by ``t``), never when the rest will be through.

    An upload that never starts within the record (queued behind one that never ends) only adds
    its bits to its UE's sum, so that the per-step work stays with the uploads that may move."""

    def __init__(self) -> None:
        self.id = np.zeros(0, np.int64)
        self.ue = np.zeros(0, np.int64)
        self.start = np.zeros(0)  # when the upload starts (or started) sending
        self.end = np.zeros(0)  # realised end (only to forget uploads that are through)
        self.bits = np.zeros(0)
        self.stuck_id = np.zeros(0, np.int64)
        self.stuck_ue = np.zeros(0, np.int64)
        self.stuck_bits = np.zeros(0)
        self.stuck_sum = np.zeros(0)  # [UE] bits of the uploads that never start

    def _keep(self, keep: np.ndarray) -> None:
        self.id, self.ue, self.start = self.id[keep], self.ue[keep], self.start[keep]
        self.end, self.bits = self.end[keep], self.bits[keep]

    def add(self, ids, ue, start, end, bits, replace: bool = False) -> None:
        """Queue uploads; ``replace``: an upload queued under the same id is replaced (re-sent)."""
        if replace:
            self.drop(ids)
        go = np.isfinite(start)
        self.id = np.concatenate((self.id, ids[go]))
        self.ue = np.concatenate((self.ue, ue[go]))
        self.start = np.concatenate((self.start, start[go]))
        self.end = np.concatenate((self.end, end[go]))
        self.bits = np.concatenate((self.bits, bits[go]))
        if (~go).any():
            self.stuck_id = np.concatenate((self.stuck_id, ids[~go]))
            self.stuck_ue = np.concatenate((self.stuck_ue, ue[~go]))
            self.stuck_bits = np.concatenate((self.stuck_bits, bits[~go]))
            n = max(len(self.stuck_sum), int(ue[~go].max()) + 1)
            self.stuck_sum = np.concatenate((self.stuck_sum, np.zeros(n - len(self.stuck_sum))))
            np.add.at(self.stuck_sum, ue[~go], bits[~go])

    def drop(self, ids: np.ndarray) -> None:
        """Forget abandoned uploads (the radio stopped sending them)."""
        self._keep(~np.isin(self.id, ids))
        if len(self.stuck_id):
            gone = np.isin(self.stuck_id, ids)
            if gone.any():
                np.subtract.at(self.stuck_sum, self.stuck_ue[gone], self.stuck_bits[gone])
                self.stuck_id = self.stuck_id[~gone]
                self.stuck_ue, self.stuck_bits = self.stuck_ue[~gone], self.stuck_bits[~gone]

    def prune(self, now: float) -> None:
        """Forget the uploads through by ``now`` (the UE knows: its buffer emptied)."""
        self._keep(self.end > now)

    def queued_bits(self, uplinks: _Uplinks, ue: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Bits of UE ``ue[i]``'s uploads still in its buffer at ``t[i]``: the uploads' bits less
        what the realised radio carried from their start to ``t[i]`` (none before the start);
        reads the radio before ``t[i]`` only."""
        n_ue = max(int(ue.max(initial=-1)) + 1, len(self.stuck_sum))
        total = np.bincount(self.ue, weights=self.bits, minlength=n_ue).astype(np.float64)
        total[: len(self.stuck_sum)] += self.stuck_sum
        out = total[ue]
        if len(ue) == 0:
            return out
        # the uploads sending by the latest arrival: at most one per UE (FIFO)
        near = np.flatnonzero(self.start < t.max())
        if len(near) == 0:
            return out
        order = near[np.argsort(self.ue[near], kind="stable")]
        su = self.ue[order]
        lo = np.searchsorted(su, ue, side="left")
        cnt = np.searchsorted(su, ue, side="right") - lo
        task = np.repeat(np.arange(len(ue)), cnt)  # one row per (task, upload of its UE)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        q = order[np.repeat(lo, cnt) + np.arange(len(task)) - first]
        tq, uq, s0, b = t[task], self.ue[q], self.start[q], self.bits[q]
        started = s0 < tq
        sent = uplinks.bits_at(uq, tq) - uplinks.bits_at(uq, np.where(started, s0, tq))
        carried = np.where(started, np.clip(sent, 0.0, b), 0.0)
        return np.maximum(out - np.bincount(task, weights=carried, minlength=len(ue)), 0.0)


@dataclass
class Outcomes:
    """One row per task (numpy columns) and run-level facts."""

    columns: dict[str, np.ndarray]
    decision_s: list[float] = field(default_factory=list)
    decision_batch: list[int] = field(default_factory=list)
    tensor_bits: np.ndarray | None = None  # [T, U] AI tensor bits offered per step
    node_busy_s: np.ndarray | None = None


def simulate(
    workload: Workload,
    members: Members,
    radio: RadioRecord,
    policy: str,
    seed: int = 0,
    continuity: bool | None = None,
    recalibrate: bool | None = None,
) -> Outcomes:
    """Play ``workload`` for ``policy`` over ``radio`` (see the module docstring).

    ``recalibrate`` (radio-aware only; default :data:`RECALIBRATE`): map the policy's on-time
    probability through a calibration refitted every :data:`RECALIBRATE_EVERY_S` from the outcomes
    of its remote tasks known at decision time (per run, i.e. per uplink source, and per class)."""
    rng = np.random.default_rng(seed)
    dt, t_steps, n_ue = radio.dt, radio.steps, len(members.col)
    classes = workload.classes
    compute = ComputeLayer.over_sites(workload.edge, radio.site_x, radio.site_y, seed + 1)
    opt: OptionTable = build_options(list(classes), compute.n_nodes)
    fleet = DeviceFleet.create(members.kind, members.device_classes, np.random.default_rng(seed + 2))
    dev = device_params(members.device_classes, members.kind)
    ref = reference_cpu_flops_per_s()
    continuity = (policy == "radio_aware") if continuity is None else continuity
    recalibrate = RECALIBRATE if recalibrate is None else recalibrate
    calib = OnTimeCalibration(len(classes)) if recalibrate and policy == "radio_aware" else None
    feedback = OutcomeFeedback()
    refit_every = max(1, round(RECALIBRATE_EVERY_S / dt))
    # side flows above the tensors' priority take their rate first (qos.py strict priority)
    tensor_prio = FIVE_QI[MODALITY_5QI["tensors"]].priority
    side = np.zeros(n_ue)
    for c, tc in enumerate(classes):
        hp = sum(
            getattr(tc.flows, f"{m}_bps")
            for m in ("control", "audio", "video")
            if FIVE_QI[MODALITY_5QI[m]].priority < tensor_prio
        )
        side[members.cls == c] = hp
    ul_eff = np.maximum(radio.ul_bps - side[None, :], 0.0)
    uplinks = _Uplinks(ul_eff, dt)
    # results come back over the recorded downlink future (a result due in a handover
    # interruption waits for the downlink to return, as an upload does)
    downlinks = _Uplinks(radio.dl_bps, dt)
    pred = UplinkPredictor(n_ue, dt)
    # the downlink the results come back on: its recent mean (one number, every policy) and its
    # in-service level (ours); the last sample alone would be 0 right after an interruption
    pred_dl = UplinkPredictor(n_ue, dt)
    procs = [
        ArrivalProcess(tc.arrival, int((members.cls == c).sum()), np.random.default_rng([seed, c]))
        for c, tc in enumerate(classes)
    ]
    class_cols = [np.flatnonzero(members.cls == c) for c in range(len(classes))]
    profiles = [load_profile(tc.model) for tc in classes]
    full_dev_cpu = np.array([p.cpu_s.sum() for p in profiles])
    deadline = np.array([tc.deadline_ms / 1e3 for tc in classes])
    dev_free = np.zeros(n_ue)
    ul_free = np.zeros(n_ue)
    ul_last = np.full(n_ue, -1, np.int64)  # row of each UE's last upload (-1: none yet)
    # what the policies are told of the uplink queue: the bits still buffered (ul_free, the
    # realised end, integrates the radio's future and only plays the tasks)
    ul_queue = _UplinkQueue()
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "cls",
            "ue",
            "t_arrival",
            "option",
            "split",
            "node",
            "done",
            "up_bytes",
            "dev_energy_j",
            "ul_s",
            "compute_s",
            "server_s",
            "net_delay_s",
            "lost",
            "fell_back",
            "p_meet",
            "p_raw",
            "est_s",
            "k_from",
            "migrated",
        )
    }
    out = Outcomes({})
    tensor_bits = np.zeros((t_steps, n_ue))
    # in-flight uploads of the continuity check (task ids into the concatenated rows)
    live: dict[str, np.ndarray] = {}
    flight = _Flight(
        radio,
        uplinks,
        downlinks,
        pred,
        pred_dl,
        dev_free,
        ul_free,
        ul_last,
        fleet,
        dev,
        ref,
        compute,
        opt,
        ul_queue,
    )
    node_down = np.zeros((t_steps, compute.n_nodes), bool)  # a MEC's outages, per step
    rows_so_far = 0
    prev_site = radio.site[0].copy()
    for k in range(t_steps):
        now = k * dt
        compute.step(now, dt)
        node_down[k] = ~compute.up
        handover = radio.site[k - 1] != prev_site if k > 0 else np.zeros(n_ue, bool)
        if k > 0:
            # the predictor (ours and the single-bandwidth baseline alike) measures the rate left
            # to the AI tensors after the UE's higher-priority side flows
            pred.update(ul_eff[k - 1], handover=handover)
            pred_dl.update(radio.dl_bps[k - 1], handover=handover)
        if k > 0:
            prev_site = radio.site[k - 1]
        if k < WARMUP_STEPS:
            continue
        # ---- arrivals of this step
        parts = []
        for c, proc in enumerate(procs):
            i, t = proc.step(now, dt)
            parts.append((class_cols[c][i], t, np.full(len(i), c)))
        ue = np.concatenate([p[0] for p in parts]).astype(np.int64)
        t_arr = np.concatenate([p[1] for p in parts])
        cls = np.concatenate([p[2] for p in parts]).astype(np.int64)
        # ---- service continuity for uploads in progress (radio-aware only)
        compute_s_step = np.zeros(n_ue)
        tx_s_step = np.zeros(n_ue)
        if continuity and live:
            _continuity_check(flight, live, cols, now, k, compute_s_step, tx_s_step)
        if calib is not None:
            # outcomes known now (a result back, or a deadline passed without one) feed the map
            c_done, p_done, met_done, _ = feedback.take(now, cols)
            calib.decay(0.5 ** (dt / RECALIBRATE_HALF_LIFE_S))
            calib.observe(c_done, p_done, met_done)
            if k % refit_every == 0:
                calib.refit()
        if len(ue) == 0:
            fleet.spend(compute_s_step, tx_s_step, dt)
            continue
        # ---- decisions (one vectorised call, timed)
        speed = fleet.speed()
        p = pred.predict()
        p_dl = pred_dl.predict()
        site_now = radio.site[k - 1]
        # the uplink wait as the UE knows it at arrival: the bits still in its buffer (carried
        # by the radio so far) at the predicted rate, the same for every policy
        ul_queue.prune(now)
        wait_ul = ul_queue.queued_bits(uplinks, ue, t_arr) / np.maximum(p.mean_bps[ue], 1e3)
        x = DecisionInputs(
            cls=cls,
            deadline_s=deadline[cls],
            wait_dev_s=np.maximum(dev_free[ue] - t_arr, 0.0),
            dev_flops=dev["flops"][ue] * speed[ue],
            dev_memory_bytes=dev["memory_bytes"][ue],
            dev_power_w=dev["power_w"][ue],
            tx_power_w=dev["tx_power_w"][ue],
            soc=fleet.soc[ue],
            wait_ul_s=wait_ul,
            mu=p.mu[ue],
            sigma=p.sigma[ue],
            p_out=p.p_out[ue],
            mean_bps=p.mean_bps[ue],
            dl_bps=p_dl.mean_bps[ue],
            dl_level_bps=np.exp(p_dl.mu[ue]),
            one_way_s=compute.one_way_s(site_now[ue]),
            serving_edge=compute.site_edge[site_now[ue]],
            node_wait_s=compute.wait_s(),
            node_up=compute.up.copy(),
            node_flops=compute.flops_per_s,
            node_overhead_s=compute.block_overhead_s,
            transport_bps=compute.transport_gbps() * 1e9,
            ref_flops=ref,
            ho_rate_hz=p.ho_rate_hz[ue],
            outage_left_s=p.outage_left_s[ue],
            rate_interval_s=dt,
            calibration=calib,
        )
        t0 = time.perf_counter()
        dec = decide(policy, opt, x)
        out.decision_s.append(time.perf_counter() - t0)
        out.decision_batch.append(len(ue))
        col = dec.option
        split = opt.split[cls, col]
        node = opt.node[cls, col]
        remote = node >= 0
        bits = opt.up_bytes[cls, col] * 8.0 * remote
        dev_cpu = opt.dev_cpu_s[cls, col]
        # ---- realisation, in rounds so that tasks of one UE queue behind each other
        n = len(ue)
        done = np.zeros(n)
        ul_s = np.zeros(n)
        comp_s = np.zeros(n)
        srv_s = np.zeros(n)
        net_s = np.zeros(n)
        energy = np.zeros(n)
        lost = np.zeros(n, bool)
        tx_from = t_arr.copy()
        tx_until = t_arr.copy()  # end of the planned transmission (energy of an abandoned one)
        rank = _rank_within(ue)
        # common random numbers: every task draws its access delays whatever the policy does with
        # it, so that all policies see the same delays for the same task
        acc_ul = rng.exponential(UL_ACCESS_S, n)
        acc_dl = rng.exponential(DL_ACCESS_S, n)
        ids = rows_so_far + np.arange(n)
        rows_so_far += n
        for r in range(int(rank.max()) + 1):
            m = np.flatnonzero(rank == r)
            u = ue[m]
            d_t = dev_cpu[m] * ref / (dev["flops"][u] * speed[u])
            # only tasks with device blocks queue at the device; a raw upload (split 0) is ready
            # at arrival
            on_dev = d_t > 0
            start = np.where(on_dev, np.maximum(t_arr[m], dev_free[u]), t_arr[m])
            dev_end = start + d_t
            dev_free[u] = np.where(on_dev, dev_end, dev_free[u])
            comp_s[m] = d_t
            energy[m] = d_t * dev["power_w"][u]
            compute_s_step[u] += d_t
            rem = remote[m]
            done[m] = dev_end
            if not rem.any():
                continue
            mr, ur = m[rem], u[rem]
            access = acc_ul[mr]
            tx_start = np.maximum(dev_end[rem], ul_free[ur]) + access
            stuck = ~np.isfinite(tx_start)
            tx_end = np.full(len(mr), np.inf)
            tx_end[~stuck] = uplinks.finish(ur[~stuck], tx_start[~stuck], bits[mr][~stuck])
            tx_from[mr] = tx_start
            ul_free[ur] = np.where(np.isfinite(tx_end), tx_end, np.inf)  # stuck: busy to the end
            ul_last[ur] = ids[mr]
            ul_queue.add(ids[mr], ur, tx_start, tx_end, bits[mr])
            with np.errstate(invalid="ignore"):
                tx_busy = np.where(
                    np.isfinite(tx_end), tx_end - tx_start, np.maximum(t_steps * dt - tx_start, 0.0)
                )
            energy[mr] += tx_busy * dev["tx_power_w"][ur]
            tx_until[mr] = tx_start + tx_busy
            tx_s_step[ur] += tx_busy
            ul_s[mr] = tx_end - dev_end[rem]
            np.add.at(tensor_bits, (min(k, t_steps - 1), ur), bits[mr])
            j = node[mr]
            kk = np.clip((np.where(np.isfinite(tx_end), tx_end, 0) / dt).astype(np.int64), 0, t_steps - 1)
            ow_up = compute.one_way_s(radio.site[kk, ur])[np.arange(len(mr)), j]
            arrive = tx_end + ow_up + bits[mr] / (compute.transport_gbps()[j] * 1e9)
            srv_t = opt.srv_cpu_s[cls[mr], col[mr]] * ref / compute.flops_per_s[j] + (
                opt.srv_blocks[cls[mr], col[mr]] * compute.block_overhead_s[j]
            )
            # pooled FIFO: backlog now + earlier tasks of this round at the same node
            order = np.lexsort((arrive, j))
            work = srv_t[order]
            csum = np.cumsum(work)
            grp_start = np.searchsorted(j[order], j[order], side="left")
            before = csum - work - np.concatenate(([0.0], csum))[grp_start]
            cap = compute.servers[j[order]] * (1.0 - compute.background[j[order]])
            wait_o = np.maximum((compute.backlog_s[j[order]] + before) / cap - (arrive[order] - now), 0.0)
            wait = np.empty_like(wait_o)
            wait[order] = wait_o
            np.add.at(compute.backlog_s, j, srv_t)
            srv_end = arrive + wait + srv_t
            k2 = np.clip((np.where(np.isfinite(srv_end), srv_end, 0) / dt).astype(np.int64), 0, t_steps - 1)
            ow_dn = compute.one_way_s(radio.site[k2, ur])[np.arange(len(mr)), j]
            res_at = srv_end + ow_dn + acc_dl[mr]
            fin = np.full(len(mr), np.inf)
            ok = np.isfinite(res_at)
            fin[ok] = downlinks.finish(ur[ok], res_at[ok], opt.result_bytes[cls[mr][ok]] * 8.0)
            # a node that is down now, or fails before the task is through, loses it
            # (:func:`_mec_failures` after the run, from the node's outage steps)
            lost[mr] = ~np.isfinite(fin)
            done[mr] = fin
            srv_s[mr] = srv_t
            net_s[mr] = ow_up + ow_dn + wait
        fleet.spend(compute_s_step, tx_s_step, dt)
        for name, val in (
            ("cls", cls),
            ("ue", ue),
            ("t_arrival", t_arr),
            ("option", col),
            ("split", split),
            ("node", node),
            ("done", done),
            ("up_bytes", bits / 8.0),
            ("dev_energy_j", energy),
            ("ul_s", ul_s),
            ("compute_s", comp_s),
            ("server_s", srv_s),
            ("net_delay_s", net_s),
            ("lost", lost),
            ("fell_back", np.zeros(n, bool)),
            ("p_meet", dec.p_meet),
            ("p_raw", dec.p_meet if dec.p_raw is None else dec.p_raw),
            ("est_s", dec.est_latency_s),
            ("k_from", np.full(n, k)),
            ("migrated", np.zeros(n, bool)),
        ):
            cols[name].append(np.asarray(val))
        if calib is not None:
            feedback.add(ids[remote], cls[remote], dec.p_raw[remote], t_arr[remote] + deadline[cls[remote]])
        if continuity:
            keep = remote & ~lost
            _append_live(
                live,
                ids[keep],
                ue[keep],
                cls[keep],
                t_arr[keep] + deadline[cls[keep]],
                done[keep],
                tx_from[keep],
                tx_until[keep],
                bits[keep],
                np.exp(p.mu[ue[keep]]),
                site_now[ue[keep]],
                node[keep],
                col[keep],
                full_dev_cpu[cls[keep]] - dev_cpu[keep],
            )
    columns = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    _mec_failures(columns, node_down, dt)
    out.columns = _finish_columns(columns, workload, members, dt * t_steps)
    out.tensor_bits = tensor_bits
    out.node_busy_s = compute.busy_s.copy()
    return out


class OutcomeFeedback:
    """Remote tasks of the radio-aware policy whose outcome is not known yet, handed over once it
    is: at decision time ``now`` a task's outcome is known when its result is back (``done <=
    now``: met if ``done <= due``) or its deadline has passed without it (``due <= now``: missed).
    Either way the outcome is final: service continuity only rewrites tasks in flight, and never
    brings a task back by a deadline already past. Nothing later than ``now`` is read."""

    def __init__(self) -> None:
        self.ids = np.zeros(0, np.int64)
        self.cls = np.zeros(0, np.int64)
        self.p = np.zeros(0)
        self.due = np.zeros(0)

    def add(self, ids: np.ndarray, cls: np.ndarray, p_raw: np.ndarray, due: np.ndarray) -> None:
        self.ids = np.concatenate((self.ids, ids))
        self.cls = np.concatenate((self.cls, cls))
        self.p = np.concatenate((self.p, p_raw))
        self.due = np.concatenate((self.due, due))

    def take(self, now: float, cols: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, ...]:
        """(class, raw P, met, task id) of the tasks whose outcome is known at ``now``; they
        leave the pending set."""
        if len(self.ids) == 0:
            z = np.zeros(0)
            return z.astype(np.int64), z, z.astype(bool), z.astype(np.int64)
        done = _read_rows(cols, "done", self.ids)
        known = (done <= now) | (self.due <= now)
        met = done[known] <= self.due[known]
        out = (self.cls[known], self.p[known], met, self.ids[known])
        keep = ~known
        self.ids, self.cls, self.p, self.due = self.ids[keep], self.cls[keep], self.p[keep], self.due[keep]
        return out


def _chunk_rows(
    cols: dict[str, list[np.ndarray]], ids: np.ndarray
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Task rows ``ids`` by the per-step chunk they live in: (chunk, mask over ``ids``, offsets
    in the chunk) for every chunk that holds some of them."""
    sizes = np.fromiter((len(a) for a in cols["done"]), np.int64, len(cols["done"]))
    starts = np.concatenate(([0], np.cumsum(sizes)))
    chunk = np.searchsorted(starts, ids, side="right") - 1
    for c in np.unique(chunk):
        m = chunk == c
        yield int(c), m, ids[m] - starts[c]


def _read_rows(cols: dict[str, list[np.ndarray]], key: str, ids: np.ndarray) -> np.ndarray:
    """Current values of column ``key`` for task rows ``ids``."""
    out = np.empty(len(ids))
    for c, m, off in _chunk_rows(cols, ids):
        out[m] = cols[key][c][off]
    return out


def _rank_within(ue: np.ndarray) -> np.ndarray:
    """0 for a UE's first task in the batch, 1 for its second, ... (batch sorted by time)."""
    order = np.argsort(ue, kind="stable")
    su = ue[order]
    first = np.searchsorted(su, su, side="left")
    rank = np.empty(len(ue), np.int64)
    rank[order] = np.arange(len(ue)) - first
    return rank


def _append_live(
    live, ids, ue, cls, due, done, tx_from, tx_until, bits, rate_plan, site, node, option, dev_left
) -> None:
    new = {
        "id": ids,
        "ue": ue,
        "cls": cls,
        "due": due,
        "done": done,
        "tx_from": tx_from,
        "tx_until": tx_until,
        "bits": bits,
        "rate_plan": rate_plan,
        "site": site,
        "node": node,
        "option": option,
        "dev_left": dev_left,  # reference-CPU seconds of the blocks the device has not run
    }
    for key, v in new.items():
        live[key] = np.concatenate((live[key], v)) if key in live else v


@dataclass
class _Flight:
    """What the service-continuity check reads and moves: the radio record and its cumulative
    bits, the predictor, the UEs' device and uplink queues, the device fleet, the nodes."""

    radio: RadioRecord
    uplinks: _Uplinks
    downlinks: _Uplinks
    pred: UplinkPredictor
    pred_dl: UplinkPredictor
    dev_free: np.ndarray
    ul_free: np.ndarray
    ul_last: np.ndarray  # row of each UE's last upload: the uploads queue FIFO behind it
    fleet: DeviceFleet
    dev: dict[str, np.ndarray]
    ref: float
    compute: ComputeLayer
    opt: OptionTable
    #: the uploads queued or sending: what the policies are told of the uplink wait
    ul_queue: _UplinkQueue = field(default_factory=_UplinkQueue)


def _continuity_check(
    f: _Flight,
    live: dict[str, np.ndarray],
    cols: dict[str, list[np.ndarray]],
    now: float,
    k: int,
    compute_s_step: np.ndarray,
    tx_s_step: np.ndarray,
) -> None:
    """Service continuity for the tasks in flight (uploading, or queued/computing at a node).

    - The task's node failed (ETSI GS MEC 021 application mobility: the application instance is
      gone, so the context is re-established elsewhere): the UE still holds the task's data, so
      it is re-sent in full to the up node (another MEC or the cloud) that finishes it first by
      the predicted rate, or the device runs the blocks it has not run yet, whichever is
      predicted to end first.
    - The upload crossed a handover or its rate fell below half of plan (an outage included):
      it is abandoned for the device when it now misses the deadline and the device finishes
      earlier and in time (a late fallback only lengthens the device's queue). A split task's
      device runs only the blocks after the split (it has the features already).

    A handover alone does not move a task to the new site's MEC: the radio leg is the same, and
    the old MEC is 2 ms further one way (``other_edge_ms`` - ``local_edge_ms``), less than a
    re-upload costs; new tasks are decided from the new site.
    """
    alive = live["done"] > now
    for key in live:
        live[key] = live[key][alive]
    if len(live["id"]) == 0:
        return
    radio, uplinks, dev, compute = f.radio, f.uplinks, f.dev, f.compute
    ue = live["ue"]
    rate_now = uplinks.rate[k - 1, ue]
    moved = radio.site[k - 1, ue] != live["site"]
    degraded = rate_now < 0.5 * live["rate_plan"]  # includes an outage (rate 0)
    node_down = ~compute.up[live["node"]]
    check = moved | degraded | node_down
    if not check.any():
        return
    idx = np.flatnonzero(check)
    u = ue[idx]
    sent = np.maximum(
        uplinks.bits_at(u, np.full(len(idx), now)) - uplinks.bits_at(u, live["tx_from"][idx]), 0.0
    )
    remaining = np.maximum(live["bits"][idx] - sent, 0.0)
    uploading = remaining > 0
    p = f.pred.predict()
    rate = np.maximum(np.exp(p.mu[u]), 1e3)
    # in an outage now: the expected rest of it (Gilbert-Elliott) before the rate comes back; an
    # outage at a handover is the handover interruption, over within the step
    stall = np.where(rate_now[idx] < 1e3, np.where(moved[idx], radio.dt, p.outage_left_s[u]), 0.0)
    down = node_down[idx]
    remote_eta = np.where(down, np.inf, now + stall + remaining / rate + 0.01)
    speed = f.fleet.speed()[u]
    local_eta = np.maximum(now, f.dev_free[u]) + live["dev_left"][idx] * f.ref / (dev["flops"][u] * speed)
    deadline_at = live["due"][idx]
    alt_eta = np.full(len(idx), np.inf)
    alt_node = np.zeros(len(idx), np.int64)
    if down.any():
        d = np.flatnonzero(down)
        alt_eta[d], alt_node[d] = _redispatch_eta(f, live, idx[d], now + stall[d], rate[d], k)
    # the node is gone: whichever of device and re-dispatch ends first
    to_dev = down & (local_eta <= alt_eta)
    to_alt = down & ~to_dev
    # the upload degraded: fall back only if the device is earlier *and in time* (a fallback that
    # is late anyway only lengthens the device's queue for the tasks behind it)
    go = ~down & uploading & (remote_eta > deadline_at) & (local_eta < remote_eta)
    go &= local_eta <= deadline_at
    go |= to_dev
    if go.any():
        sel = idx[go]
        ug = ue[sel]
        t_dev = local_eta[go] - np.maximum(now, f.dev_free[ug])
        f.dev_free[ug] = local_eta[go]
        # the uplink is free from now only if no upload of the UE queues behind this one (a
        # later upload keeps its slot: freeing it would let the next task share its air time)
        last = f.ul_last[ug] == live["id"][sel]
        f.ul_free[ug] = np.where(last, np.minimum(f.ul_free[ug], now), f.ul_free[ug])
        f.ul_queue.drop(live["id"][sel])
        compute_s_step[ug] += t_dev
        # the device computes the task; the radio stops sending now (not at the planned end)
        unsent_tx = np.maximum(live["tx_until"][sel] - now, 0.0) * dev["tx_power_w"][ug]
        _patch(
            cols,
            live["id"][sel],
            done=local_eta[go],
            extra_energy=t_dev * dev["power_w"][ug] - unsent_tx,
            up_bytes=sent[go] / 8.0,
            node=np.full(len(sel), -1),
            k_from=k,
        )
        live["done"][sel] = now  # no longer in flight
    if to_alt.any():
        _redispatch(f, live, cols, idx[to_alt], alt_node[to_alt], sent[to_alt], now, k, tx_s_step)


def _server_after_upload(f: _Flight, live: dict, idx: np.ndarray, site: np.ndarray) -> np.ndarray:
    """[m, nodes] seconds from the upload's end to the result leaving the node, at each node, by
    the nodes' state now (transport both ways, queue, compute of the blocks after the split; the
    result's downlink is :func:`_result_s`); inf at a node that is down."""
    c, o = live["cls"][idx], live["option"][idx]
    compute, opt = f.compute, f.opt
    ow = compute.one_way_s(site)
    bits = live["bits"][idx][:, None]
    srv = opt.srv_cpu_s[c, o][:, None] * f.ref / compute.flops_per_s[None, :]
    srv = srv + opt.srv_blocks[c, o][:, None] * compute.block_overhead_s[None, :]
    wait = np.where(compute.up, compute.wait_s(), np.inf)[None, :]
    return 2.0 * ow + bits / (compute.transport_gbps() * 1e9)[None, :] + wait + srv


def _redispatch_eta(
    f: _Flight, live: dict, idx: np.ndarray, start: np.ndarray, rate: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted end and best node of re-sending tasks ``idx`` in full from ``start``."""
    u = live["ue"][idx]
    site = f.radio.site[k - 1, u]
    after = _server_after_upload(f, live, idx, site)
    after[np.arange(len(idx)), live["node"][idx]] = np.inf  # not the node that failed
    j = np.argmin(after, axis=1)
    tail = _result_s(f, live, idx, np.exp(f.pred_dl.predict().mu[u]))
    eta = start + UL_ACCESS_S + live["bits"][idx] / rate + after[np.arange(len(idx)), j] + tail
    return eta, j


def _result_s(f: _Flight, live: dict, idx: np.ndarray, dl_bps: np.ndarray) -> np.ndarray:
    """Result downlink time of tasks ``idx`` at downlink rate ``dl_bps``, s."""
    dl = np.maximum(dl_bps, 1e3)
    return f.opt.result_bytes[live["cls"][idx]] * 8.0 / dl + DL_ACCESS_S


def _redispatch(
    f: _Flight,
    live: dict,
    cols: dict,
    idx: np.ndarray,
    node: np.ndarray,
    sent: np.ndarray,
    now: float,
    k: int,
    tx_s_step: np.ndarray,
) -> None:
    """Re-send tasks ``idx`` in full to ``node`` and realise them on the recorded radio future."""
    u = live["ue"][idx]
    bits = live["bits"][idx]
    # behind the UE's uploads queued after this one (FIFO), else from now
    last = f.ul_last[u] == live["id"][idx]
    start = np.where(last, now, np.maximum(f.ul_free[u], now)) + UL_ACCESS_S
    tx_end = np.full(len(idx), np.inf)
    can = np.isfinite(start)  # not behind an upload that never ends within the record
    tx_end[can] = f.uplinks.finish(u[can], start[can], bits[can])
    fin_tx = np.isfinite(tx_end)
    busy = np.where(fin_tx, tx_end - start, np.maximum(f.radio.steps * f.radio.dt - start, 0.0))
    busy = np.where(can, busy, 0.0)
    tx_s_step[u] += np.minimum(busy, f.radio.dt)
    f.ul_free[u] = np.maximum(f.ul_free[u], np.where(fin_tx, tx_end, np.inf))
    f.ul_last[u] = live["id"][idx]
    f.ul_queue.add(live["id"][idx], u, start, tx_end, bits, replace=True)
    k_end = np.clip((np.where(fin_tx, tx_end, 0.0) / f.radio.dt).astype(np.int64), 0, f.radio.steps - 1)
    after = _server_after_upload(f, live, idx, f.radio.site[k_end, u])[np.arange(len(idx)), node]
    c, o = live["cls"][idx], live["option"][idx]
    srv_t = f.opt.srv_cpu_s[c, o] * f.ref / f.compute.flops_per_s[node] + (
        f.opt.srv_blocks[c, o] * f.compute.block_overhead_s[node]
    )
    np.add.at(f.compute.backlog_s, node, srv_t)
    srv_end = tx_end + after + DL_ACCESS_S
    done = np.full(len(idx), np.inf)
    ok = np.isfinite(srv_end)
    done[ok] = f.downlinks.finish(u[ok], srv_end[ok], f.opt.result_bytes[c[ok]] * 8.0)
    tx_w = f.dev["tx_power_w"][u]
    unsent_tx = np.maximum(live["tx_until"][idx] - now, 0.0) * tx_w
    _patch(
        cols,
        live["id"][idx],
        done=done,
        extra_energy=busy * tx_w - unsent_tx,
        up_bytes=(sent + bits) / 8.0,
        node=node,
        k_from=k,
    )
    live["done"][idx] = done
    live["node"][idx] = node
    live["site"][idx] = f.radio.site[k - 1, u]
    live["tx_from"][idx] = start
    live["tx_until"][idx] = np.where(fin_tx, tx_end, start + busy)


def _patch(
    cols: dict,
    ids: np.ndarray,
    done: np.ndarray,
    extra_energy: np.ndarray,
    up_bytes: np.ndarray,
    node: np.ndarray,
    k_from: int,
) -> None:
    """Rewrite rows of tasks in flight that fell back (``node`` -1) or moved to another node
    (rows live in per-step chunks)."""
    for c, m, off in _chunk_rows(cols, ids):
        cols["done"][c][off] = done[m]
        cols["dev_energy_j"][c][off] += extra_energy[m]
        cols["up_bytes"][c][off] = up_bytes[m]
        cols["fell_back"][c][off] |= node[m] < 0
        cols["migrated"][c][off] |= node[m] >= 0
        cols["lost"][c][off] = ~np.isfinite(done[m])
        cols["node"][c][off] = node[m]
        cols["k_from"][c][off] = k_from


def _mec_failures(c: dict[str, np.ndarray], node_down: np.ndarray, dt: float) -> None:
    """A task at a node that is down at any step from its dispatch (or re-dispatch) to its end is
    lost: a failed MEC loses what it holds (:meth:`ComputeLayer.step`), and only ours re-sends it
    (service continuity); every other policy's task never comes back."""
    if len(c["node"]) == 0:
        return
    steps = node_down.shape[0]
    cum = np.concatenate((np.zeros((1, node_down.shape[1])), np.cumsum(node_down, axis=0)))
    remote = np.flatnonzero(c["node"] >= 0)
    j = c["node"][remote].astype(np.int64)
    k0 = np.clip(c["k_from"][remote].astype(np.int64), 0, steps - 1)
    end = np.where(np.isfinite(c["done"][remote]), c["done"][remote], steps * dt)
    k1 = np.clip((end / dt).astype(np.int64), k0, steps - 1)
    hit = cum[k1 + 1, j] - cum[k0, j] > 0
    c["lost"][remote[hit]] = True


def _finish_columns(c: dict[str, np.ndarray], workload: Workload, members: Members, horizon_s: float) -> dict:
    cls = c["cls"].astype(np.int64)
    deadline = np.array([tc.deadline_ms / 1e3 for tc in workload.classes])[cls] if len(cls) else np.zeros(0)
    e2e = c["done"] - c["t_arrival"]
    delivered = ~c["lost"].astype(bool) & np.isfinite(c["done"]) & (c["done"] <= horizon_s)
    c["e2e_s"] = np.where(delivered, e2e, np.inf)
    c["deadline_s"] = deadline
    c["met"] = delivered & (e2e <= deadline)
    c["delivered"] = delivered
    return c
