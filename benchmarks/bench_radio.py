"""Radio-core benchmark: 57 cells x N UEs coupling loss + SINR, time and peak memory, vs Sionna.

    python benchmarks/bench_radio.py [--sizes 570,5700,57000,570000] [--sionna-sizes 100,300,1000]
                                     [--repeats 3] [--device cpu]

Prints the result of :func:`mobileai.bench.radio.run_radio_bench` as JSON (the same numbers as
``mobileai bench radio --json``); results and the machine they were taken on: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json

from mobileai.bench.radio import DEFAULT_SIONNA_SIZES, DEFAULT_SIZES, run_radio_bench


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated UE counts")
    p.add_argument(
        "--sionna-sizes",
        default=",".join(map(str, DEFAULT_SIONNA_SIZES)),
        help="UE counts for Sionna ('' skips Sionna)",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions per size (best is kept)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = p.parse_args()

    def ints(text: str) -> list[int]:
        return [int(s) for s in text.split(",") if s.strip()]

    print(json.dumps(run_radio_bench(ints(a.sizes), ints(a.sionna_sizes), a.repeats, a.device), indent=2))


if __name__ == "__main__":
    main()
