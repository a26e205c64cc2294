"""Link-budget invariants of the radio core."""

from __future__ import annotations

import pytest
import torch

from mobileai.twin.calibration import calibration_scenario
from mobileai.twin.layout import build_layout
from mobileai.twin.radio import RadioModel
from mobileai.twin.ues import drop_ues


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
