"""The compiled scheduling pass (``schedule_pass``) computes exactly what the step's reference
composition of ``linkadapt.peak_rate_bps`` and ``scheduler.pf_share`` computes (``Twin._pf_active``):
served bits, resources used per cell x slice and the GBR flows' PRB need, on random states that
reach every branch (CQI 0 and no-link SINRs, empty buffers, tiny PF averages, slice caps, GBR
flows above and below the admission limit, UL power limited or not, UEs in both directions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mobileai.twin.actions import SetSliceShare
from mobileai.twin.config import Scenario
from mobileai.twin.engine import Twin


def _twin(load: float = 1.0) -> Twin:
    sc = Scenario.model_validate(
        {
            "name": "small",
            "seed": 11,
            "layout": {"sites": 7, "isd_m": 200, "wrap_around": False},
            "ues": {"per_sector": 40, "indoor_ratio": 0.3},
            "traffic": {"load_scale": load},
            "time": {"step_ms": 100, "duration_s": 60},
        }
    )
    return Twin(sc)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_compiled_pass_is_bit_identical_to_the_reference(seed: int) -> None:
    tw = _twin()
    tw.apply([SetSliceShare(cell=c, shares={"embb": 0.5, "urllc": 0.3, "mmtc": 0.2}) for c in (0, 4, 9)])
    tw.step()  # caches built (serving slots, received powers)
    g = torch.Generator().manual_seed(seed)
    u = tw.n_ues

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    tr = tw.traffic
    tr.dl_buffer_bits = torch.where(rand(u) < 0.2, torch.zeros(u), 10 ** (3 + 5 * rand(u)))
    tr.ul_buffer_bits = torch.where(rand(u) < 0.4, torch.zeros(u), 10 ** (3 + 5 * rand(u)))
    tr.gfbr_bps = torch.where(rand(2 * u) < 0.3, 10 ** (4 + 3.5 * rand(2 * u)), torch.zeros(2 * u))
    tw.avg_dl = torch.where(rand(u) < 0.1, torch.full((u,), 0.5), 10 ** (3 + 5 * rand(u)))
    tw.avg_ul = 10 ** (3 + 5 * rand(u))
    tw.serving = torch.randint(0, tw.n_cells, (u,), generator=g)
    sinr_dl = -15 + 45 * rand(u)
    sinr_dl[:5] = -math.inf  # no link
    sinr_dl[5:8] = -12.0  # below CQI 1
    # the UL SINR comes from the power control state: path loss, PRB share, noise rise
    tw.cand_cg = -60 - 80 * rand(u, tw.k)
    tw._n_ul = torch.randint(0, 30, (tw.n_cells + 1,), generator=g).float()
    tw._ul_iot_db = 6 * rand(tw.n_cells)
    tdd = 0.5 + 0.3 * rand(u)
    sched_dl, sched_ul = rand(u) < 0.6, rand(u) < 0.5
    ref = tw._pf_active(sched_dl, sched_ul, sinr_dl, tdd, 0.1)
    ref_need = tw._gbr_need.clone()
    got = tw._pf_compiled(sched_dl, sched_ul, sinr_dl, tdd, 0.1)
    for name, a, b in (
        ("served", ref[0], got[0]),
        ("used", ref[1], got[1]),
        ("gbr_need", ref_need, tw._gbr_need),
    ):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a, b), f"{name}: {int((a != b).sum())} of {a.numel()} differ"
    served, used = ref
    assert bool((served > 0).any()) and bool((used > 0).any()) and bool((ref_need > 0).any())
    assert not bool((served[:u][~sched_dl] != 0).any()) and not bool((served[u:][~sched_ul] != 0).any())


def test_a_twin_run_is_the_same_with_either_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """KPIs of a busy run (load 3) with slice caps applied mid-run, compiled pass vs reference."""
    runs = []
    for compiled in (True, False):
        tw = _twin(load=3.0)
        if not compiled:
            monkeypatch.setattr(tw, "_pf_compiled", tw._pf_active)
        for step in range(400):
            if step == 100:
                tw.apply(
                    [SetSliceShare(cell=c, shares={"embb": 0.4, "urllc": 0.4, "mmtc": 0.2}) for c in range(6)]
                )
            tw.step()
        tw._close_period()
        runs.append(tw)
    a, b = runs
    for name in ("avg_dl", "avg_ul", "dl_util", "ul_util", "serving"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for col, v in a.reports[-1].columns.items():
        assert np.array_equal(v, b.reports[-1].columns[col], equal_nan=True), col
    assert a.reports[-1].columns["DRB.PdcpSduVolumeDL"].sum() > 0
