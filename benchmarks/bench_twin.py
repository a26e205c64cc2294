"""Twin-step benchmark: dense-urban 100 ms steps, CRRM on the same layout, RL env vs mobile-env.

    python benchmarks/bench_twin.py [--steps 300] [--warmup 50] [--crrm-steps 100]
                                    [--env-copies 1,256,1024] [--env-seconds 20] [--threads N]
                                    [--no-crrm] [--no-mobile-env] [--device cpu] [--json]

Runs :func:`mobileai.bench.twin.run_twin_bench` (the same numbers as ``mobileai bench twin``);
results and the machine they were taken on: docs/benchmarks.md, section "Twin step".
"""

from __future__ import annotations

import sys

from mobileai.bench.twin import main

if __name__ == "__main__":
    sys.exit(main())
