"""The radio benchmark runs end to end and reports what docs/benchmarks.md documents.

No timing assertions: speed targets live in the benchmark, not in tests.
"""

from __future__ import annotations

import json

from mobileai.bench.radio import format_radio_bench, run_radio_bench, sionna_estimated_mb


def test_run_radio_bench_tiny_sizes_returns_documented_structure() -> None:
    res = run_radio_bench([57, 570], [], repeats=1, command="pytest")
    json.dumps(res)  # JSON-serialisable, as `mobileai bench radio --json` prints it
    assert set(res) >= {"machine", "command", "scenario", "ours", "sionna", "speedup_at", "targets"}
    assert res["machine"]["cores"] >= 1 and res["machine"]["torch"]
    assert res["command"] == "pytest"
    assert [r["ues"] for r in res["ours"]] == [57, 570]
    for row in res["ours"]:
        assert "skipped" not in row, row
        assert row["cells"] == 57
        for key in ("seconds", "ues_per_s", "process_peak_mb", "drop_seconds"):
            assert row[key] > 0, (key, row)
        assert row["peak_mb"] >= 0  # the increment over the baseline can round to 0 for tiny sizes
        assert row["process_peak_mb"] >= row["peak_mb"]
        # shadow fading is on and has the TR 38.901 UMa magnitude (4 / 6 / 7 dB; loose bounds,
        # the field is sampled at few independent places in a small drop)
        assert all(1.0 < s < 12.0 for s in row["sf_std_db"].values() if s is not None)
    assert res["sionna"] == [] and res["speedup_at"] == {}
    # 5,700 and 570,000 UEs and Sionna were not run: targets are unknown, not False
    assert res["targets"] == {"5700_under_0.5s": None, "570000_under_8GB": None, "100x_sionna_at_1000": None}
    text = format_radio_bench(res)
    assert "570" in text and "not run" in text


def test_sionna_sizes_over_the_memory_cap_are_skipped_not_run() -> None:
    n = 5_000
    assert sionna_estimated_mb(n) > 10_240
    res = run_radio_bench([], [n], repeats=1, sionna_mem_cap_mb=10_240)
    (row,) = res["sionna"]
    assert row["ues"] == n and "exceeds" in row["skipped"]
    assert "seconds" not in row and res["speedup_at"] == {}
    assert "skipped" in format_radio_bench(res)
