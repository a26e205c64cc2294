"""The twin benchmark runs end to end and reports what docs/benchmarks.md documents.

No timing assertions: speed targets live in the benchmark, not in tests. CRRM and mobile-env are
references (optional): when one is missing here the result must say so instead of a number.
"""

from __future__ import annotations

import json

import pytest

from mobileai.bench.twin import format_twin_bench, mobile_env_like, reference_missing, run_twin_bench


def test_run_twin_bench_tiny_returns_documented_structure() -> None:
    res = run_twin_bench(
        steps=3, warmup=1, crrm_steps=2, env_copies=[1, 2], env_sizes=["small"], env_policies=["random"],
        env_step_ms=[100, 1000], env_seconds=0.2, threads=1, command="pytest",
    )  # fmt: skip
    json.dumps(res)  # JSON-serialisable, as `mobileai bench twin --json` prints it
    assert set(res) >= {"machine", "command", "twin", "crrm", "ours_over_crrm", "mobile_env", "vector_env",
                        "vs_mobile_env", "vs_mobile_env_1s_steps", "targets"}  # fmt: skip
    assert res["command"] == "pytest" and res["machine"]["cores"] >= 1
    t = res["twin"]
    assert "skipped" not in t, t
    assert (t["cells"], t["ues"], t["step_ms"], t["timed_steps"]) == (57, 2850, 100.0, 3)
    for key in ("median_ms", "mean_ms", "p95_ms", "steps_per_s", "x_real_time", "projected_24h_wall_s",
                "process_peak_mb"):  # fmt: skip
        assert t[key] > 0, key
    assert t["projected_24h_wall_s"] > 864_000 * t["min_ms"] / 1e3 * 0.99
    tg = res["targets"]
    assert tg["step_mean_under_4ms"] == (t["mean_ms"] < 4.0)
    assert tg["step_median_under_4ms"] == (t["median_ms"] < 4.0)
    assert tg["day_under_1h_projected"] == (t["projected_24h_wall_s"] < 3600.0)
    c = res["crrm"]
    if reference_missing("crrm"):
        assert "not installed" in c["skipped"] and res["ours_over_crrm"] is None
        assert tg["not_slower_than_crrm"] is None
    else:
        assert "skipped" not in c, c
        assert (c["cells"], c["ues"]) == (57, 2850) and c["moved_per_step"] > 0
        assert res["ours_over_crrm"] == t["median_ms"] / c["median_ms"]
        assert tg["not_slower_than_crrm"] == (res["ours_over_crrm"] <= 1.0)
    (row1, row2, row1s, row2s) = res["vector_env"]["small"]
    # 100 ms radio steps (10 per 1 s decision), then mobile-env's resolution (1 s: one per decision)
    for b, row, step_ms, per_decision in ((1, row1, 100, 10), (2, row2, 100, 10), (1, row1s, 1000, 1),
                                          (2, row2s, 1000, 1)):  # fmt: skip
        assert "skipped" not in row, row
        assert (
            row["policy"] == "random"
            and row["copies"] == b
            and row["step_ms"] == step_ms
            and row["cells_per_copy"] == 3
            and row["ues_per_copy"] == 5
        )
        assert row["twin_cells"] == 3 * b and row["radio_steps_per_decision"] == per_decision
        assert (
            row["radio_steps_per_s"] == pytest.approx(per_decision * row["env_steps_per_s"])
            and row["env_steps_per_s"] > 0
        )
    me = res["mobile_env"]["small"]
    if reference_missing("mobile_env"):
        assert "not installed" in me["skipped"] and res["vs_mobile_env"]["small"] == {"random": None}
        assert res["vs_mobile_env_1s_steps"]["small"] == {"random": None}
        assert res["targets"]["vector_env_100x_mobile_env"] is None
    else:
        assert (me["stations"], me["ues"]) == (3, 5) and me["env_steps_per_s"] > 0
        best = max(row1["env_steps_per_s"], row2["env_steps_per_s"])
        assert res["vs_mobile_env"]["small"] == {"random": best / me["env_steps_per_s"]}
        best = max(row1s["env_steps_per_s"], row2s["env_steps_per_s"])
        assert res["vs_mobile_env_1s_steps"]["small"] == {"random": best / me["env_steps_per_s"]}
        assert isinstance(res["targets"]["vector_env_100x_mobile_env"], bool)
        assert isinstance(res["targets"]["vector_env_100x_mobile_env_1s_steps"], bool)
    assert res["targets"]["vector_env_100x_mobile_env_hold"] is None  # hold was not run
    assert res["targets"]["vector_env_100x_mobile_env_hold_1s_steps"] is None
    text = format_twin_bench(res)
    assert "dense-urban" in text and "1000 ms steps random B=" in text and "1 s radio steps" in text


def test_references_can_be_left_out() -> None:
    res = run_twin_bench(steps=1, warmup=0, crrm=False, mobile_env=False, env_copies=[], threads=1)
    assert res["crrm"] == {"skipped": "not requested"} and res["ours_over_crrm"] is None
    assert all(v == {"skipped": "not requested"} for v in res["mobile_env"].values())
    env_targets = {
        "vector_env_100x_mobile_env",
        "vector_env_100x_mobile_env_hold",
        "vector_env_100x_mobile_env_1s_steps",
        "vector_env_100x_mobile_env_hold_1s_steps",
    }
    step_targets = {"step_mean_under_4ms", "step_median_under_4ms", "day_under_1h_projected"}
    assert set(res["targets"]) == env_targets | step_targets | {"not_slower_than_crrm"}
    # the twin ran: its targets are judged; nothing to compare with, so the rest are not
    assert all(isinstance(res["targets"][k], bool) for k in step_targets)
    assert all(res["targets"][k] is None for k in env_targets | {"not_slower_than_crrm"})
    assert "skipped" in format_twin_bench(res)


def test_mobile_env_sized_scenarios_match_its_sizes() -> None:
    from mobileai.twin.layout import build_layout
    from mobileai.twin.ues import ue_count

    for size, cells, ues in (("small", 3, 5), ("medium", 7, 15)):
        sc = mobile_env_like(size)
        lay = build_layout(sc)
        assert (lay.n, ue_count(sc, lay)) == (cells, ues)
