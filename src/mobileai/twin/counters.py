"""Per-cell counters accumulated every step and turned into KPIs each reporting period.

Names follow 3GPP TS 28.552 (V18) performance measurements and the O-RAN E2SM-KPM KPIs where one
exists; percentile variants and twin-only quantities carry a ``mobileai.`` prefix or a
``.P5/.P50/.P95`` suffix. ``docs/kpis.md`` lists each with unit, definition and clause.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from mobileai.twin import linkadapt

#: SINR histogram bins (dB): lower edges -10, -8, ..., 38 (25 bins, clamped at both ends).
SINR_BIN_LO, SINR_BIN_DB, SINR_BINS = -10.0, 2.0, 25

#: Column name -> (unit, definition, source) for every per-cell-per-period KPI the twin emits.
KPI_DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "DRB.UEThpDl": (
        "kbit/s",
        "mean per-UE DL throughput: volume / scheduled time with data buffered; the step that "
        "empties the buffer is excluded",
        "TS 28.552 5.1.1.3.1",
    ),
    "DRB.UEThpDl.P5": (
        "kbit/s",
        "5th percentile of per-UE DL throughput",
        "TS 28.552 5.1.1.3.1 (percentile: ours)",
    ),
    "DRB.UEThpDl.P50": ("kbit/s", "median per-UE DL throughput", "TS 28.552 5.1.1.3.1 (percentile: ours)"),
    "DRB.UEThpDl.P95": (
        "kbit/s",
        "95th percentile of per-UE DL throughput",
        "TS 28.552 5.1.1.3.1 (percentile: ours)",
    ),
    "DRB.UEThpUl": ("kbit/s", "mean per-UE UL throughput over UEs with data", "TS 28.552 5.1.1.3.3"),
    "DRB.UEThpUl.P5": (
        "kbit/s",
        "5th percentile of per-UE UL throughput",
        "TS 28.552 5.1.1.3.3 (percentile: ours)",
    ),
    "DRB.CellThpDl": ("Mbit/s", "cell DL volume / period", "E2SM-KPM (cell throughput)"),
    "DRB.CellThpUl": ("Mbit/s", "cell UL volume / period", "E2SM-KPM (cell throughput)"),
    "DRB.PdcpSduVolumeDL": ("Mbit", "DL data volume delivered", "TS 28.552 5.1.2.1.1.1"),
    "DRB.PdcpSduVolumeUL": ("Mbit", "UL data volume delivered", "TS 28.552 5.1.2.1.1.2"),
    "RRU.PrbUsedDl": ("%", "mean share of DL PRBs used", "TS 28.552 5.1.1.2.1"),
    "RRU.PrbUsedUl": ("%", "mean share of UL PRBs used", "TS 28.552 5.1.1.2.2"),
    "DRB.MeanActiveUeDl": ("UEs", "mean number of UEs with DL data buffered", "TS 28.552 5.1.1.23.1"),
    "DRB.MeanActiveUeUl": ("UEs", "mean number of UEs with UL data buffered", "TS 28.552 5.1.1.23.2"),
    "RRC.ConnMean": ("UEs", "mean number of connected UEs", "TS 28.552 5.1.1.4.1"),
    "MM.HoExeIntraReq": ("count", "handover executions attempted out of the cell", "TS 28.552 5.1.1.6.1.5"),
    "MM.HoExeIntraSucc": ("count", "successful handover executions out of the cell", "TS 28.552 5.1.1.6.1.6"),
    "mobileai.HoFail": ("count", "handover failures (target below Qout at execution)", "ours"),
    "mobileai.HoPingPong": (
        "count",
        "handovers back to the previous cell within the ping-pong window",
        "ours",
    ),
    "mobileai.Rlf": ("count", "radio link failures (T310 expiry) of the cell's UEs", "TS 38.331 5.3.10"),
    "RRC.ReEstabAtt": (
        "count",
        "RRC re-establishments after RLF or HO failure at the cell",
        "TS 28.552 5.1.1.15.1",
    ),
    "PEE.AvgPower": ("W", "mean input power", "TS 28.552 5.1.1.19.2"),
    "PEE.Energy": ("kWh", "input energy over the period", "TS 28.552 5.1.1.19.3"),
    "mobileai.EnergyJ": ("J", "input energy over the period", "ours (PEE.Energy in J)"),
    "mobileai.SleepRatio": ("0..1", "share of the period in light/deep sleep or off", "TR 38.864"),
    "mobileai.SinrDl.P5": ("dB", "5th percentile of the DL SINR of served UEs (2 dB bins)", "ours"),
    "mobileai.SinrDl.P50": ("dB", "median DL SINR of served UEs (2 dB bins)", "ours"),
    "mobileai.CqiMean": ("0..15", "mean wideband CQI of served UEs", "TS 38.214 5.2.2.1"),
    "mobileai.SessionsNew": ("count", "sessions started", "ours"),
    "mobileai.SessionsBlocked": (
        "count",
        "sessions refused by admission control (GBR need, session cap) or arriving out of service",
        "ours",
    ),
    "mobileai.SessionsDropped": ("count", "sessions lost to RLF", "ours"),
    "DRB.RlcSduDelayDl": (
        "ms",
        "mean DL buffer delay proxy: buffered bits / PF average rate",
        "TS 28.552 5.1.1.1.1 (proxy)",
    ),
}

_SUMS = (
    "dl_bits", "ul_bits", "prb_dl", "prb_ul", "active_dl", "active_ul", "connected", "ho_req", "ho_succ",
    "ho_fail", "ping_pong", "rlf", "reestab", "energy_j", "sleep_s", "cqi_sum", "cqi_n",
    "sessions_new", "sessions_blocked", "sessions_dropped", "delay_sum", "delay_n",
)  # fmt: skip
_ROW = {k: j for j, k in enumerate(_SUMS)}
#: The columns :meth:`PeriodCounters.add_step` adds, in its kernel's order.
_STEP_COLUMNS = (
    "connected", "cqi_sum", "cqi_n", "sessions_new", "sessions_blocked",
    "dl_bits", "ul_bits", "active_dl", "active_ul", "delay_sum", "delay_n",
)  # fmt: skip


class PeriodCounters:
    """Accumulators [C] (and a SINR histogram [C, B]) reset every reporting period."""

    def __init__(self, n_cells: int, n_ues: int, device: torch.device) -> None:
        self.n_cells, self.n_ues, self.device = n_cells, n_ues, device
        self._row_cache: dict[tuple[str, ...], torch.Tensor] = {}
        self.reset()

    def reset(self) -> None:
        z = {"device": self.device, "dtype": torch.float64}
        # one [sums, C] matrix; ``sums[name]`` is a row view of it, so a scatter of several
        # columns lands in one addition
        self._mat = torch.zeros(len(_SUMS), self.n_cells, **z)
        self.sums = {k: self._mat[j] for j, k in enumerate(_SUMS)}
        # CPU: a NumPy view of the same memory, for in-place adds without torch dispatch
        self._mat_np = self._mat.numpy() if self._mat.device.type == "cpu" else None
        self.sinr_hist = torch.zeros((self.n_cells + 1) * SINR_BINS, **z)
        self.ue_dl_bits = torch.zeros(self.n_ues, **z)
        self.ue_dl_active_s = torch.zeros(self.n_ues, **z)
        self.ue_ul_bits = torch.zeros(self.n_ues, **z)
        self.ue_ul_active_s = torch.zeros(self.n_ues, **z)
        self.steps = 0
        self.seconds = 0.0

    def _rows_of(self, names: tuple[str, ...]) -> torch.Tensor:
        rows = self._row_cache.get(names)
        if rows is None:
            rows = torch.tensor([_ROW[k] for k in names], device=self.device)
            self._row_cache[names] = rows
        return rows

    def add_ue_columns(self, cell: torch.Tensor, columns: dict[str, torch.Tensor | None]) -> None:
        """Add several per-UE columns (float or bool; ``None``: 1 per UE, a count) into their
        cells; ``cell`` == n_cells is the "no cell" bin and is dropped.

        Each cell's sum is accumulated in float64 from 0 in UE order, then added to the period's
        counter. On CPU a compiled pass over the stacked float64 columns (no float32 round
        trip), added in place into a NumPy view of the counters; on other devices one
        ``index_add_`` of the stacked columns."""
        names = tuple(columns)
        n = self.n_cells
        if cell.device.type == "cpu":
            seg = cell.numpy()
            weights = np.empty((len(names), seg.shape[0]))
            for j, name in enumerate(names):
                v = columns[name]
                weights[j] = 1.0 if v is None else v.numpy()  # exact cast to float64
            self.add_ue_weights(seg, names, weights)
            return
        rows = self._rows_of(names)
        ones = torch.ones(cell.shape, dtype=torch.float64, device=cell.device)
        vals = torch.stack([ones if columns[k] is None else columns[k].double() for k in names], 1)
        acc = torch.zeros(n + 1, len(names), dtype=torch.float64, device=self.device)
        self._mat.index_add_(0, rows, acc.index_add_(0, cell, vals)[:n].T)

    def add_ue_weights(self, cell: np.ndarray, names: tuple[str, ...], weights: np.ndarray) -> None:
        """:meth:`add_ue_columns` on CPU for columns already stacked: ``weights`` [len(names), n]
        float64 of the UEs in cells ``cell`` [n] (== n_cells: no cell, dropped)."""
        _add_columns(self._mat_np, self._rows_of(names).numpy(), cell, weights)

    def add_ue_totals(
        self,
        dl_bits: torch.Tensor,
        ul_bits: torch.Tensor,
        active_dl: torch.Tensor,
        active_ul: torch.Tensor,
        dt: float,
    ) -> None:
        """Per-UE volumes and active times for the per-UE throughput KPIs."""
        self.ue_dl_bits += dl_bits
        self.ue_ul_bits += ul_bits
        self.ue_dl_active_s += active_dl * dt
        self.ue_ul_active_s += active_ul * dt

    def add_step(
        self,
        *,
        srv: torch.Tensor,
        connected: torch.Tensor,
        ok: torch.Tensor,
        sinr_db: torch.Tensor,
        new_sessions: torch.Tensor,
        blocked: torch.Tensor,
        served_dl: torch.Tensor,
        served_ul: torch.Tensor,
        active_dl: torch.Tensor,
        active_ul: torch.Tensor,
        dl_buffer: torch.Tensor,
        ul_buffer: torch.Tensor,
        avg_dl: torch.Tensor,
        dt: float,
    ) -> None:
        """One step's per-UE counters [U] into the cells ``srv``: connected UEs, their CQI and
        SINR histogram and session starts / blocks (``connected``); volumes, activity and the
        delay proxy of the UEs in service (``ok``); per-UE volumes and active times for the
        throughput KPIs, leaving out the step that empties a buffer (TS 28.552 5.1.1.3: its
        volume and its time), so small bursts do not read as low throughput. ``*_buffer`` are
        the buffers after the step, ``avg_dl`` the PF average rate (delay = buffer / rate).

        On CPU one compiled pass over the UEs; elsewhere the reference below. Same numbers."""
        args = dict(locals())
        del args["self"]
        if srv.device.type == "cpu":
            self._add_step_compiled(**args)
        else:
            self._add_step_reference(**args)

    def _add_step_reference(
        self, *, srv, connected, ok, sinr_db, new_sessions, blocked, served_dl, served_ul, active_dl,
        active_ul, dl_buffer, ul_buffer, avg_dl, dt,
    ) -> None:  # fmt: skip
        none = torch.full_like(srv, self.n_cells)
        cell_or_none = torch.where(connected, srv, none)
        ok_or_none = torch.where(ok, srv, none)
        cqi = linkadapt.sinr_to_cqi(sinr_db)
        delay = dl_buffer / avg_dl.clamp(min=1e3)
        self.add_ue_columns(
            cell_or_none,
            {
                "connected": None,
                "cqi_sum": cqi.float(),
                "cqi_n": None,
                "sessions_new": new_sessions,
                "sessions_blocked": blocked,
            },
        )
        self.add_ue_columns(
            ok_or_none,
            {
                "dl_bits": served_dl,
                "ul_bits": served_ul,
                "active_dl": active_dl,
                "active_ul": active_ul,
                "delay_sum": torch.where(active_dl, delay, torch.zeros_like(delay)),
                "delay_n": active_dl,
            },
        )
        self.add_sinr(cell_or_none, sinr_db)
        keep_dl = (dl_buffer > 0) & ok
        keep_ul = (ul_buffer > 0) & ok
        self.add_ue_totals(
            served_dl * keep_dl, served_ul * keep_ul, active_dl & keep_dl, active_ul & keep_ul, dt
        )

    def _add_step_compiled(
        self, *, srv, connected, ok, sinr_db, new_sessions, blocked, served_dl, served_ul, active_dl,
        active_ul, dl_buffer, ul_buffer, avg_dl, dt,
    ) -> None:  # fmt: skip
        rows = self._rows_of(_STEP_COLUMNS).numpy()
        _add_step_kernel(
            self._mat_np, rows, self.sinr_hist.numpy(), self.ue_dl_bits.numpy(), self.ue_ul_bits.numpy(),
            self.ue_dl_active_s.numpy(), self.ue_ul_active_s.numpy(), linkadapt._np_consts().thr,
            srv.numpy(), connected.numpy(), ok.numpy(), sinr_db.numpy(), new_sessions.numpy(),
            blocked.numpy(), served_dl.numpy(), served_ul.numpy(), active_dl.numpy(), active_ul.numpy(),
            dl_buffer.numpy(), ul_buffer.numpy(), avg_dl.numpy(), np.float32(dt),
        )  # fmt: skip

    def add_cells(self, name: str, values: torch.Tensor) -> None:
        """Add per-cell values [C] to counter ``name`` (float64 sums of the exact values)."""
        if values.device.type == "cpu":
            self._mat_np[_ROW[name]] += values.numpy()
            return
        self.sums[name] += values.double()

    def add_sinr(self, cell: torch.Tensor, sinr_db: torch.Tensor) -> None:
        """Histogram the SINR of UEs per cell (``cell`` == n_cells: not counted)."""
        if cell.device.type == "cpu":  # NumPy: the same float32 binning; counts are exact
            s = sinr_db.numpy()
            b = np.clip(np.floor((s - SINR_BIN_LO) / SINR_BIN_DB), 0, SINR_BINS - 1).astype(np.int64)
            idx = cell.numpy() * SINR_BINS + b
            self.sinr_hist.numpy()[:] += np.bincount(idx, minlength=self.sinr_hist.numel())
            return
        b = ((sinr_db - SINR_BIN_LO) / SINR_BIN_DB).floor().clamp(0, SINR_BINS - 1).long()
        self.sinr_hist.index_add_(0, cell * SINR_BINS + b, torch.ones_like(sinr_db, dtype=torch.float64))

    def kpis(self, serving: torch.Tensor) -> dict[str, torch.Tensor]:
        """KPIs per cell for the period just ended (tensors [C], float64, on the counters' device)."""
        s = self.sums
        secs = max(self.seconds, 1e-9)
        steps = max(self.steps, 1)
        out: dict[str, torch.Tensor] = {}
        dl_tput, ul_tput = self._per_ue_tput(serving)
        out.update(dl_tput)
        out.update(ul_tput)
        out["DRB.CellThpDl"] = s["dl_bits"] / secs / 1e6
        out["DRB.CellThpUl"] = s["ul_bits"] / secs / 1e6
        out["DRB.PdcpSduVolumeDL"] = s["dl_bits"] / 1e6
        out["DRB.PdcpSduVolumeUL"] = s["ul_bits"] / 1e6
        out["RRU.PrbUsedDl"] = 100.0 * s["prb_dl"] / steps
        out["RRU.PrbUsedUl"] = 100.0 * s["prb_ul"] / steps
        out["DRB.MeanActiveUeDl"] = s["active_dl"] / steps
        out["DRB.MeanActiveUeUl"] = s["active_ul"] / steps
        out["RRC.ConnMean"] = s["connected"] / steps
        out["MM.HoExeIntraReq"] = s["ho_req"]
        out["MM.HoExeIntraSucc"] = s["ho_succ"]
        out["mobileai.HoFail"] = s["ho_fail"]
        out["mobileai.HoPingPong"] = s["ping_pong"]
        out["mobileai.Rlf"] = s["rlf"]
        out["RRC.ReEstabAtt"] = s["reestab"]
        out["PEE.AvgPower"] = s["energy_j"] / secs
        out["PEE.Energy"] = s["energy_j"] / 3.6e6
        out["mobileai.EnergyJ"] = s["energy_j"].clone()
        out["mobileai.SleepRatio"] = s["sleep_s"] / secs
        p5, p50 = self._hist_percentiles((0.05, 0.5))
        out["mobileai.SinrDl.P5"] = p5
        out["mobileai.SinrDl.P50"] = p50
        out["mobileai.CqiMean"] = s["cqi_sum"] / s["cqi_n"].clamp(min=1)
        out["mobileai.SessionsNew"] = s["sessions_new"]
        out["mobileai.SessionsBlocked"] = s["sessions_blocked"]
        out["mobileai.SessionsDropped"] = s["sessions_dropped"]
        out["DRB.RlcSduDelayDl"] = 1e3 * s["delay_sum"] / s["delay_n"].clamp(min=1)
        return out

    def _hist_percentiles(self, qs: tuple[float, ...]) -> list[torch.Tensor]:
        h = self.sinr_hist.view(self.n_cells + 1, SINR_BINS)[: self.n_cells]
        total = h.sum(1, keepdim=True)
        cdf = h.cumsum(1) / total.clamp(min=1)
        res = []
        for q in qs:
            b = (cdf < q).sum(1).clamp(max=SINR_BINS - 1)
            val = SINR_BIN_LO + SINR_BIN_DB * (b.double() + 0.5)
            res.append(torch.where(total[:, 0] > 0, val, torch.full_like(val, float("nan"))))
        return res

    def _per_ue_tput(self, serving: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        dl, ul = {}, {}
        for name, bits, act, store, pcts in (
            ("DRB.UEThpDl", self.ue_dl_bits, self.ue_dl_active_s, dl, (5, 50, 95)),
            ("DRB.UEThpUl", self.ue_ul_bits, self.ue_ul_active_s, ul, (5,)),
        ):
            has = (act > 0) & (serving >= 0)
            tput = torch.where(has, bits / act.clamp(min=1e-9) / 1e3, torch.zeros_like(bits))
            cell = torch.where(has, serving, torch.full_like(serving, self.n_cells))
            store[name] = _segment_mean(cell, tput, self.n_cells)
            for p in pcts:
                store[f"{name}.P{p}"] = _segment_quantile(cell, tput, self.n_cells, p / 100.0)
        return dl, ul


def _segment_mean(seg: torch.Tensor, v: torch.Tensor, n: int) -> torch.Tensor:
    total = torch.zeros(n + 1, dtype=torch.float64, device=v.device).index_add_(0, seg, v)
    cnt = torch.zeros(n + 1, dtype=torch.float64, device=v.device).index_add_(0, seg, torch.ones_like(v))
    out = total / cnt.clamp(min=1)
    return torch.where(cnt > 0, out, torch.full_like(out, float("nan")))[:n]


def _segment_quantile(seg: torch.Tensor, v: torch.Tensor, n: int, q: float) -> torch.Tensor:
    """Per-segment quantile (nearest rank) without a Python loop: sort by (segment, value)."""
    order = torch.argsort(seg.double() * 1e12 + v)
    s_sorted = seg[order]
    v_sorted = v[order]
    cnt = torch.bincount(seg, minlength=n + 1)
    start = torch.cumsum(cnt, 0) - cnt
    k = start + torch.clamp((q * (cnt - 1).double()).round().long(), min=0)
    k = k.clamp(max=max(v.numel() - 1, 0))
    out = v_sorted[k] if v.numel() else torch.zeros(n + 1, dtype=torch.float64, device=v.device)
    ok = (cnt > 0) & (s_sorted[k] == torch.arange(n + 1, device=v.device) if v.numel() else cnt > 0)
    return torch.where(ok, out, torch.full_like(out, float("nan")))[:n]


@njit(cache=True)
def _add_columns(mat: np.ndarray, rows: np.ndarray, seg: np.ndarray, weights: np.ndarray) -> None:
    """``mat[rows[j], c] +=`` the sum of ``weights[j, u]`` over the UEs ``u`` of cell ``c``
    (``seg[u]`` == C: no cell, dropped): each cell's sum from 0 in UE order, in float64, as one
    ``numpy.bincount`` per column would compute it."""
    acc = np.zeros((weights.shape[0], mat.shape[1] + 1))
    for j in range(weights.shape[0]):
        for u in range(seg.shape[0]):
            acc[j, seg[u]] += weights[j, u]
    _add_sums(mat, rows, acc)


@njit(cache=True)
def _add_sums(mat: np.ndarray, rows: np.ndarray, acc: np.ndarray) -> None:
    """``mat[rows[j], c] += acc[j, c]`` for the real cells (the last column, "no cell", dropped)."""
    for j in range(rows.shape[0]):
        for c in range(mat.shape[1]):
            mat[rows[j], c] += acc[j, c]


@njit(cache=True)
def _add_step_kernel(mat, rows, hist, ue_dl_bits, ue_ul_bits, ue_dl_s, ue_ul_s, cqi_thr, srv, connected, ok,
                     sinr, new_sessions, blocked, served_dl, served_ul, active_dl, active_ul, dl_buffer,
                     ul_buffer, avg_dl, dt):  # fmt: skip
    """:meth:`PeriodCounters._add_step_reference` in one pass over the UEs: each cell's sums from 0
    in UE order in float64 (as ``add_ue_columns``), CQI as ``linkadapt.sinr_to_cqi``, histogram
    bins and delay in float32 as the reference computes them."""
    n = mat.shape[1]
    acc = np.zeros((rows.shape[0], n + 1))
    n_bins = hist.shape[0] // (n + 1)
    lo, width = np.float32(SINR_BIN_LO), np.float32(SINR_BIN_DB)
    zero, dt64 = np.float32(0.0), np.float64(dt)
    for u in range(srv.shape[0]):
        c = srv[u] if connected[u] else n
        s = sinr[u]
        q = 0
        if not np.isnan(s):
            for t in cqi_thr:
                q += t <= s
        acc[0, c] += 1.0
        acc[1, c] += q
        acc[2, c] += 1.0
        acc[3, c] += new_sessions[u]
        acc[4, c] += blocked[u]
        b = min(max(np.floor((s - lo) / width), zero), np.float32(n_bins - 1))
        hist[c * n_bins + np.int64(b)] += 1.0
        c = srv[u] if ok[u] else n
        acc[5, c] += served_dl[u]
        acc[6, c] += served_ul[u]
        acc[7, c] += active_dl[u]
        acc[8, c] += active_ul[u]
        acc[9, c] += dl_buffer[u] / max(avg_dl[u], np.float32(1e3)) if active_dl[u] else zero
        acc[10, c] += active_dl[u]
        keep_dl = dl_buffer[u] > 0 and ok[u]
        keep_ul = ul_buffer[u] > 0 and ok[u]
        ue_dl_bits[u] += served_dl[u] if keep_dl else zero
        ue_ul_bits[u] += served_ul[u] if keep_ul else zero
        ue_dl_s[u] += dt64 if active_dl[u] and keep_dl else 0.0
        ue_ul_s[u] += dt64 if active_ul[u] and keep_ul else 0.0
    _add_sums(mat, rows, acc)
