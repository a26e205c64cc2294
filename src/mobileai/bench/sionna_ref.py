"""NVIDIA Sionna as the reference for our large-scale radio (TR 38.901 clause 7.4, 7.5, 7.8.1).

Given one of our drops (a :class:`~mobileai.twin.config.Scenario`, its
:class:`~mobileai.twin.layout.Cells` and :class:`~mobileai.twin.ues.UEs`), this module asks
Sionna (``sionna.phy.channel.tr38901``, the PyTorch ``sionna-no-rt`` package) for the coupling
gain of every UE-cell link, so the twin and Sionna can be compared on the *same* UE positions,
heights, indoor states and indoor distances:

    coupling gain = G_BS(θ_LOS, φ_LOS) - (PL_b + PL_O2I + SF)          (dB, omni 0 dBi UE)

- PL_b, the LOS state and the UMa environment height h_E: Sionna's ``UMaScenario`` /
  ``UMiScenario`` / ``RMaScenario`` (its own LOS draw, Table 7.4.2-1, shared by co-sited
  sectors through ``bs_site_ids``);
- SF: Sionna's ``LSPGenerator`` (clause 7.5 steps 1-4: spatially correlated over UEs,
  cross-correlated with the other LSPs);
- PL_O2I: Sionna's low- or high-loss model per UE (Table 7.4.3-2), including its random
  N(0, σ_P) part; our ``d_2D-in`` draws are passed in so the indoor distances match;
- G_BS: Sionna's LOS channel coefficients of each element of the BS ``PanelArray`` (a column of
  M Table 7.3-1 elements, rotated to each sector's boresight by ``bs_orientations``), combined
  with the electrical-tilt weights w_m = exp(-j k cos θ_tilt z_m)/√M: the gain towards the LOS
  direction of each link (:func:`sionna_los_gain_db`).

Wrap-around: Sionna receives, per UE, the nearest of the 7 wrap-around images of every site as
``bs_virtual_loc``, as our :class:`~mobileai.twin.radio.RadioModel` does.

Differences from the twin that remain by design (see ``docs/calibration.md``): Sionna makes its
own random draws (LOS state independent per UE-site link, SF by a Cholesky factor of the exact
spatial correlation, the O2I N(0, σ_P) term) where the twin samples its spatially consistent
fields; in RMa the car penetration loss of clause 7.4.3.2 is switched off
(``in_car=False``) because the twin does not model in-car UEs; below 6 GHz Sionna applies the
legacy UMa/UMi O2I model of Table 7.4.3-3 (20 dB wall loss), which the twin does not.

Sionna is an optional dependency (``pip install .[reference]``); it is imported inside the
functions only. The private ``LSPGenerator._o2i_high_loss`` (sionna-no-rt 2.2.0) is used for
high-loss UEs when a scenario mixes low- and high-loss buildings, since one Sionna scenario
holds a single O2I model, and the private ``ChannelCoefficientsGenerator._step_11_los`` gives
the per-element LOS coefficients (Sionna exposes no composite array gain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mobileai.twin.config import Scenario
from mobileai.twin.layout import Cells
from mobileai.twin.nr import prb_count
from mobileai.twin.ues import UEs

if TYPE_CHECKING:
    from mobileai.twin.calibration import CalibrationResult

#: TR 38.901 parameter-table version passed to Sionna. The twin follows V18.0.0; Sionna's "16.1"
#: tables carry the same path-loss, LOS-probability and O2I formulas, whereas "19.2" changes the
#: IRR-glass loss of the high-loss O2I model (see docs/calibration.md).
DEFAULT_SPEC_VERSION = "16.1"


@dataclass(frozen=True)
class SionnaLinks:
    """Sionna's large-scale link budget for one drop: matrices [U, C], per-UE vectors [U]."""

    coupling_gain_db: torch.Tensor
    pathloss_db: torch.Tensor  # PL_b + PL_O2I + SF
    basic_pathloss_db: torch.Tensor
    o2i_db: torch.Tensor  # 0 for outdoor UEs
    shadow_fading_db: torch.Tensor
    antenna_gain_db: torch.Tensor
    los: torch.Tensor  # Sionna's LOS draw of the outdoor part of each link
    distance_2d_m: torch.Tensor  # to the nearest wrap-around image, as Sionna computed it
    serving: torch.Tensor
    serving_coupling_gain_db: torch.Tensor
    geometry_db: torch.Tensor


def _require_sionna() -> Any:
    try:
        import sionna.phy  # noqa: F401
        from sionna.phy.channel import tr38901
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "the Sionna reference needs the optional dependency: pip install '.[reference]' "
            f"(sionna-no-rt); import failed: {exc}"
        ) from None
    return tr38901


def _transmitters(cells: Cells) -> tuple[torch.Tensor, torch.Tensor]:
    """The cells Sionna models as BSs, and their site ids: one per site when every sector of a
    site has the site's position and height, else every cell."""
    first = torch.full((cells.n_sites,), cells.n, dtype=torch.int64)
    first = first.scatter_reduce(0, cells.site, torch.arange(cells.n), reduce="amin")
    f = first[cells.site]
    co_located = bool(
        torch.equal(cells.x, cells.x[f])
        and torch.equal(cells.y, cells.y[f])
        and torch.equal(cells.height, cells.height[f])
    )
    if co_located:
        return first, torch.arange(cells.n_sites)
    return torch.arange(cells.n), cells.site.clone()


def _cell_to_transmitter(cells: Cells, tx: torch.Tensor) -> torch.Tensor:
    """Index into ``tx`` of the transmitter each cell is modelled by, [C]."""
    if tx.numel() == cells.n:
        return torch.arange(cells.n)
    return cells.site.clone()


def bs_panel_array(
    scenario: Scenario, carrier_hz: float, precision: str = "double", device: str = "cpu"
) -> Any:
    """Sionna's ``PanelArray`` for the scenario's BS: a vertical column of M single-polarised
    (slant 0) elements with the Table 7.3-1 pattern, spacing d_V wavelengths."""
    tr38901 = _require_sionna()
    ant = scenario.bs.antenna
    return tr38901.PanelArray(
        num_rows_per_panel=ant.elements_vertical,
        num_cols_per_panel=1,
        polarization="single",
        polarization_type="V",
        antenna_pattern="38.901" if ant.pattern == "3gpp" else "omni",
        carrier_frequency=carrier_hz,
        element_vertical_spacing=ant.vertical_spacing_wavelengths,
        precision=precision,
        device=device,
    )


def sionna_los_gain_db(
    sn: Any,
    tilt_zenith_deg: torch.Tensor | float,
    bs_index: torch.Tensor | None = None,
    bs_orientations: torch.Tensor | None = None,
) -> torch.Tensor:
    """BS antenna gain (dBi) towards the LOS direction of every link of a Sionna scenario, [C, U].

    Sionna builds the LOS channel coefficient of each BS element m (TR 38.901 eq. 7.5-29, in
    ``ChannelCoefficientsGenerator._step_11_los``): the Table 7.3-1 element field rotated from the
    BS's local frame (``bs_orientations``) to the global one, times the array phase
    exp(j k r̂·d_m) of the ``PanelArray`` element positions. The gain is
    |Σ_m w_m h_m|² with the electrical-tilt weights w_m = exp(-j k cos θ_tilt z_m)/√M of the
    vertical column (the UE is an omni 0 dBi V-polarised element). ``tilt_zenith_deg``: scalar or
    one value per BS.

    ``bs_index`` [C] and ``bs_orientations`` [1, C, 3] evaluate C antennas placed at the scenario's
    BSs ``bs_index`` with their own orientations (sectors of one site share its LOS angles);
    by default the scenario's own BSs and orientations.
    """
    tr38901 = _require_sionna()
    bs_array, ut_array = sn.bs_array, sn.ut_array
    fc = float(sn.carrier_frequency)
    coeff = tr38901.ChannelCoefficientsGenerator(
        fc, bs_array, ut_array, subclustering=False, precision=sn.precision, device=sn.device
    )
    idx = torch.arange(sn.num_bs, device=sn.device) if bs_index is None else bs_index.to(sn.device)
    orient = sn.bs_orientations if bs_orientations is None else bs_orientations.to(sn.device, sn.dtype)
    topology = tr38901.Topology(
        velocities=sn.ut_velocities,
        moving_end="rx",
        los_aoa=torch.deg2rad(sn.los_aoa[:, idx]),
        los_aod=torch.deg2rad(sn.los_aod[:, idx]),
        los_zoa=torch.deg2rad(sn.los_zoa[:, idx]),
        los_zod=torch.deg2rad(sn.los_zod[:, idx]),
        los=sn.los[:, idx],
        distance_3d=sn.distance_3d[:, idx],
        tx_orientations=orient,
        rx_orientations=sn.ut_orientations,
    )
    t0 = torch.zeros(1, dtype=sn.dtype, device=sn.device)
    h = coeff._step_11_los(topology, t0)[0, :, :, 0, 0, :, 0].to(torch.complex128).cpu()  # [C, U, M]
    z = bs_array.ant_pos[:, 2].to(torch.float64).cpu()  # metres, same for every BS (no pitch)
    m = z.shape[0]
    tilt = torch.deg2rad(torch.as_tensor(tilt_zenith_deg, dtype=torch.float64)).reshape(-1, 1)
    wavenumber = 2.0 * math.pi * fc / 299_792_458.0
    w = torch.exp(-1j * wavenumber * torch.cos(tilt) * z[None, :]) / math.sqrt(m)  # [C or 1, M]
    af = (h * w[:, None, :]).sum(-1)
    return 10.0 * torch.log10(torch.clamp(af.abs() ** 2, min=1e-30))


def sionna_links(
    scenario: Scenario,
    cells: Cells,
    ues: UEs,
    *,
    seed: int | None = None,
    spec_version: str = DEFAULT_SPEC_VERSION,
    precision: str = "single",
    device: str = "cpu",
) -> SionnaLinks:
    """Sionna's coupling gain matrix, serving cell and geometry for one of our drops.

    ``seed`` (default: the scenario seed) seeds Sionna's generators; the global torch RNG state
    is restored afterwards, so calling this does not disturb the caller's random stream.
    """
    tr38901 = _require_sionna()
    from sionna.phy import config as sionna_config

    fc_ghz = float(cells.carrier_ghz[0])
    if not bool(torch.all(cells.carrier_ghz == cells.carrier_ghz[0])):
        raise ValueError("the Sionna reference needs all cells on one carrier")
    fc = fc_ghz * 1e9
    kind = scenario.radio.scenario
    n_c, n_u = cells.n, ues.n
    f64 = torch.float64

    rng_state = torch.get_rng_state()
    sionna_config.seed = int(scenario.seed if seed is None else seed)
    try:
        ut_array = tr38901.PanelArray(
            num_rows_per_panel=1,
            num_cols_per_panel=1,
            polarization="single",
            polarization_type="V",
            antenna_pattern="omni",
            carrier_frequency=fc,
            precision=precision,
            device=device,
        )
        bs_array = bs_panel_array(scenario, fc, precision=precision, device=device)
        common = {
            "carrier_frequency": fc,
            "ut_array": ut_array,
            "bs_array": bs_array,
            "direction": "downlink",
            "enable_shadow_fading": scenario.radio.shadow_fading,
            "precision": precision,
            "device": device,
            "spec_version": spec_version,
        }
        o2i_default = "high" if scenario.radio.o2i_model == "high" else "low"
        if kind == "uma":
            sn = tr38901.UMaScenario(o2i_model=o2i_default, **common)
        elif kind == "umi":
            sn = tr38901.UMiScenario(o2i_model=o2i_default, **common)
        else:
            sn = tr38901.RMaScenario(
                average_street_width=scenario.radio.rma_street_width_m,
                average_building_height=scenario.radio.rma_building_height_m,
                **common,
            )

        # Sectors of one site share position, height, LOS state, h_E and LSPs (Sionna shares them
        # through bs_site_ids too), so Sionna gets one BS per site when they are co-located: its
        # LSP spatial correlation costs O(BSs x UEs^2). Per-sector antennas are added below.
        tx, tx_site = _transmitters(cells)
        tx_x, tx_y, tx_h = cells.x.double()[tx], cells.y.double()[tx], cells.height.double()[tx]
        tx_of_cell = _cell_to_transmitter(cells, tx)
        shifts = cells.wrap_shifts.double()
        dx = ues.x.double()[None, :, None] - (tx_x[:, None, None] + shifts[None, None, :, 0])
        dy = ues.y.double()[None, :, None] - (tx_y[:, None, None] + shifts[None, None, :, 1])
        k = (dx * dx + dy * dy).argmin(-1)  # nearest wrap-around image, [T, U]
        vx, vy = tx_x[:, None] + shifts[k, 0], tx_y[:, None] + shifts[k, 1]
        virtual = torch.stack([vx, vy, tx_h[:, None].expand_as(vx)], -1)[None]  # [1, T, U, 3]
        bs_loc = torch.stack([tx_x, tx_y, tx_h], -1)[None]
        ut_loc = torch.stack([ues.x.double(), ues.y.double(), ues.height.double()], -1)[None]
        ant = scenario.bs.antenna
        cell_orient = torch.zeros(1, n_c, 3, dtype=f64)
        cell_orient[0, :, 0] = torch.deg2rad(cells.boresight_deg.double())
        if ant.elements_vertical == 1:
            # a single element is tilted mechanically (Sionna's bearing β = down-tilt)
            cell_orient[0, :, 1] = torch.deg2rad(cells.downtilt_deg.double())
        zeros_ut = torch.zeros(1, n_u, 3, dtype=f64)
        indoor = ues.indoor.clone().bool()[None]
        topo: dict[str, Any] = {
            "ut_loc": ut_loc,
            "bs_loc": bs_loc,
            "ut_orientations": zeros_ut,
            "bs_orientations": torch.zeros(1, tx.numel(), 3, dtype=f64),
            "ut_velocities": zeros_ut,
            "in_state": indoor,
            "bs_virtual_loc": virtual,
            "bs_site_ids": tx_site,
            "distance_2d_in": ues.d2d_in.double()[None],
            "los": "random",
        }
        if kind == "rma":
            topo["in_car"] = torch.zeros(1, n_u, dtype=torch.bool)
        sn.set_topology(**topo)
        gen = tr38901.LSPGenerator(sn)
        gen.topology_updated_callback()
        lsp = gen()
        cpu = tx_of_cell.cpu()
        pl_b = sn.basic_pathloss[0].to(f64).cpu()[cpu]  # [C, U]
        o2i = lsp.pathloss[0].to(f64).cpu()[cpu] - pl_b
        if scenario.radio.o2i_model == "mixed":
            high = ues.o2i_high.bool()[None, :]
            o2i_high = gen._o2i_high_loss()[0].to(f64).cpu()[cpu]
            o2i = torch.where(high, o2i_high, o2i)
        if scenario.radio.shadow_fading:
            sf = 10.0 * torch.log10(lsp.sf[0].to(f64).cpu()[cpu])
        else:
            sf = torch.zeros_like(pl_b)
        los = sn.outdoor_los[0].cpu()[cpu]
        d2d = sn.distance_2d[0].to(f64).cpu()[cpu]
        electrical = cells.downtilt_deg.double() if ant.elements_vertical > 1 else torch.zeros(n_c, dtype=f64)
        gain = sionna_los_gain_db(sn, 90.0 + electrical, bs_index=tx_of_cell, bs_orientations=cell_orient)
        if ant.pattern == "omni":
            gain = gain + ant.max_gain_dbi  # Sionna's omni element is 0 dBi
    finally:
        torch.set_rng_state(rng_state)

    pathloss = pl_b + o2i + sf
    cg = (gain - pathloss).T.contiguous()  # [U, C]

    ptx = cells.tx_power_dbm.double()
    n_re = torch.tensor(
        [
            12 * prb_count(float(b), scenario.radio.subcarrier_spacing_khz)
            for b in cells.bandwidth_mhz.tolist()
        ],
        dtype=f64,
    )
    rsrp = ptx[None, :] - 10.0 * torch.log10(n_re)[None, :] + cg
    serving = rsrp.argmax(1)
    rows = torch.arange(n_u)
    rx_mw = torch.pow(10.0, (ptx[None, :] + cg) / 10.0)
    s_mw = rx_mw[rows, serving]
    interf = torch.clamp(rx_mw.sum(1) - s_mw, min=1e-30)
    return SionnaLinks(
        coupling_gain_db=cg,
        pathloss_db=pathloss.T.contiguous(),
        basic_pathloss_db=pl_b.T.contiguous(),
        o2i_db=o2i.T.contiguous(),
        shadow_fading_db=sf.T.contiguous(),
        antenna_gain_db=gain.T.contiguous(),
        los=los.T.contiguous(),
        distance_2d_m=d2d.T.contiguous(),
        serving=serving,
        serving_coupling_gain_db=cg[rows, serving],
        geometry_db=10.0 * torch.log10(s_mw / interf),
    )


def run_sionna_calibration(
    scenario: str,
    carrier_ghz: float,
    drops: int,
    seed: int = 0,
    spec_version: str = DEFAULT_SPEC_VERSION,
    on_drop: Any = None,
) -> CalibrationResult:
    """Sionna on the same drops as :func:`mobileai.twin.calibration.run_calibration`.

    Drop ``d`` uses the scenario seeded ``seed + d``: the same cells, UE positions, heights,
    indoor states, indoor distances and O2I building types as the twin's drop ``d``.
    """
    from mobileai.twin.calibration import CalibrationResult, calibration_scenario
    from mobileai.twin.layout import build_layout
    from mobileai.twin.ues import drop_ues

    cg: list[np.ndarray] = []
    geo: list[np.ndarray] = []
    for d in range(drops):
        sc = calibration_scenario(scenario, carrier_ghz, seed=seed + d)
        cells = build_layout(sc)
        ues = drop_ues(sc, cells, torch.Generator().manual_seed(sc.seed))
        links = sionna_links(sc, cells, ues, spec_version=spec_version)
        cg.append(links.serving_coupling_gain_db.numpy())
        geo.append(links.geometry_db.numpy())
        if on_drop is not None:
            on_drop(d)
    return CalibrationResult(
        scenario=scenario,
        carrier_ghz=carrier_ghz,
        drops=drops,
        coupling_gain_db=np.concatenate(cg),
        geometry_sinr_db=np.concatenate(geo),
    )
