"""The energy benchmark's rule settings and its equal-QoS comparison (issue 5, item 3)."""

from __future__ import annotations

import pytest

from mobileai.ai4net.energy.run import _targets_met, equal_qos, parse_sweep, rule_config, sweep_name
from mobileai.errors import UserError


def _c(saved: float, traffic: float, p5: float) -> dict[str, float]:
    return {"energy_saved": saved, "traffic_loss": traffic, "p5_tput_loss": p5}


def test_sweep_parsing_and_names():
    assert parse_sweep("20:50, 30:60.5") == ((20.0, 50.0), (30.0, 60.5))
    assert parse_sweep(None) == () and parse_sweep("") == ()
    assert sweep_name((30.0, 60.5)) == "threshold@30:60.5"
    for bad in ("20", "20:50:1", "a:b"):
        with pytest.raises(UserError, match="--rule-sweep"):
            parse_sweep(bad)


def test_rule_config_maps_off_on_to_the_layer_or_cell_thresholds():
    lay = rule_config(True, (25.0, 55.0))
    assert (lay.layer_sleep_below_pct, lay.layer_wake_above_pct, lay.sleep_state) == (25.0, 55.0, "off")
    cell = rule_config(False, (5.0, 30.0))
    assert (cell.sleep_below_pct, cell.wake_neighbour_above_pct, cell.sleep_state) == (
        5.0,
        30.0,
        "deep_sleep",
    )
    assert rule_config(True, None).layer_sleep_below_pct == 40.0  # the vendor default
    with pytest.raises(UserError, match="layer_wake_above_pct"):
        rule_config(True, (20.0, 101.0))


def test_equal_qos_picks_the_most_saving_rule_no_worse_than_ours():
    ours = _c(0.20, 0.005, 0.01)
    rules = {
        "threshold": _c(0.25, 0.09, -0.1),  # saves more, loses more traffic: not equal QoS
        "threshold@20:50": _c(0.10, 0.004, 0.0),
        "threshold@10:40": _c(0.05, 0.001, -0.02),
        "threshold@30:60": _c(0.15, 0.005, 0.02),  # p5 worse than ours
    }
    eq = equal_qos(ours, rules)
    assert eq["rule"] == "threshold@20:50" and eq["qualifying"] == ["threshold@10:40", "threshold@20:50"]
    assert eq["ratio"] == pytest.approx(2.0)
    met = _targets_met(ours, rules["threshold"], eq)
    assert met["vs_threshold"] and met["traffic_loss"] and not met["energy_saved"]
    # no setting reaches ours' QoS: no ratio, and the default rule decides (it loses more traffic)
    none = equal_qos(ours, {"threshold": rules["threshold"]})
    assert none["rule"] is None and none["ratio"] is None
    assert not _targets_met(ours, rules["threshold"], none)["vs_threshold"]


def test_bench_seed_option_is_range_checked_before_any_run():
    from typer.testing import CliRunner

    from mobileai.cli import app

    res = CliRunner().invoke(app, ["bench", "energy", "--seed", "-1", "--hours", "0.1", "--json"])
    assert isinstance(res.exception, UserError) and "--seed" in str(res.exception)  # main(): exit 2
