"""Energy saving (issue 5): cell sleep / switch-off decisions per reporting period with QoS and
neighbour-coverage constraints (TR 38.864 network energy saving), the load-threshold baseline
operators run today, an RL variant, and the base-station power-model fit on measured data.

Modules: :mod:`.power_fit` (EARTH + TR 38.864 fit to the ITU 5G energy data), :mod:`.policies`
(threshold rule, forecast-driven optimiser; neighbours from :mod:`mobileai.ai4net.topology`),
:mod:`.rl` (PPO with one policy shared across cells), :mod:`.app` (the closed-loop apps
``energy-saver`` and ``energy-threshold``), :mod:`.bench` (closed loop on the twin, open loop on
a KPI export), :mod:`.run` (benchmark orchestration), :mod:`.cli` (commands), :mod:`.io`
(atomic writes).
"""
