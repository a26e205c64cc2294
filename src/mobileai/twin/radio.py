"""The link budget: coupling gain, RSRP, serving cell and SINR for every UE, in batch.

Per UE and cell (TR 38.901 V18.0.0 clause 7 with the large-scale procedure of 7.5 steps 1-4
and clause 7.8.1 metrics):

    coupling gain = -(PL_b + SF + PL_O2I) + G_BS(θ, φ) + G_UE            (dB)
    RSRP          = P_tx - 10 log10(12 N_RB) + coupling gain               (dBm per RE, TS 38.215 5.1.1)
    SINR          = S / (Σ_co-channel interferers · load + N0·B·NF)
    geometry      = S / Σ_co-channel interferers                           (the RAN1 calibration metric)

- LOS state and shadow fading are per UE-site link, spatially correlated (``fields``), so
  co-sited sectors share them, as in the standard.
- Wrap-around: each UE sees each cell at the nearest of its images (``layout``).
- Work is chunked over UEs: memory is O(chunk x cells), time O(UEs x cells); no Python loop
  over UEs or cells. Runs in float32 on CPU or CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mobileai.twin import propagation as prop
from mobileai.twin.antenna import bs_gain_db
from mobileai.twin.config import Scenario
from mobileai.twin.fields import SinusoidField
from mobileai.twin.layout import Cells
from mobileai.twin.nr import THERMAL_NOISE_DBM_PER_HZ, prb_count
from mobileai.twin.ues import UEs

#: Sinusoids per correlated field (marginal close to Gaussian; see fields.py).
FIELD_TERMS = 48
#: Soft LOS values closer than this to 0 or 1 count as pure NLOS / LOS (no second shadowing draw).
SOFT_EDGE = 1e-4


@dataclass(frozen=True)
class RadioResult:
    """Per-UE radio state [U] plus the K strongest cells [U, K]."""

    serving: torch.Tensor
    coupling_gain_db: torch.Tensor
    rsrp_dbm: torch.Tensor
    sinr_db: torch.Tensor
    geometry_db: torch.Tensor
    pathloss_db: torch.Tensor  # serving link, incl. SF and O2I
    antenna_gain_db: torch.Tensor
    los: torch.Tensor  # serving link (outdoor part)
    distance_2d_m: torch.Tensor
    candidates: torch.Tensor
    candidate_rsrp_dbm: torch.Tensor
    coupling_gain_matrix: torch.Tensor | None = None  # [U, C] when requested


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when present)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class RadioModel:
    """Large-scale radio of a scenario's cells; evaluate it for any set of UEs."""

    def __init__(
        self,
        scenario: Scenario,
        cells: Cells,
        device: str | torch.device | None = "cpu",
        seed: int | None = None,
    ) -> None:
        self.sc = scenario
        self.device = resolve_device(device)
        self.dtype = torch.float32
        self.cells = cells.to(self.device)
        seed = scenario.seed if seed is None else seed
        g = torch.Generator().manual_seed(seed * 1_000_003 + 17)
        params = prop.SHADOWING[scenario.radio.scenario]
        n_sites = cells.n_sites
        corr = torch.tensor(params.corr_m, dtype=torch.float64).expand(n_sites, 3).contiguous()
        self._sf_field = SinusoidField(corr, FIELD_TERMS, g, self.device, self.dtype)
        los_corr = torch.full((n_sites,), params.los_corr_m, dtype=torch.float64)
        self._los_field = SinusoidField(los_corr, FIELD_TERMS, g, self.device, self.dtype)
        self._sigma = torch.tensor(params.sigma_db, dtype=self.dtype, device=self.device)
        # soft LOS state: width of the transition in the LOS field's units (see _soft_los)
        width = scenario.radio.los_transition_m
        self._los_eps = (self._los_field.gradient_rms() * width / 2.0).to(self.device, self.dtype)
        self._soft = width > 0
        self._he_offsets = torch.rand(n_sites, generator=g, dtype=torch.float64).to(self.device, self.dtype)
        c = self.cells
        f32 = {"device": self.device, "dtype": self.dtype}
        self._site_h = _site_mean(c.height, c.site, n_sites).to(**f32)
        scs = scenario.radio.subcarrier_spacing_khz
        n_re = torch.tensor([12 * prb_count(float(b), scs) for b in c.bandwidth_mhz.tolist()], **f32)
        self._rs_power_dbm = c.tx_power_dbm.to(**f32) - 10.0 * torch.log10(n_re)
        self._noise_dbm = (
            THERMAL_NOISE_DBM_PER_HZ
            + 10.0 * torch.log10(c.bandwidth_mhz.to(**f32) * 1e6)
            + scenario.radio.ue_noise_figure_db
        )
        self._cx, self._cy = c.x.to(**f32), c.y.to(**f32)
        self._sx, self._sy = c.site_x.to(**f32), c.site_y.to(**f32)
        # Sectors at their site's centre (the hex grid) share its wrap-around image: compute the
        # nearest image once per site and index it per cell, instead of again for every cell.
        self._cosited = bool(
            torch.equal(self._cx, self._sx[c.site]) and torch.equal(self._cy, self._sy[c.site])
        )
        self._shifts = c.wrap_shifts.to(**f32)
        self._h_bs = c.height.to(**f32)
        self._bore = c.boresight_deg.to(**f32)
        self._tilt = c.downtilt_deg.to(**f32)
        self.tilt_version = 0  # bumped by every set_tilt: gains computed before are stale
        self._ptx = c.tx_power_dbm.to(**f32)
        self._fc = c.carrier_ghz.to(**f32)

    # ------------------------------------------------------------------ geometry helpers
    def _nearest_image(
        self, ux: torch.Tensor, uy: torch.Tensor, px: torch.Tensor, py: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """dx, dy from points p ([P], or [m, P] per UE) to UEs u at the nearest wrap-around
        image: [m, P]."""
        px = px if px.dim() == 2 else px[None, :]
        py = py if py.dim() == 2 else py[None, :]
        dx = ux[:, None, None] - (px[..., None] + self._shifts[None, None, :, 0])
        dy = uy[:, None, None] - (py[..., None] + self._shifts[None, None, :, 1])
        if self._shifts.shape[0] == 1:
            return dx[..., 0], dy[..., 0]
        k = (dx * dx + dy * dy).argmin(-1, keepdim=True)
        return dx.gather(-1, k)[..., 0], dy.gather(-1, k)[..., 0]

    def _shadowing(
        self,
        sdx: torch.Tensor,
        sdy: torch.Tensor,
        s_idx: torch.Tensor,
        cls: torch.Tensor,
        sd2d: torch.Tensor,
        h_ut: torch.Tensor,
    ) -> torch.Tensor:
        """Shadow fading (dB) of UE-site links of class ``cls``: sigma of Table 7.4.1-1 / 7.5-6
        times the class's spatially correlated field at the UE (zero when switched off)."""
        if not self.sc.radio.shadow_fading:
            return torch.zeros_like(sd2d)
        sigma = self._sigma[cls]
        if self.sc.radio.scenario == "rma":
            rma_los = prop.rma_los_sigma_db(sd2d, self._fc.mean(), self._site_h[s_idx], h_ut)
            sigma = torch.where(cls == prop.LOS, rma_los, sigma)
        return sigma * self._sf_field.sample(sdx, sdy, (s_idx.expand_as(cls), cls))

    def set_tilt(self, downtilt_deg: torch.Tensor) -> None:
        """Change the cells' electrical down-tilt (actions, tilt-error faults)."""
        self._tilt = downtilt_deg.to(self.device, self.dtype).clone()
        self.tilt_version += 1

    def links(
        self, ues: UEs, cell_active: torch.Tensor | None = None, cells: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """UE-cell link quantities for a (small enough) set of UEs.

        ``cells`` None: every cell, tensors [U, C] (site-level fields computed once per site);
        ``cells`` [C']: those cells for every UE, tensors [U, C'];
        ``cells`` [U, K]: those cells per UE (each UE's candidates), tensors [U, K].
        """
        sc = self.sc
        scen = sc.radio.scenario
        f32 = {"device": self.device, "dtype": self.dtype}
        ux, uy = ues.x.to(**f32), ues.y.to(**f32)
        h_ut = ues.height.to(**f32)[:, None]
        indoor = ues.indoor.to(self.device)[:, None]
        d_in = ues.d2d_in.to(**f32)[:, None]
        site = self.cells.site
        if cells is None or cells.dim() == 1:
            c_1d = torch.arange(self.cells.n, device=self.device) if cells is None else cells.to(self.device)
            sites_1d, local = torch.unique(site[c_1d], return_inverse=True)
            s_idx = sites_1d[None, :]
            c_idx = c_1d[None, :]

            def to_cell(t: torch.Tensor) -> torch.Tensor:
                return t[:, local]

            sdx, sdy = self._nearest_image(ux, uy, self._sx[sites_1d], self._sy[sites_1d])
        else:
            c_idx = cells.to(self.device)
            s_idx = site[c_idx]

            def to_cell(t: torch.Tensor) -> torch.Tensor:
                return t

            sdx, sdy = self._nearest_image(ux, uy, self._sx[s_idx], self._sy[s_idx])

        # site-level: LOS state and shadow fading, shared by co-sited sectors
        sd2d = torch.clamp(torch.hypot(sdx, sdy), min=1.0)
        sd2d_out = torch.clamp(sd2d - d_in, min=1.0)
        p_los = prop.los_probability(scen, sd2d_out, h_ut)
        g_los = self._los_field.sample(sdx, sdy, (s_idx,))
        if self._soft:
            s_los = _soft_los(p_los, g_los, self._los_eps[s_idx])
            site_los = s_los >= 0.5
        else:
            u_los = 0.5 * (1.0 + torch.erf(g_los / math.sqrt(2.0)))
            site_los = u_los < p_los
        cls = torch.where(indoor, prop.O2I, torch.where(site_los, prop.LOS, prop.NLOS))
        sf_site = self._shadowing(sdx, sdy, s_idx, cls, sd2d, h_ut)
        if self._soft:
            # links inside a transition also need the other state's shadowing (a small share)
            mixed = ~indoor & (s_los > SOFT_EDGE) & (s_los < 1.0 - SOFT_EDGE)
            other = torch.where(cls == prop.LOS, prop.NLOS, prop.LOS)
            sf_other = torch.zeros_like(sf_site)
            if bool(mixed.any()):
                s_full, h_full = s_idx.expand_as(cls), h_ut.expand_as(cls)
                sf_other[mixed] = self._shadowing(
                    sdx[mixed], sdy[mixed], s_full[mixed], other[mixed], sd2d[mixed], h_full[mixed]
                )
            # shadowing of the LOS and the NLOS branch of each link
            sf_l = torch.where(mixed & (cls != prop.LOS), sf_other, sf_site)
            sf_n = torch.where(mixed & (cls != prop.NLOS), sf_other, sf_site)
        u1 = torch.remainder(ues.u_he.to(**f32)[:, None] + self._he_offsets[s_idx], 1.0)

        # cell-level geometry, path loss and antenna gain
        if self._cosited:
            dx, dy = to_cell(sdx), to_cell(sdy)
        else:
            dx, dy = self._nearest_image(ux, uy, self._cx[c_idx], self._cy[c_idx])
        d2d = torch.clamp(torch.hypot(dx, dy), min=1.0)
        h_bs = self._h_bs[c_idx]
        fc = self._fc[c_idx]
        dz = h_bs - h_ut
        d3d = torch.sqrt(d2d * d2d + dz * dz)
        los = to_cell(site_los)
        if scen == "uma":
            u1c = to_cell(u1)
            h_e = prop.uma_environment_height(d2d, h_ut.expand_as(d2d), u1c, torch.remainder(u1c * 97.0, 1.0))
        else:
            h_e = 1.0
        rma_h, rma_w = sc.radio.rma_building_height_m, sc.radio.rma_street_width_m
        o2i = prop.o2i_penetration_db(fc, ues.o2i_high.to(self.device)[:, None], d_in)
        o2i = o2i + prop.o2i_sigma_db(ues.o2i_high.to(self.device)[:, None]) * ues.o2i_dev.to(**f32)[:, None]
        o2i = torch.where(indoor, o2i, torch.zeros_like(o2i))
        if self._soft:
            pl_los = prop.pathloss_los(scen, d2d, d3d, fc, h_bs, h_ut, h_e, rma_h)
            pl_nlos = torch.maximum(pl_los, prop.pathloss_nlos_prime(scen, d3d, fc, h_bs, h_ut, rma_h, rma_w))
            pl = _mix_losses(to_cell(s_los), pl_los + to_cell(sf_l), pl_nlos + to_cell(sf_n)) + o2i
        else:
            pl_b = prop.basic_pathloss(scen, los, d2d, d3d, fc, h_bs, h_ut, h_e, rma_h, rma_w)
            pl = pl_b + to_cell(sf_site) + o2i
        theta = 90.0 + torch.rad2deg(torch.atan2(dz, d2d))
        phi = torch.rad2deg(torch.atan2(dy, dx)) - self._bore[c_idx]
        gain = bs_gain_db(sc.bs.antenna, theta, phi, self._tilt[c_idx])
        cg = gain - pl
        rsrp = self._rs_power_dbm[c_idx] + cg
        if cell_active is not None:
            active = cell_active.to(self.device)[c_idx]
            rsrp = torch.where(active, rsrp, torch.full_like(rsrp, -math.inf))
        return {
            "coupling_gain_db": cg,
            "rsrp_dbm": rsrp,
            "pathloss_db": pl,
            "gain_db": gain,
            "los": los,
            "d2d": d2d,
        }

    # ------------------------------------------------------------------ public
    def evaluate(
        self,
        ues: UEs,
        chunk: int = 8192,
        candidates: int = 8,
        keep_matrix: bool = False,
        cell_load: torch.Tensor | None = None,
        cell_active: torch.Tensor | None = None,
    ) -> RadioResult:
        """Serving cell, coupling gain, RSRP, SINR and candidates for all UEs.

        ``cell_load`` in [0, 1] scales each cell's interference (default: full load);
        ``cell_active`` False removes a cell (no signal, no interference).
        """
        n_c = self.cells.n
        k = min(candidates, n_c)
        if cell_load is None:
            load = torch.ones(n_c, device=self.device, dtype=self.dtype)
        else:
            load = cell_load.to(self.device, self.dtype)
        if cell_active is not None:
            load = load * cell_active.to(self.device, self.dtype)
        outs: dict[str, list[torch.Tensor]] = {}
        for start in range(0, ues.n, chunk):
            part = _slice(ues, start, start + chunk)
            lk = self.links(part, cell_active)
            cg, rsrp = lk["coupling_gain_db"], lk["rsrp_dbm"]
            serving = rsrp.argmax(1)
            rows = torch.arange(serving.shape[0], device=self.device)
            rx_mw = torch.pow(10.0, (self._ptx[None, :] + cg) / 10.0)
            same = self._fc[None, :] == self._fc[serving][:, None]
            s_mw = rx_mw[rows, serving]
            interf = (rx_mw * load[None, :] * same).sum(1) - s_mw * load[serving]
            interf = torch.clamp(interf, min=1e-30)
            noise_mw = torch.pow(10.0, self._noise_dbm[serving] / 10.0)
            top = torch.topk(rsrp, k, dim=1)
            vals = {
                "serving": serving,
                "coupling_gain_db": cg[rows, serving],
                "rsrp_dbm": rsrp[rows, serving],
                "sinr_db": 10.0 * torch.log10(s_mw / (interf + noise_mw)),
                "geometry_db": 10.0 * torch.log10(s_mw / interf),
                "pathloss_db": lk["pathloss_db"][rows, serving],
                "antenna_gain_db": lk["gain_db"][rows, serving],
                "los": lk["los"][rows, serving],
                "distance_2d_m": lk["d2d"][rows, serving],
                "candidates": top.indices,
                "candidate_rsrp_dbm": top.values,
            }
            if keep_matrix:
                vals["coupling_gain_matrix"] = cg
            for name, v in vals.items():
                outs.setdefault(name, []).append(v)
        return RadioResult(**{name: torch.cat(v) for name, v in outs.items()})


def _soft_los(p_los: torch.Tensor, g_los: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Soft LOS state S_LOS in [0, 1] (TR 38.901 7.6.3.3 allows a soft state in place of the
    hard LOS/NLOS switch, so that a moving UE's channel changes continuously).

    The hard state compares the spatially consistent Gaussian variable g (LOS-state field,
    correlation distance of Table 7.6.3.1-2) with the threshold Φ⁻¹(p_LOS): LOS where g < Φ⁻¹(p).
    We blur that comparison: S = Φ((Φ⁻¹(p_LOS) − g) / ε), with ε the field's RMS gradient times
    half the configured transition width, so a UE walking across a boundary at the field's RMS
    rate of change goes from S = 0.16 to 0.84 over ``radio.los_transition_m``. S >= 0.5 exactly
    where the hard state is LOS, and E[S] stays close to p_LOS (our construction: the standard
    does not fix the transition shape at this level of abstraction).
    """
    z = (torch.special.ndtri(p_los.clamp(0.0, 1.0)) - g_los) / eps
    return torch.special.ndtr(z)


def _mix_losses(s_los: torch.Tensor, loss_los_db: torch.Tensor, loss_nlos_db: torch.Tensor) -> torch.Tensor:
    """Loss of a soft-LOS link: its LOS and NLOS channels combined in power,
    sqrt(S) H_LOS + sqrt(1 - S) H_NLOS (TR 38.901 7.6.3.3), i.e.
    -10 log10(S 10^(-L_LOS/10) + (1 - S) 10^(-L_NLOS/10)), evaluated in the log domain."""
    k = math.log(10.0) / 10.0
    a = torch.log(s_los) - loss_los_db * k
    b = torch.log1p(-s_los) - loss_nlos_db * k
    return -torch.logaddexp(a, b) / k


def _site_mean(values: torch.Tensor, site: torch.Tensor, n_sites: int) -> torch.Tensor:
    """Mean of per-cell values over each site's cells."""
    total = torch.zeros(n_sites, dtype=values.dtype, device=values.device).index_add_(0, site, values)
    count = torch.bincount(site, minlength=n_sites).to(values.dtype)
    return total / count


def _slice(ues: UEs, a: int, b: int) -> UEs:
    return UEs(**{name: getattr(ues, name)[a:b] for name in ues.__dataclass_fields__})
