"""Per-service traffic: session arrivals on a diurnal curve per cell type, per-UE DL/UL buffers.

Every UE runs one service of :data:`~mobileai.twin.config.SERVICES` (shares from
``TrafficConfig.service_mix``). A service alternates between *idle* and *in session*:

- **Session arrivals** are Poisson while idle, with rate ``sessions_per_hour`` x ``activity``,
  where the engine's ``activity`` is the diurnal factor of the serving cell's type
  (:data:`DIURNAL`) x ``load_scale`` x any traffic surge x the mean-one weekly / daily /
  hour-scale modulation of :class:`TrafficModulation` (``traffic.variability``). This is the
  classic on/off source (Poisson session arrivals, exponential holding times) of teletraffic engineering; the
  FTP/HTTP models of 3GPP TR 36.814 Annex A and 3GPP2 C.R1002 have the same structure (survey:
  J. Navarro-Ortiz et al., "A survey on 5G usage scenarios and traffic models", IEEE Commun.
  Surveys & Tutorials 22(2), 2020). A session arriving where ``admit`` is False is *blocked*
  (counted, not started), as an admission-controlled RAN does (the engine decides ``admit``:
  radio admission control of GBR flows by their PRB need, and an optional cap on sessions).
- **Session durations** are exponential with mean ``mean_session_s`` (memoryless, so each step
  ends a session with probability 1 - exp(-dt / mean)). ``math.inf`` means always on (mMTC,
  URLLC control, full buffer): such UEs start in session and only leave it on radio link
  failure (:meth:`Traffic.drop`), after which they re-attach at ``sessions_per_hour``.
- **Bits**: during a session the UE adds constant-bit-rate bits ``rate x dt`` to its buffers,
  plus bursts of ``dl_burst_bits`` / ``ul_burst_bits`` at session start and then with
  exponential inter-burst times of mean ``burst_interval_s`` (``math.inf``: only at the start).
  Full-buffer UEs (the full-buffer model of TR 36.814 Annex A and ITU-R M.2412) keep
  the DL buffer topped up to :data:`FULL_BUFFER_BITS`.
- A session that ends stops *generating* bits; what is queued is still delivered (a model
  download that outlives its session drains).

Diurnal profiles (:data:`DIURNAL`, 24 hourly values, linearly interpolated, periodic) follow the
five tower types found in cellular traffic of 9,600 towers in Shanghai (H. Wang, F. Xu, Y. Li,
P. Zhang, D. Jin, "Understanding mobile traffic patterns of large scale cellular towers in urban
environment", ACM IMC 2015; F. Xu et al., IEEE/ACM Trans. Networking 25(2), 2017): residential
(evening peak around 21 h, night valley around 4-5 h), office/business (working hours 9-17 h,
little at night), transport (commuter peaks around 8 h and 18 h); U. Paul, A. Subramanian,
M. Buddhikot, S. Das, "Understanding traffic dynamics in cellular data networks", IEEE INFOCOM
2011 report the same daily periodicity. Stadium cells carry little traffic outside events
(M. Z. Shafiq et al., "A first look at cellular network performance during crowded events",
ACM SIGMETRICS 2013); events are injected by the faults' ``traffic_surge``. The residential and
office shapes were sanity-checked against the Telecom Italia Milan internet activity (G. Barlacchi
et al., "A multi-source dataset of urban life in the city of Milan and the Province of
Trentino", Scientific Data 2, 150055, 2015); ``docs/models.md`` shows the check and its
numbers. The data is not read here.

Service parameters (:data:`SERVICE_PROFILES`, sources per row in ``docs/models.md``):
5QI and packet delay budget from TS 23.501 Table 5.7.4-1; video ~5 Mbit/s HD with an initial
pre-buffering burst (S. Rao et al., "Network characteristics of video streaming traffic",
ACM CoNEXT 2011); web pages of ~2.3 MB (HTTP Archive Web Almanac 2024, median mobile page
weight) with exponential reading time of mean 30 s (3GPP2 C.R1002 HTTP model); VoIP AMR-WB
23.85 kbit/s (TS 26.190) in 20 ms frames with 40 bytes of IPv4/UDP/RTP headers ~ 40 kbit/s;
URLLC 32-byte messages (TR 38.913 clause 7.9) at a ms-level transfer interval (TS 22.104
clause 5.2 periodic deterministic communication); mMTC small uplink reports (TR 45.820
Annex E, TR 37.868, ITU-R M.2412 connection-density traffic) at a few-minute period;
uplink-heavy AI camera streams; LLM-agent request/response turns with sustained uplink
activity (A. Montieri, A. Nascita, A. Pescape, "From prompts to packets: a view from the network
on ChatGPT, Copilot, and Gemini", arXiv:2510.11269, 2025); AI model downloads of the size of
TS 22.261 Table 7.10.1-2 (80-138 MB per model) and above.

Randomness: every draw comes from the caller's CPU :class:`torch.Generator` and is moved to the
device afterwards. Event tests compare exponential variates E ~ Exp(1) with ``rate x dt``
(P(E < x) = 1 - exp(-x)), a single IEEE multiplication and comparison, so CPU and CUDA runs with
the same seed take the same decisions. Per step: one draw of U uniforms and ~20 elementwise
tensor ops, no Python loop over UEs or services.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from mobileai.twin.config import CELL_TYPES, SERVICES, TrafficConfig, VariabilityConfig
from mobileai.twin.fiveqi import is_gbr

SLICES: tuple[str, ...] = ("embb", "urllc", "mmtc", "ai")

#: Hourly relative session activity per cell type (value at h:00, linearly interpolated, periodic).
#: Office, residential and transport hub peak at 1.0; stadium is a low baseline (peak 0.25 of a
#: busy cell) because an empty venue carries little traffic; events come from ``traffic_surge``.
DIURNAL: dict[str, tuple[float, ...]] = {
    # working hours 9-17 h with a slight lunch dip, little at night (Wang et al. 2015 "office").
    "office": (
        0.14, 0.10, 0.08, 0.07, 0.07, 0.08, 0.14, 0.32, 0.62, 0.88, 0.97, 1.00,
        0.93, 0.93, 0.98, 1.00, 0.95, 0.82, 0.58, 0.38, 0.28, 0.23, 0.19, 0.16,
    ),
    # evening peak 19-23 h (max at 21 h), valley at 4-5 h (Wang et al. 2015 "residential").
    "residential": (
        0.50, 0.36, 0.26, 0.20, 0.17, 0.17, 0.22, 0.36, 0.52, 0.58, 0.60, 0.62,
        0.66, 0.66, 0.64, 0.65, 0.69, 0.75, 0.83, 0.91, 0.97, 1.00, 0.93, 0.74,
    ),
    # commuter peaks at 8 h and 18 h (Wang et al. 2015 "transport").
    "transport_hub": (
        0.16, 0.08, 0.05, 0.04, 0.05, 0.12, 0.35, 0.78, 1.00, 0.80, 0.56, 0.50,
        0.54, 0.55, 0.52, 0.58, 0.72, 0.90, 0.98, 0.76, 0.54, 0.44, 0.36, 0.26,
    ),
    # empty venue: staff, passers-by; events are traffic surges (Shafiq et al. 2013).
    "stadium": (
        0.06, 0.04, 0.03, 0.03, 0.03, 0.04, 0.06, 0.09, 0.12, 0.15, 0.17, 0.19,
        0.21, 0.21, 0.20, 0.20, 0.21, 0.23, 0.25, 0.25, 0.24, 0.20, 0.14, 0.09,
    ),
}  # fmt: skip

#: DL backlog a full-buffer UE is kept at (bits): more than one NR carrier delivers to a UE in a
#: 100 ms step (100 MHz, 4 layers, 256QAM is ~2.3 Gbit/s); scaled up for longer steps.
FULL_BUFFER_BITS = 1e9
_FULL_BUFFER_RATE_BPS = 1e10
#: Time constant of the served-rate average used by :meth:`Traffic.head_of_line_delay_s`, s.
RATE_AVERAGING_S = 1.0


@dataclass(frozen=True)
class ServiceProfile:
    """Traffic of one service.

    Rates are constant bit rates during a session; bursts come at session start and then with
    exponential inter-burst times of mean ``burst_interval_s`` (``math.inf``: start only);
    ``mean_session_s = math.inf`` means always in session. ``sessions_per_hour`` is the session
    arrival rate of an idle UE at activity 1.0 (the busiest hour of a busy cell).
    """

    name: str
    slice: str
    five_qi: int
    sessions_per_hour: float
    mean_session_s: float
    dl_rate_bps: float
    ul_rate_bps: float
    dl_burst_bits: float
    ul_burst_bits: float
    burst_interval_s: float
    full_buffer: bool
    delay_budget_ms: float

    def __post_init__(self) -> None:
        if self.slice not in SLICES:
            raise ValueError(f"{self.name}: slice {self.slice!r} is not one of {', '.join(SLICES)}")
        for field in ("sessions_per_hour", "mean_session_s", "burst_interval_s", "delay_budget_ms"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{self.name}: {field} must be > 0 (got {getattr(self, field)})")
        for field in ("dl_rate_bps", "ul_rate_bps", "dl_burst_bits", "ul_burst_bits"):
            v = getattr(self, field)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{self.name}: {field} must be a finite number >= 0 (got {v})")

    def expected_rate_bps(self, activity: float = 1.0) -> tuple[float, float]:
        """Long-run mean offered (DL, UL) bit rate of one UE at constant ``activity``.

        On/off renewal process: idle ~ Exp(sessions_per_hour x activity / 3600), session ~
        Exp(mean_session_s); duty = x / (1 + x) with x = arrival rate x mean session; sessions
        start at rate arrival x (1 - duty). Full-buffer DL is infinite.
        """
        lam = self.sessions_per_hour / 3600.0 * activity
        if math.isinf(self.mean_session_s):
            duty, starts = 1.0, 0.0
        else:
            x = lam * self.mean_session_s
            duty, starts = x / (1.0 + x), lam / (1.0 + x)
        per_s = 0.0 if math.isinf(self.burst_interval_s) else 1.0 / self.burst_interval_s
        dl = duty * (self.dl_rate_bps + self.dl_burst_bits * per_s) + starts * self.dl_burst_bits
        ul = duty * (self.ul_rate_bps + self.ul_burst_bits * per_s) + starts * self.ul_burst_bits
        return (math.inf if self.full_buffer and duty > 0 else dl), ul


_INF = math.inf

#: One profile per service in :data:`~mobileai.twin.config.SERVICES` (sources: module docstring
#: and the table in ``docs/models.md``).
SERVICE_PROFILES: dict[str, ServiceProfile] = {
    # HD video, 5 Mbit/s; 10 s of video pre-buffered at start; ~1.5 % TCP/QUIC ACK uplink.
    # 5QI 6: "Video (buffered streaming), TCP-based", PDB 300 ms.
    "embb_video": ServiceProfile(
        "embb_video", "embb", 6, sessions_per_hour=3.0, mean_session_s=300.0,
        dl_rate_bps=5.0e6, ul_rate_bps=75e3, dl_burst_bits=50e6, ul_burst_bits=0.0,
        burst_interval_s=_INF, full_buffer=False, delay_budget_ms=300.0,
    ),
    # Web browsing: a 2.3 MB page (+ 50 kB of requests/ACKs) per click, 30 s mean reading time.
    # 5QI 9 (default bearer: www, e-mail, chat), PDB 300 ms.
    "embb_web": ServiceProfile(
        "embb_web", "embb", 9, sessions_per_hour=4.0, mean_session_s=300.0,
        dl_rate_bps=0.0, ul_rate_bps=0.0, dl_burst_bits=18.4e6, ul_burst_bits=0.4e6,
        burst_interval_s=30.0, full_buffer=False, delay_budget_ms=300.0,
    ),
    # Always-backlogged DL (3GPP/ITU full-buffer evaluation model). 5QI 9.
    "full_buffer": ServiceProfile(
        "full_buffer", "embb", 9, sessions_per_hour=3600.0, mean_session_s=_INF,
        dl_rate_bps=0.0, ul_rate_bps=0.0, dl_burst_bits=0.0, ul_burst_bits=0.0,
        burst_interval_s=_INF, full_buffer=True, delay_budget_ms=300.0,
    ),
    # AMR-WB 23.85 kbit/s, 20 ms frames + 40 B IPv4/UDP/RTP = ~40 kbit/s each way (no DTX);
    # 2 calls per busy hour of 2 min. 5QI 1: conversational voice, PDB 100 ms.
    "voip": ServiceProfile(
        "voip", "embb", 1, sessions_per_hour=2.0, mean_session_s=120.0,
        dl_rate_bps=40e3, ul_rate_bps=40e3, dl_burst_bits=0.0, ul_burst_bits=0.0,
        burst_interval_s=_INF, full_buffer=False, delay_budget_ms=100.0,
    ),
    # Closed-loop control: 32-byte messages every 2 ms each way = 128 kbit/s; always on.
    # 5QI 82: delay-critical GBR, discrete automation, PDB 10 ms.
    "urllc_control": ServiceProfile(
        "urllc_control", "urllc", 82, sessions_per_hour=60.0, mean_session_s=_INF,
        dl_rate_bps=128e3, ul_rate_bps=128e3, dl_burst_bits=0.0, ul_burst_bits=0.0,
        burst_interval_s=_INF, full_buffer=False, delay_budget_ms=10.0,
    ),
    # Sensor/meter report of 200 bytes uplink every 5 min on average; always attached. 5QI 9.
    "mmtc": ServiceProfile(
        "mmtc", "mmtc", 9, sessions_per_hour=60.0, mean_session_s=_INF,
        dl_rate_bps=0.0, ul_rate_bps=0.0, dl_burst_bits=0.0, ul_burst_bits=1600.0,
        burst_interval_s=300.0, full_buffer=False, delay_budget_ms=300.0,
    ),
    # 1080p30 camera/sensor stream to an AI service, 4 Mbit/s UL, 50 kbit/s of results DL.
    # 5QI 71: "live" uplink streaming, PDB 150 ms.
    "ai_camera_ul": ServiceProfile(
        "ai_camera_ul", "ai", 71, sessions_per_hour=1.0, mean_session_s=600.0,
        dl_rate_bps=50e3, ul_rate_bps=4.0e6, dl_burst_bits=0.0, ul_burst_bits=0.0,
        burst_interval_s=_INF, full_buffer=False, delay_budget_ms=150.0,
    ),
    # LLM agent: per turn 100 kB up (prompt + resent context, a screenshot now and then) and
    # 200 kB down (streamed response, tool results); 15 s mean think time; 5 min sessions.
    # 5QI 7: interactive non-GBR, PDB 100 ms.
    "ai_agent": ServiceProfile(
        "ai_agent", "ai", 7, sessions_per_hour=4.0, mean_session_s=300.0,
        dl_rate_bps=0.0, ul_rate_bps=0.0, dl_burst_bits=1.6e6, ul_burst_bits=0.8e6,
        burst_interval_s=15.0, full_buffer=False, delay_budget_ms=100.0,
    ),
    # On-device model download/update of 200 MB (+ 3 MB of TCP ACKs), one per 2 busy hours.
    # 5QI 9 (TCP bulk transfer), PDB 300 ms.
    "ai_model_download": ServiceProfile(
        "ai_model_download", "ai", 9, sessions_per_hour=0.5, mean_session_s=60.0,
        dl_rate_bps=0.0, ul_rate_bps=0.0, dl_burst_bits=1.6e9, ul_burst_bits=24e6,
        burst_interval_s=_INF, full_buffer=False, delay_budget_ms=300.0,
    ),
}  # fmt: skip

_DIURNAL_TABLE = tuple(DIURNAL[t] for t in CELL_TYPES)


def diurnal_factor(cell_type: torch.Tensor, hour: float) -> torch.Tensor:
    """Relative activity of each element's cell type at local time ``hour`` (any real number).

    ``cell_type`` holds indices into :data:`~mobileai.twin.config.CELL_TYPES`; the hourly
    profile is interpolated linearly and periodically (24 h). Returns float32 values in [0, 1]
    on ``cell_type``'s device, same shape.
    """
    if cell_type.dtype.is_floating_point or cell_type.dtype == torch.bool:
        raise TypeError(f"cell_type must be an integer index tensor (got {cell_type.dtype})")
    hour = float(hour)
    if not math.isfinite(hour):
        raise ValueError(f"hour must be a finite number (got {hour})")
    h = hour % 24.0
    i0 = min(int(h), 23)
    f = h - i0
    i1 = (i0 + 1) % 24
    per_type = [min(1.0, max(0.0, p[i0] + f * (p[i1] - p[i0]))) for p in _DIURNAL_TABLE]
    if cell_type.device.type == "cpu":  # the same float32 values without torch's dispatch
        return torch.from_numpy(np.array(per_type, dtype=np.float32)[cell_type.numpy()])
    table = torch.tensor(per_type, dtype=torch.float32, device=cell_type.device)
    return table.index_select(0, cell_type.reshape(-1).long()).reshape(cell_type.shape)


#: On CPU, :meth:`Traffic.step` runs its per-UE logic as compiled loops (the same numbers as the
#: torch code, which runs on other devices; False runs the torch code on CPU too, for tests).
COMPILED_ON_CPU = True


@dataclass
class TrafficStep:
    """What one :meth:`Traffic.step` produced, tensors of shape [U]."""

    new_sessions: torch.Tensor  # bool: a session started
    blocked: torch.Tensor  # bool: a session arrived but admission refused it
    ended: torch.Tensor  # bool: a session ended normally
    dl_bits: torch.Tensor  # float32: bits added to the DL buffer
    ul_bits: torch.Tensor  # float32: bits added to the UL buffer


def _quotas(shares: list[float], n: int) -> list[int]:
    """Largest-remainder apportionment of ``n`` UEs to shares summing to 1."""
    raw = [s * n for s in shares]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


class Traffic:
    """Batched per-UE traffic state and its per-step update (see the module docstring).

    Attributes (tensors of shape [U] on ``device``): ``service`` (int64 index into SERVICES),
    ``slice`` (int64 index into SLICES), ``five_qi`` (int64), ``delay_budget_s`` (float32,
    the 5QI packet delay budget), ``gbr`` (bool: a GBR or delay-critical GBR 5QI, TS 23.501
    Table 5.7.4-1), ``in_session`` (bool), ``dl_buffer_bits`` and ``ul_buffer_bits`` (float32
    views of one [2, U] tensor); ``gfbr_bps`` [2U] float32 holds each GBR flow's guaranteed
    bit rate (its constant bit rate; 0 for non-GBR), DL entries then UL entries.

    The engine folds ``cfg.load_scale`` into ``activity``; this class does not apply it again.
    """

    def __init__(
        self,
        cfg: TrafficConfig,
        n_ues: int,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> None:
        if n_ues < 0:
            raise ValueError(f"n_ues must be >= 0 (got {n_ues})")
        self.cfg = cfg
        self.n = int(n_ues)
        self.device = torch.device(device)
        self.g = generator
        dev = self.device

        counts = _quotas([cfg.service_mix.get(s, 0.0) for s in SERVICES], self.n)
        labels = torch.repeat_interleave(torch.arange(len(SERVICES)), torch.tensor(counts, dtype=torch.int64))
        service = labels[torch.randperm(self.n, generator=generator)]

        profiles = [SERVICE_PROFILES[s] for s in SERVICES]

        def per_ue(values: list[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
            return torch.tensor(values, dtype=dtype)[service]

        def inv(x: float) -> float:
            return 0.0 if math.isinf(x) else 1.0 / x

        self.service = service.to(dev)
        self.slice = per_ue([SLICES.index(p.slice) for p in profiles], torch.int64).to(dev)
        self.five_qi = per_ue([p.five_qi for p in profiles], torch.int64).to(dev)
        self.delay_budget_s = per_ue([p.delay_budget_ms / 1000.0 for p in profiles]).float().to(dev)
        # Rates per second, kept in float64 on the CPU; thresholds per dt are derived from them.
        self._arrival_per_s = per_ue([p.sessions_per_hour / 3600.0 for p in profiles])
        self._end_per_s = per_ue([inv(p.mean_session_s) for p in profiles])
        self._burst_per_s = per_ue([inv(p.burst_interval_s) for p in profiles])

        def pair(dl: str, ul: str) -> torch.Tensor:
            return torch.stack(
                (per_ue([getattr(p, dl) for p in profiles]), per_ue([getattr(p, ul) for p in profiles]))
            )

        self._cbr_bps = pair("dl_rate_bps", "ul_rate_bps")
        # guaranteed flows (GBR and delay-critical GBR 5QIs) and their guaranteed flow bit rate:
        # the constant bit rate of the service, flattened DL then UL for the engine's [2U] passes
        self.gbr = per_ue([float(is_gbr(p.five_qi)) for p in profiles]).bool().to(dev)
        self.gfbr_bps = (self._cbr_bps * self.gbr.cpu()).reshape(-1).float().to(dev)
        self._burst_bits = pair("dl_burst_bits", "ul_burst_bits").float().to(dev)
        self._always_on = per_ue([float(math.isinf(p.mean_session_s)) for p in profiles]).bool().to(dev)
        self._full = per_ue([float(p.full_buffer) for p in profiles]).bool().to(dev)
        self._has_full = bool(self._full.any())

        self.in_session = self._always_on.clone()
        self._buf = torch.zeros((2, self.n), dtype=torch.float32, device=dev)
        self._busy_s = torch.zeros((2, self.n), dtype=torch.float32, device=dev)
        self._rate_bps = torch.zeros((2, self.n), dtype=torch.float32, device=dev)
        self._dt = math.nan

    # -- buffers: two rows of one tensor, so each op covers DL and UL together -------------------
    @property
    def dl_buffer_bits(self) -> torch.Tensor:
        return self._buf[0]

    @dl_buffer_bits.setter
    def dl_buffer_bits(self, value: torch.Tensor) -> None:
        self._buf[0].copy_(value)

    @property
    def ul_buffer_bits(self) -> torch.Tensor:
        return self._buf[1]

    @ul_buffer_bits.setter
    def ul_buffer_bits(self, value: torch.Tensor) -> None:
        self._buf[1].copy_(value)

    def _set_dt(self, dt_s: float) -> None:
        if not (dt_s > 0 and math.isfinite(dt_s)):
            raise ValueError(f"dt_s must be a finite number > 0 (got {dt_s})")
        dev = self.device
        self._dt = dt_s
        # thresholds on log(U) = -E, E ~ Exp(1): an event within dt at rate r is E < r dt
        self._neg_arrival_dt = (-self._arrival_per_s * dt_s).float().to(dev)
        self._neg_end_dt = (-self._end_per_s * dt_s).float().to(dev)
        self._neg_end_or_burst_dt = (-(self._end_per_s + self._burst_per_s) * dt_s).float().to(dev)
        self._cbr_step = (self._cbr_bps * dt_s).float().to(dev)
        self._cbr_and_burst_step = self._cbr_step + self._burst_bits
        self._full_level = max(FULL_BUFFER_BITS, _FULL_BUFFER_RATE_BPS * dt_s)

    def _check(self, name: str, t: torch.Tensor, dtype: torch.dtype | None = None) -> None:
        if t.shape != (self.n,):
            raise ValueError(f"{name} must have shape ({self.n},) (got {tuple(t.shape)})")
        if dtype is not None and t.dtype != dtype:
            raise TypeError(f"{name} must be {dtype} (got {t.dtype})")

    def warm_start(self, activity: torch.Tensor) -> None:
        """Draw each UE's session state from the stationary on/off law at ``activity`` [U].

        Optional, before the first step: P(in session) = x / (1 + x), x = arrival rate x mean
        session; avoids the empty-network transient of a cold start. Buffers stay empty.
        """
        self._check("activity", activity)
        x = self._arrival_per_s * activity.detach().double().cpu() / self._end_per_s.clamp(min=1e-30)
        p_on = torch.where(self._end_per_s > 0, x / (1.0 + x), torch.ones_like(x))
        u = torch.rand(self.n, dtype=torch.float64, generator=self.g)
        self.in_session = (u < p_on).to(self.device) | self._always_on

    def step(
        self,
        dt_s: float,
        activity: torch.Tensor,
        admit: torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
    ) -> TrafficStep:
        """Advance ``dt_s`` seconds: session arrivals/blocking/ends, then add the new bits.

        ``activity`` [U] >= 0 multiplies each idle UE's session arrival rate; ``admit`` [U] bool
        says whether a session arriving now may start, or is a function of the arrivals mask [U]
        returning that (admission control that looks at each arriving flow).
        """
        if dt_s != self._dt:
            self._set_dt(float(dt_s))
        self._check("activity", activity)
        # One Exp(1) variate per UE per step, drawn on the CPU: E = -log(1 - U). While idle it is the
        # arrival clock; in session, the competing end and burst clocks: E < r_end dt ends the
        # session, r_end dt <= E < (r_end + r_burst) dt fires a burst (given no end, with
        # probability 1 - exp(-r_burst dt), independent of the end test).
        u = torch.rand(self.n, generator=self.g).numpy()
        # log1p(-u) = log(1 - u), finite for u in [0, 1). numpy, not torch: ATen's vectorised log
        # goes multi-threaded above 2,048 elements, which costs more than it saves here.
        neg_e = torch.from_numpy(np.log1p(np.negative(u, out=u), out=u)).to(self.device)
        was_on = self.in_session
        cpu = self.device.type == "cpu" and COMPILED_ON_CPU
        if cpu:  # the same float32 comparisons in one compiled pass
            arrive, ended = torch.empty(self.n, dtype=torch.bool), torch.empty(self.n, dtype=torch.bool)
            _session_events(
                neg_e.numpy(), was_on.numpy(), self._neg_end_dt.numpy(), self._neg_arrival_dt.numpy(),
                activity.numpy(), arrive.numpy(), ended.numpy(),
            )  # fmt: skip
        else:
            event = neg_e > torch.where(was_on, self._neg_end_dt, self._neg_arrival_dt * activity)
            arrive = event & ~was_on
            ended = event & was_on
        if callable(admit):
            admit = admit(arrive)
        self._check("admit", admit, torch.bool)
        if cpu:
            new, blocked, active = (torch.empty(self.n, dtype=torch.bool) for _ in range(3))
            added = torch.empty((2, self.n), dtype=torch.float32)
            _add_bits(
                neg_e.numpy(), was_on.numpy(), arrive.numpy(), ended.numpy(), admit.numpy(),
                self._neg_end_or_burst_dt.numpy(), self._buf.numpy(), self._busy_s.numpy(),
                self._cbr_step.numpy(), self._cbr_and_burst_step.numpy(), self._full.numpy(),
                np.float32(self._full_level), np.float32(self._dt), new.numpy(), blocked.numpy(),
                active.numpy(), added.numpy(),
            )  # fmt: skip
            self.in_session = active
            return TrafficStep(new, blocked, ended, added[0], added[1])
        new = arrive & admit
        blocked = arrive ^ new
        cont = was_on ^ ended
        burst = new | (cont & (neg_e > self._neg_end_or_burst_dt))
        active = cont | new
        self.in_session = active

        # how long each backlog has persisted (for the delay proxy), then the new bits
        buf = self._buf
        self._busy_s.add_(self._dt).masked_fill_(buf <= 0, 0.0)
        added = torch.where(burst, self._cbr_and_burst_step, torch.where(active, self._cbr_step, 0.0))
        if self._has_full:
            top_up = (self._full_level - buf[0] - added[0]).clamp_(min=0.0)
            added[0] += torch.where(self._full & active, top_up, 0.0)
        buf += added
        return TrafficStep(new, blocked, ended, added[0], added[1])

    def serve(self, dl_bits: torch.Tensor, ul_bits: torch.Tensor) -> None:
        """Remove delivered bits from the buffers (never below 0; excess grants are wasted)."""
        self._check("dl_bits", dl_bits)
        self._check("ul_bits", ul_bits)
        buf = self._buf
        backlogged = buf > 0
        served = torch.minimum(torch.stack((dl_bits, ul_bits)).to(buf.dtype), buf).clamp_(min=0.0)
        buf -= served
        dt = self._dt if math.isfinite(self._dt) else 1.0
        w = 1.0 - math.exp(-dt / RATE_AVERAGING_S)
        # served-rate average, updated only while there was something to serve
        self._rate_bps.lerp_(served.mul_(1.0 / dt), backlogged * w)

    def drop(self, mask: torch.Tensor) -> int:
        """Radio link failure of the UEs in ``mask`` [U] bool: end their sessions, clear their
        buffers; returns how many active sessions were dropped."""
        self._check("mask", mask, torch.bool)
        dropped = int((mask & self.in_session).sum())
        keep = ~mask
        self.in_session = self.in_session & keep
        self._buf.mul_(keep)
        self._busy_s.mul_(keep)
        self._rate_bps.mul_(keep)
        return dropped

    def head_of_line_delay_s(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Latency proxy per UE, (DL, UL) float32 [U] seconds.

        min(backlog / average served rate while backlogged, time since the backlog was last
        empty): the first term is the Little's-law queueing-delay estimate that PIE AQM uses
        (RFC 8033: queue length over departure rate); the second bounds it by the age of the
        backlog, which is what a never-served UE waits. 0 for an empty buffer. Resolution is
        one step; full-buffer UEs have no meaningful delay.
        """
        drain = self._buf / self._rate_bps.clamp(min=1.0)
        delay = torch.minimum(drain, self._busy_s) * (self._buf > 0)
        return delay[0], delay[1]


#: Weekday (Monday = 0) of simulated day 0: the KPI timeline's anchor 2026-01-01
#: (:data:`mobileai.twin.timeline.ANCHOR`) is a Thursday.
ANCHOR_WEEKDAY = 3


def weekly_factors(weekend_ratio: dict[str, float]) -> torch.Tensor:
    """[len(CELL_TYPES), 7] float64 factors per cell type and weekday (Monday = 0): weekday value
    ``a`` and weekend value ``r a`` with (5 a + 2 r a) / 7 = 1, so a week averages 1."""
    out = torch.ones(len(CELL_TYPES), 7, dtype=torch.float64)
    for i, t in enumerate(CELL_TYPES):
        r = float(weekend_ratio.get(t, 1.0))
        a = 7.0 / (5.0 + 2.0 * r)
        out[i, :5] = a
        out[i, 5:] = r * a
    return out


class TrafficModulation:
    """Mean-one multiplicative modulation of each cell's session activity (``traffic.variability``).

    ``factor(t) = W[type, weekday] x exp(s_d D[day] - s_d^2/2) x exp(s_h X(t) - v(t)/2)`` per cell:

    - ``W``: weekend/weekday factor per cell type, averaging 1 over a week (:func:`weekly_factors`);
      Saturday and Sunday are days 2 and 3 of the clock (day 0 is a Thursday, the timeline anchor).
      Office towers lose traffic at weekends, residential ones barely (H. Wang et al., ACM IMC 2015;
      F. Xu et al., IEEE/ACM ToN 25(2), 2017); ratios from the Milan grid (docs/models.md).
    - ``D``: daily level, a unit-variance AR(1) across days (coefficient ``daily_phi``), constant
      over a calendar day.
    - ``X``: hour-scale deviation, a unit-variance AR(1) across hours (coefficient ``hourly_phi``)
      drawn at each full hour and linearly interpolated in between; an Ornstein-Uhlenbeck process
      sampled every hour is exactly such an AR(1) (C. W. Gardiner, *Stochastic Methods*, 4th ed.,
      2009, sec. 3.8.4). ``v(t)`` is the variance of the interpolated value, so the factor is
      mean-one at every instant (E exp(Z - var/2) = 1 for Gaussian Z).
    - Spatial correlation: the innovations of ``D`` and ``X`` are ``sqrt(s) g[site] + sqrt(1 - s)
      n[cell]`` with ``g`` a Gaussian field over the sites with correlation ``exp(-d / range)``
      (exponential covariance, the usual model of spatially correlated mobile traffic and of
      shadowing: M. Gudmundson, Electron. Lett. 27(23), 1991) and ``n`` independent per cell, so
      two cells ``d`` apart correlate by ``s exp(-d / range)``, co-sited sectors by ``s``. Copies
      of a batched twin draw independent fields.

    Values are drawn a day at a time, on the CPU from ``generator`` (so CPU and CUDA twins see
    the same numbers), as the clock reaches a new day: a Python loop over the 24 hours of a day
    once per simulated day, none over cells or UEs per step.
    """

    def __init__(
        self,
        cfg: VariabilityConfig,
        cell_type: torch.Tensor,
        site: torch.Tensor,
        site_x: torch.Tensor,
        site_y: torch.Tensor,
        copies: int,
        start_hour: float,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.g = generator
        self.start_hour = float(start_hour)
        self.cell_type = cell_type.detach().cpu().long()
        self.site = site.detach().cpu().long()
        self.n = int(self.site.shape[0])
        n_sites = int(site_x.shape[0])
        if copies < 1 or n_sites % copies:
            raise ValueError(f"{n_sites} sites do not split into {copies} copies")
        self.copies = copies
        s0 = n_sites // copies
        xy = torch.stack((site_x[:s0], site_y[:s0]), 1).detach().cpu().double()
        dist = torch.cdist(xy, xy)
        self._chol_d = self._chol(dist, cfg.daily_range_m)
        self._chol_h = self._chol(dist, cfg.hourly_range_m)
        self._weekly = weekly_factors(cfg.weekend_ratio)[self.cell_type]  # [C, 7]
        self._hourly: list[torch.Tensor] = []  # per day: sigma_h X at hours 0..23 [24, C], float64
        self._levels: list[torch.Tensor] = []  # per day: log(W) + s_d D - s_d^2 / 2 [C], float64
        self._d_prev: torch.Tensor | None = None  # last daily AR(1) state [C]
        self._x_prev: torch.Tensor | None = None  # last hourly AR(1) state [C]
        self._cache_key: tuple[int, int, int] | None = None
        self._cache = torch.ones(self.n, device=self.device)

    @staticmethod
    def _chol(dist: torch.Tensor, range_m: float) -> torch.Tensor:
        corr = torch.exp(-dist / range_m)
        eye = torch.eye(corr.shape[0], dtype=corr.dtype)
        return torch.linalg.cholesky(corr + 1e-9 * eye)

    def _innovation(self, k: int, chol: torch.Tensor, shared: float) -> torch.Tensor:
        """``k`` unit-variance innovations per cell [k, C], spatially correlated (class docstring)."""
        s0 = chol.shape[0]
        field = torch.randn(k, self.copies, s0, dtype=torch.float64, generator=self.g) @ chol.T
        own = torch.randn(k, self.n, dtype=torch.float64, generator=self.g)
        return math.sqrt(shared) * field.reshape(k, -1)[:, self.site] + math.sqrt(1.0 - shared) * own

    def _draw_day(self) -> None:
        """Append the next day's daily level and its 24 hourly values (AR(1) from yesterday's state)."""
        cfg = self.cfg
        day = len(self._levels)
        e_d = self._innovation(1, self._chol_d, cfg.shared_daily)[0]
        if self._d_prev is None:
            d = e_d  # stationary start: unit variance
        else:
            d = cfg.daily_phi * self._d_prev + math.sqrt(1.0 - cfg.daily_phi**2) * e_d
        self._d_prev = d
        e_h = self._innovation(24, self._chol_h, cfg.shared_hourly)
        x = torch.empty(24, self.n, dtype=torch.float64)
        phi, q = cfg.hourly_phi, math.sqrt(1.0 - cfg.hourly_phi**2)
        prev = self._x_prev
        for h in range(24):
            prev = e_h[h] if prev is None else phi * prev + q * e_h[h]
            x[h] = prev
        self._x_prev = prev
        sd = cfg.daily_sigma
        weekly = torch.log(self._weekly[:, (ANCHOR_WEEKDAY + day) % 7])
        self._levels.append(weekly + sd * d - 0.5 * sd * sd)
        self._hourly.append(cfg.hourly_sigma * x)

    def factor(self, t_s: float) -> torch.Tensor:
        """Modulation of each cell [C] (float32 on the device) at simulated time ``t_s`` seconds."""
        hours = self.start_hour + float(t_s) / 3600.0
        if not math.isfinite(hours) or hours < 0:
            raise ValueError(f"t_s must be a finite time >= -start_hour (got {t_s})")
        day = int(hours // 24.0)
        while len(self._levels) <= day + 1:  # day + 1: its hour 0 closes this day's last hour
            self._draw_day()
        h = hours - 24.0 * day
        i = min(int(h), 23)
        f = h - i
        key = (day, i, round(f * 3600.0))
        if key != self._cache_key:
            sh, phi = self.cfg.hourly_sigma, self.cfg.hourly_phi
            x0 = self._hourly[day][i]
            x1 = self._hourly[day][i + 1] if i < 23 else self._hourly[day + 1][0]
            var = sh * sh * ((1.0 - f) ** 2 + f * f + 2.0 * f * (1.0 - f) * phi)
            log_f = (1.0 - f) * x0 + f * x1 - 0.5 * var + self._levels[day]
            self._cache = torch.exp(log_f).float().to(self.device)
            self._cache_key = key
        return self._cache

    def restart(self) -> None:
        """Forget the drawn days (a new episode at t = 0); later days continue the generator."""
        self._hourly.clear()
        self._levels.clear()
        self._d_prev = self._x_prev = None
        self._cache_key = None


def make_modulation(
    cfg: TrafficConfig,
    start_hour: float,
    cell_type: torch.Tensor,
    site: torch.Tensor,
    site_x: torch.Tensor,
    site_y: torch.Tensor,
    copies: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> TrafficModulation | None:
    """The scenario's :class:`TrafficModulation`, or None when ``traffic.variability`` is disabled."""
    if not cfg.variability.enabled:
        return None
    return TrafficModulation(
        cfg.variability, cell_type, site, site_x, site_y, copies, start_hour, generator, device
    )


@njit(cache=True)
def _session_events(neg_e, was_on, neg_end_dt, neg_arrival_dt, activity, arrive, ended):
    """:meth:`Traffic.step`'s session arrivals and ends, UE by UE (CPU)."""
    for i in range(neg_e.shape[0]):
        event = neg_e[i] > (neg_end_dt[i] if was_on[i] else neg_arrival_dt[i] * activity[i])
        arrive[i] = event and not was_on[i]
        ended[i] = event and was_on[i]


@njit(cache=True)
def _add_bits(neg_e, was_on, arrive, ended, admit, neg_end_or_burst_dt, buf, busy, cbr_step, cbr_and_burst,
              full, full_level, dt, new, blocked, active, added):  # fmt: skip
    """:meth:`Traffic.step` after admission, UE by UE (CPU): sessions started and blocked, bursts,
    backlog ages and the new bits, in the torch code's float32 order."""
    zero = np.float32(0.0)
    for i in range(neg_e.shape[0]):
        started = arrive[i] and admit[i]
        new[i] = started
        blocked[i] = arrive[i] and not started
        cont = was_on[i] != ended[i]
        burst = started or (cont and neg_e[i] > neg_end_or_burst_dt[i])
        on = cont or started
        active[i] = on
        for r in range(2):
            aged = busy[r, i] + dt
            busy[r, i] = zero if buf[r, i] <= zero else aged
            added[r, i] = cbr_and_burst[r, i] if burst else (cbr_step[r, i] if on else zero)
        if full[i] and on:
            added[0, i] += max(full_level - buf[0, i] - added[0, i], zero)
        buf[0, i] += added[0, i]
        buf[1, i] += added[1, i]
