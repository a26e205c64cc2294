"""Link-budget invariants of the radio core."""

from __future__ import annotations

import math

import pytest
import torch

from mobileai.twin.calibration import calibration_scenario
from mobileai.twin.layout import build_layout
from mobileai.twin.radio import RadioModel
from mobileai.twin.ues import UEs, drop_ues


@pytest.fixture(scope="module")
def drop():
    sc = calibration_scenario("uma", 6.0, seed=11)
    cells = build_layout(sc)
    ues = drop_ues(sc, cells, torch.Generator().manual_seed(11))
    return sc, cells, ues


def test_serving_cell_is_the_strongest_and_sinr_below_geometry(drop) -> None:
    sc, cells, ues = drop
    res = RadioModel(sc, cells).evaluate(ues, keep_matrix=True)
    assert torch.equal(res.serving, res.coupling_gain_matrix.argmax(1))
    assert torch.equal(res.candidates[:, 0], res.serving)
    assert torch.all(res.candidate_rsrp_dbm[:, :-1] >= res.candidate_rsrp_dbm[:, 1:])
    assert torch.all(res.sinr_db <= res.geometry_db + 1e-4)
    # RSRP = P_tx - 10log10(12 N_RB) + coupling gain; 44 dBm over 106 PRBs
    offset = 44.0 - 10 * torch.log10(torch.tensor(12.0 * 106))
    assert torch.allclose(res.rsrp_dbm, res.coupling_gain_db + offset, atol=1e-3)


def test_chunking_does_not_change_results(drop) -> None:
    sc, cells, ues = drop
    model = RadioModel(sc, cells)
    a = model.evaluate(ues, chunk=10_000)
    b = model.evaluate(ues, chunk=37)
    assert torch.equal(a.serving, b.serving)
    assert torch.allclose(a.sinr_db, b.sinr_db, atol=1e-4)


def test_same_seed_same_radio(drop) -> None:
    sc, cells, ues = drop
    a = RadioModel(sc, cells).evaluate(ues)
    b = RadioModel(sc, cells).evaluate(ues)
    assert torch.equal(a.coupling_gain_db, b.coupling_gain_db)


def test_switching_a_cell_off_moves_its_ues_and_lowers_interference(drop) -> None:
    sc, cells, ues = drop
    model = RadioModel(sc, cells)
    base = model.evaluate(ues)
    victim = int(base.serving.mode().values)
    active = torch.ones(cells.n, dtype=torch.bool)
    active[victim] = False
    after = model.evaluate(ues, cell_active=active)
    assert not torch.any(after.serving == victim)
    others = base.serving != victim
    assert torch.all(after.geometry_db[others] >= base.geometry_db[others] - 1e-4)


def test_lower_load_raises_sinr(drop) -> None:
    sc, cells, ues = drop
    model = RadioModel(sc, cells)
    full = model.evaluate(ues)
    half = model.evaluate(ues, cell_load=torch.full((cells.n,), 0.5))
    assert torch.all(half.sinr_db >= full.sinr_db - 1e-4)
    assert (half.sinr_db - full.sinr_db).median() > 1.0


def test_shadow_fading_off_gives_deterministic_mean_path(drop) -> None:
    sc, cells, ues = drop
    no_sf = sc.with_updates(radio={"shadow_fading": False, "o2i_model": "low"})
    res = RadioModel(no_sf, cells).evaluate(ues)
    assert torch.isfinite(res.coupling_gain_db).all()
    std_sf = RadioModel(sc, cells).evaluate(ues).coupling_gain_db.std()
    assert res.coupling_gain_db.std() < std_sf


def test_candidate_pairs_match_the_full_matrix(drop) -> None:
    sc, cells, ues = drop
    model = RadioModel(sc, cells)
    full = model.links(ues)["coupling_gain_db"]
    idx = torch.randint(0, cells.n, (ues.n, 8), generator=torch.Generator().manual_seed(0))
    pair = model.links(ues, cells=idx)["coupling_gain_db"]
    assert torch.equal(full.gather(1, idx), pair)


def test_tilt_change_moves_the_gain(drop) -> None:
    sc, cells, ues = drop
    model = RadioModel(sc, cells)
    before = model.links(ues)["coupling_gain_db"]
    model.set_tilt(torch.full((cells.n,), 30.0))
    after = model.links(ues)["coupling_gain_db"]
    assert not torch.equal(before, after)


def _walk(n: int = 4000, step_m: float = 0.25) -> UEs:
    """One outdoor UE walking a straight 1 km line in small steps (as n UEs)."""
    x = torch.linspace(-500.0, -500.0 + n * step_m, n, dtype=torch.float64)
    z = torch.zeros(n, dtype=torch.float64)
    return UEs(
        x=x,
        y=z + 37.0,
        height=z + 1.5,
        indoor=torch.zeros(n, dtype=torch.bool),
        d2d_in=z,
        o2i_high=torch.zeros(n, dtype=torch.bool),
        o2i_dev=z,
        u_he=z + 0.3,
    )


def test_soft_los_limits_the_jump_of_a_walking_ue() -> None:
    """TR 38.901 7.6.3.3: with the soft LOS state a UE's loss changes continuously as it walks
    across LOS/NLOS boundaries (the hard state jumps by the ~20 dB LOS/NLOS gap)."""
    hard_sc = calibration_scenario("uma", 3.5, seed=5)
    soft_sc = hard_sc.with_updates(radio={"los_transition_m": 10.0})
    walk = _walk()
    jumps = {}
    for name, sc in (("hard", hard_sc), ("soft", soft_sc)):
        cg = RadioModel(sc, build_layout(sc)).links(walk)["coupling_gain_db"]
        # the cells within 15 dB of the best one (the ones handover looks at; far cells also
        # jump where their nearest wrap-around image changes)
        near = cg >= cg.max(1, keepdim=True).values - 15.0
        step = (cg[1:] - cg[:-1]).abs()
        jumps[name] = float(torch.where(near[1:] & near[:-1], step, torch.zeros_like(step)).max())
    assert jumps["hard"] > 10.0  # the hard state flips somewhere along 1 km for some site
    assert jumps["soft"] < jumps["hard"] / 3


def test_soft_los_state_and_loss_mixing_closed_forms() -> None:
    from mobileai.twin.radio import _mix_losses, _soft_los

    p = torch.tensor([0.0, 0.2, 0.5, 0.9, 1.0])
    g = torch.tensor([0.3, -1.0, 0.01, 1.2, 2.0])
    s = _soft_los(p, g, torch.full_like(p, 1e-6))
    hard = (0.5 * (1 + torch.erf(g / 2**0.5)) < p).float()
    assert torch.equal(s, hard)  # a vanishing width is the hard state of 7.6.3.1
    # S >= 0.5 exactly where the hard state is LOS, for any width
    wide = _soft_los(p, g, torch.full_like(p, 0.7))
    assert torch.equal(wide >= 0.5, hard.bool())
    l_los, l_nlos = torch.tensor([90.0, 90.0, 90.0]), torch.tensor([110.0, 110.0, 110.0])
    mixed = _mix_losses(torch.tensor([1.0, 0.0, 0.5]), l_los, l_nlos)
    half = torch.tensor(-10 * math.log10(0.5 * 10 ** (-9.0) + 0.5 * 10 ** (-11.0)))
    assert torch.allclose(mixed, torch.stack([l_los[0], l_nlos[0], half]), atol=1e-4)
