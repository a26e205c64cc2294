"""Compute nodes for Network-for-AI: devices, edge (MEC) and cloud, their queues and energy.

Latency of a block on a node follows Neurosurgeon (Kang et al., ASPLOS 2017): the block's latency
measured on a reference processor, scaled by the ratio of effective throughputs. Here the
reference is this machine's CPU (``reference_cpu_flops_per_s`` of the packaged profile) and each
node class has an *effective* batch-1 throughput (FLOP/s actually sustained on these models, not
the datasheet peak). The numbers are assumptions, each with its source (see ``docs/net4ai.md``):

- ``phone``: flagship NPU, ~1 TFLOP/s effective (MLPerf Mobile v4.0 single-stream latencies of
  ~0.5-1 ms for 1-2 GFLOP vision models on Snapdragon 8 Gen 3 class NPUs), 4 W while busy.
- ``glasses``: AR glasses SoC in a ~1 W envelope (Snapdragon AR1 Gen 1 class), 50 GFLOP/s
  effective, 1.0 W; skin-contact thermal limit 40 degC.
- ``robot``: low-cost service robot / drone on an embedded CPU (Raspberry Pi 5 class, 4x Cortex-A76:
  ResNet-50, 8 GFLOP, in ~0.2 s), 40 GFLOP/s effective, 6 W.
- ``vehicle``: automotive SoC (NVIDIA Orin AGX: MLPerf Inference Edge v3.1 ResNet-50 single-stream
  ~0.64 ms), 10 TFLOP/s effective, 40 W.
- edge: NVIDIA L4 GPUs at a MEC site (121 TFLOP/s dense FP16 tensor peak), 30 TFLOP/s effective at
  batch 1, 72 W board power, 20 us launch overhead per block.
- cloud: NVIDIA H100 (990 TFLOP/s dense FP16 peak), 100 TFLOP/s effective at batch 1, 350 W.

Transport: RAN site to the MEC at its aggregation point 1 ms one way, to another MEC 3 ms, to a
regional cloud 15 ms (ETSI White Paper 28, "MEC in 5G networks", 2018, places MEC at the
aggregation point to keep transport within a few ms; public-cloud RTTs of 20-40 ms from European
mobile vantage points in Corneo et al., "Surrounded by the clouds", WWW 2021).

Devices carry a battery (state of charge) and a first-order thermal model
dT/dt = (P x R_th - (T - T_amb)) / tau; above ``throttle_c`` the SoC runs at ``throttle_speed``
of its speed (a DVFS step). The thermal resistances, time constants and limits are assumptions
of plausible magnitude (skin-contact limits of ~40-43 degC for wearables and phones), not
measurements; they are stated in ``docs/net4ai.md``. Radio energy while transmitting is
``tx_power_w``, an assumed constant of the order of the 5G modem powers reported by Narayanan et
al., "A variegated look at 5G in the wild", ACM SIGCOMM 2021.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceClass(_Strict):
    """A kind of UE that runs AI: compute, power, battery, thermal behaviour."""

    flops_per_s: float = Field(gt=0, description="Effective batch-1 throughput, FLOP/s.")
    compute_power_w: float = Field(gt=0, description="Power while the accelerator is busy, W.")
    tx_power_w: float = Field(2.5, gt=0, description="UE radio power while transmitting uplink, W.")
    memory_gb: float = Field(gt=0, description="Memory available for model weights, GB.")
    battery_wh: float = Field(gt=0, description="Battery capacity, Wh (a large value: mains powered).")
    thermal_r_c_per_w: float = Field(gt=0, description="Thermal resistance to ambient, degC/W.")
    thermal_tau_s: float = Field(gt=0, description="Thermal time constant, s.")
    throttle_c: float = Field(description="Temperature above which the SoC throttles, degC.")
    throttle_speed: float = Field(0.5, gt=0, le=1, description="Speed factor while throttled.")


DEVICE_CLASSES: dict[str, DeviceClass] = {
    "phone": DeviceClass(
        flops_per_s=1.0e12, compute_power_w=4.0, memory_gb=4.0, battery_wh=15.4,
        thermal_r_c_per_w=6.0, thermal_tau_s=120.0, throttle_c=43.0,
    ),
    "glasses": DeviceClass(
        flops_per_s=50e9, compute_power_w=1.0, tx_power_w=1.5, memory_gb=1.0, battery_wh=0.6,
        thermal_r_c_per_w=18.0, thermal_tau_s=60.0, throttle_c=40.0,
    ),
    "robot": DeviceClass(
        flops_per_s=40e9, compute_power_w=6.0, memory_gb=4.0, battery_wh=100.0,
        thermal_r_c_per_w=4.0, thermal_tau_s=300.0, throttle_c=80.0,
    ),
    "vehicle": DeviceClass(
        flops_per_s=10e12, compute_power_w=40.0, memory_gb=16.0, battery_wh=1e6,
        thermal_r_c_per_w=0.8, thermal_tau_s=300.0, throttle_c=85.0,
    ),
}  # fmt: skip


class ServerClass(_Strict):
    """An edge or cloud server pool."""

    flops_per_s: float = Field(gt=0, description="Effective batch-1 throughput per server, FLOP/s.")
    power_w: float = Field(gt=0, description="Power per busy server, W.")
    servers: int = Field(ge=1, le=10_000, description="Servers (GPUs) in the pool.")
    block_overhead_s: float = Field(20e-6, ge=0, description="Fixed cost per block (kernel launches), s.")


EDGE_L4 = ServerClass(flops_per_s=30e12, power_w=72.0, servers=2)
CLOUD_H100 = ServerClass(flops_per_s=100e12, power_w=350.0, servers=64)


class TransportConfig(_Strict):
    """One-way latency and bandwidth from a RAN site to the compute tiers."""

    local_edge_ms: float = Field(1.0, ge=0, le=1000, description="Site to its own MEC, one way, ms.")
    other_edge_ms: float = Field(3.0, ge=0, le=1000, description="Site to another MEC, one way, ms.")
    cloud_ms: float = Field(15.0, ge=0, le=1000, description="Site to the regional cloud, one way, ms.")
    edge_gbps: float = Field(10.0, gt=0, description="Transport bandwidth to a MEC, Gbit/s.")
    cloud_gbps: float = Field(1.0, gt=0, description="Transport bandwidth share to the cloud, Gbit/s.")


class EdgeConfig(_Strict):
    """MEC deployment over the twin's sites, background load and failures."""

    edges: int = Field(
        3, ge=1, le=100, description="MEC nodes; sites are grouped by angle around the centre."
    )
    server: ServerClass = EDGE_L4
    cloud: ServerClass = CLOUD_H100
    background_util: float = Field(
        0.3, ge=0, lt=1, description="Mean share of each MEC used by other tenants (congestion)."
    )
    background_swing: float = Field(
        0.25, ge=0, lt=1, description="Amplitude of the slow random swing of that share."
    )
    failures_per_hour: float = Field(0.5, ge=0, le=100, description="MEC failures per node per hour.")
    failure_duration_s: float = Field(30.0, gt=0, le=3600, description="Mean outage of a failed MEC, s.")
    transport: TransportConfig = TransportConfig()


@dataclass
class ComputeLayer:
    """Edge + cloud nodes over the twin's sites. Node j < ``n_edges`` is MEC j; the last is the
    cloud. Queues are pooled FIFO work backlogs (seconds of one server's work), drained each step
    by the servers left free by other tenants; a failed MEC loses what it holds."""

    cfg: EdgeConfig
    site_edge: np.ndarray  # [S] MEC index per site
    rng: np.random.Generator
    n_edges: int = 0
    backlog_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    up: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    background: np.ndarray = field(default_factory=lambda: np.zeros(0))
    down_until: np.ndarray = field(default_factory=lambda: np.zeros(0))
    busy_s: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def over_sites(cls, cfg: EdgeConfig, site_x: np.ndarray, site_y: np.ndarray, seed: int) -> ComputeLayer:
        n_e = min(cfg.edges, len(site_x))
        ang = np.arctan2(site_y - site_y.mean(), site_x - site_x.mean())
        order = np.argsort(ang, kind="stable")
        site_edge = np.empty(len(site_x), dtype=np.int64)
        site_edge[order] = np.arange(len(site_x)) * n_e // len(site_x)
        layer = cls(cfg=cfg, site_edge=site_edge, rng=np.random.default_rng(seed), n_edges=n_e)
        n = n_e + 1
        layer.backlog_s = np.zeros(n)
        layer.up = np.ones(n, dtype=bool)
        layer.background = np.full(n, cfg.background_util)
        layer.background[-1] = 0.0
        layer.down_until = np.zeros(n)
        layer.busy_s = np.zeros(n)
        return layer

    @property
    def n_nodes(self) -> int:
        return self.n_edges + 1

    @property
    def servers(self) -> np.ndarray:
        return np.array([self.cfg.server.servers] * self.n_edges + [self.cfg.cloud.servers], dtype=np.float64)

    @property
    def flops_per_s(self) -> np.ndarray:
        return np.array([self.cfg.server.flops_per_s] * self.n_edges + [self.cfg.cloud.flops_per_s])

    @property
    def power_w(self) -> np.ndarray:
        return np.array([self.cfg.server.power_w] * self.n_edges + [self.cfg.cloud.power_w])

    @property
    def block_overhead_s(self) -> np.ndarray:
        return np.array([self.cfg.server.block_overhead_s] * self.n_edges + [self.cfg.cloud.block_overhead_s])

    def one_way_s(self, site: np.ndarray) -> np.ndarray:
        """[len(site), nodes] one-way transport latency from each site to each node, s."""
        t = self.cfg.transport
        site_e = self.site_edge[site]
        edges = np.where(
            site_e[:, None] == np.arange(self.n_edges)[None, :], t.local_edge_ms, t.other_edge_ms
        )
        return np.concatenate((edges, np.full((len(site), 1), t.cloud_ms)), axis=1) / 1e3

    def transport_gbps(self) -> np.ndarray:
        t = self.cfg.transport
        return np.array([t.edge_gbps] * self.n_edges + [t.cloud_gbps])

    def wait_s(self) -> np.ndarray:
        """Queueing wait a task arriving now sees at each node, s."""
        return self.backlog_s / (self.servers * (1.0 - self.background))

    def step(self, now: float, dt: float) -> np.ndarray:
        """Advance ``dt``: drain backlogs, move background load, fail/repair MECs. Returns the
        mask of nodes that failed in this step (their queued work is lost)."""
        cfg = self.cfg
        free = self.servers * (1.0 - self.background) * dt
        done = np.minimum(self.backlog_s, free)
        self.busy_s += done
        self.backlog_s -= done
        # background: Ornstein-Uhlenbeck-like swing around the mean, 60 s time constant
        e = slice(0, self.n_edges)
        a = np.exp(-dt / 60.0)
        noise = self.rng.normal(0.0, cfg.background_swing * np.sqrt(1 - a * a), self.n_edges)
        self.background[e] = np.clip(
            cfg.background_util + a * (self.background[e] - cfg.background_util) + noise, 0.0, 0.95
        )
        failed = np.zeros(self.n_nodes, dtype=bool)
        repaired = self.up | (self.down_until <= now)
        self.up = repaired
        p_fail = 1.0 - np.exp(-cfg.failures_per_hour * dt / 3600.0)
        failed[e] = self.up[e] & (self.rng.random(self.n_edges) < p_fail)
        if failed.any():
            dur = self.rng.exponential(cfg.failure_duration_s, failed.sum())
            self.down_until[failed] = now + dur
            self.up[failed] = False
            self.backlog_s[failed] = 0.0
        return failed


@dataclass
class DeviceFleet:
    """Per-UE device state: class, battery state of charge, temperature, busy-until time."""

    kind: np.ndarray  # [N] index into ``classes``
    classes: tuple[str, ...]
    soc: np.ndarray  # [N] battery state of charge 0..1
    temp_c: np.ndarray  # [N]
    ambient_c: float = 25.0
    energy_j: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def create(cls, kind: np.ndarray, classes: tuple[str, ...], rng: np.random.Generator) -> DeviceFleet:
        n = len(kind)
        return cls(
            kind=kind,
            classes=classes,
            soc=rng.uniform(0.1, 1.0, n),
            temp_c=np.full(n, 25.0) + rng.uniform(0.0, 5.0, n),
            energy_j=np.zeros(n),
        )

    def _param(self, name: str) -> np.ndarray:
        return np.array([getattr(DEVICE_CLASSES[c], name) for c in self.classes])[self.kind]

    def speed(self) -> np.ndarray:
        """Speed factor now (1, or throttle_speed while above the throttling temperature)."""
        hot = self.temp_c >= self._param("throttle_c")
        return np.where(hot, self._param("throttle_speed"), 1.0)

    def flops_per_s(self) -> np.ndarray:
        return self._param("flops_per_s")

    def spend(self, compute_s: np.ndarray, tx_s: np.ndarray, dt: float) -> None:
        """Account one step of ``compute_s`` busy seconds and ``tx_s`` transmit seconds per UE:
        battery drain and the first-order thermal update with the step's mean power."""
        e = compute_s * self._param("compute_power_w") + tx_s * self._param("tx_power_w")
        self.energy_j += e
        cap_j = self._param("battery_wh") * 3600.0
        self.soc = np.clip(self.soc - e / cap_j, 0.0, 1.0)
        p = e / dt
        r, tau = self._param("thermal_r_c_per_w"), self._param("thermal_tau_s")
        target = self.ambient_c + p * r
        self.temp_c = target + (self.temp_c - target) * np.exp(-dt / tau)
