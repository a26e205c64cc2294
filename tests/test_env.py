"""Gymnasium envs on the twin: API conformance, shapes, actions reaching the twin, batching, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from mobileai.errors import UserError
from mobileai.twin.config import Scenario
from mobileai.twin.energy import CellState
from mobileai.twin.env import FEATURE_NAMES, NetworkEnv, NetworkVectorEnv

F = len(FEATURE_NAMES)


def tiny(**over) -> Scenario:
    """One 3-sector site, 15 UEs: fast enough for many resets."""
    base = {
        "name": "tiny",
        "seed": 5,
        "radio": {"scenario": "uma", "carrier_ghz": 3.5, "bandwidth_mhz": 20, "subcarrier_spacing_khz": 30},
        "layout": {"sites": 1, "isd_m": 300, "wrap_around": False},
        "ues": {"per_sector": 5, "indoor_ratio": 0.3},
        "time": {"step_ms": 100, "report_period_s": 10, "start_hour": 20, "radio_update_ms": 200,
                 "candidate_refresh_s": 1},
        "traffic": {"load_scale": 5.0},
        "ran": {"candidates": 3},
    }  # fmt: skip
    sc = Scenario.model_validate(base)
    return sc.with_updates(**over) if over else sc


def small() -> Scenario:
    """Seven 3-sector sites, 42 UEs: neighbours to hand over to."""
    return tiny().with_updates(
        name="small", layout={"sites": 7}, ues={"per_sector": 2}, ran={"candidates": 8}
    )


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead


def test_check_env_passes_for_every_control() -> None:
    for control in ("energy", "coverage", "mobility"):
        env = NetworkEnv(tiny(), decision_s=0.5, episode_s=2.0, control=control, warmup_s=0.0)
        check_env(env, skip_render_check=True)


def test_observation_shape_dtype_features_and_episode_length() -> None:
    env = NetworkEnv(small(), decision_s=1.0, episode_s=3.0)
    obs, info = env.reset(seed=1)
    c = env.twin.n_cells
    assert c == 21
    assert obs.shape == (c, F) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert env.action_space.shape == (c,) and np.all(env.action_space.nvec == 4)
    # every cell is active at reset; time of day is the same for every cell
    assert np.all(obs[:, FEATURE_NAMES.index("active")] == 1)
    tod = obs[:, FEATURE_NAMES.index("tod_sin") :]
    assert np.all(tod == tod[0]) and abs(float(np.hypot(*tod[0])) - 1) < 1e-5
    assert set(info["window"]) >= {"dl_bits", "energy_j", "sessions_blocked", "rlf"}
    assert info["window"]["energy_j"].shape == (c,)
    trunc = [env.step(env.noop_action)[3] for _ in range(3)]
    assert trunc == [False, False, True]
    with pytest.raises(RuntimeError):
        env.step(env.noop_action)


def test_deep_sleep_lowers_power_and_moves_the_ues() -> None:
    env = NetworkEnv(small(), decision_s=1.0, episode_s=10.0)
    env.reset(seed=2)
    *_, info_on = env.step(env.noop_action)
    sleep = env.noop_action
    sleep[:9] = 2  # three of the seven sites to deep sleep
    obs, _, _, _, info_sleep = env.step(sleep)
    p = FEATURE_NAMES.index("power")
    assert info_sleep["reward_terms"]["power_share"] < info_on["reward_terms"]["power_share"] - 0.15
    assert np.all(obs[:9, FEATURE_NAMES.index("deep_sleep")] == 1)
    assert np.all(obs[:9, p] < 0.05) and np.all(obs[9:, p] > 0.3)
    assert np.all(env.twin.state[:9].numpy() == int(CellState.DEEP_SLEEP))
    assert info_sleep["window"]["connected"][:9].sum() < info_on["window"]["connected"][:9].sum()
    # the actions went through Twin.apply: logged and reversible
    assert len(env.twin.action_log) == 9 and all(r.applied for r in env.twin.action_log)


def test_coverage_and_mobility_actions_move_their_parameters_within_ranges() -> None:
    env = NetworkEnv(tiny(), decision_s=0.5, episode_s=10.0, control="coverage", power_range_db=(-2.0, 0.0))
    env.reset(seed=0)
    tilt0, p0 = env.twin.tilt_deg.clone(), env.twin.tx_power_dbm.clone()
    a = env.noop_action
    a[0] = (2, 0)  # cell 0: tilt +1, power -1
    for _ in range(3):
        env.step(a)
    assert float(env.twin.tilt_deg[0]) == pytest.approx(float(tilt0[0]) + 3)
    assert float(env.twin.tx_power_dbm[0]) == pytest.approx(float(p0[0]) - 2)  # clipped at -2 dB
    assert torch.equal(env.twin.tilt_deg[1:], tilt0[1:])
    env = NetworkEnv(tiny(), decision_s=0.5, episode_s=10.0, control="mobility")
    env.reset(seed=0)
    h0 = float(env.twin.hysteresis_db[1])
    a = env.noop_action
    a[1] = 0
    for _ in range(int(h0) + 2):
        env.step(a)
    assert float(env.twin.hysteresis_db[1]) == 0.0 and float(env.twin.hysteresis_db[0]) == h0


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="control"):
        NetworkEnv(tiny(), control="speed")
    with pytest.raises(UserError, match="decision_s"):
        NetworkEnv(tiny(), decision_s=0.25)
    with pytest.raises(UserError, match="episode_s"):
        NetworkEnv(tiny(), decision_s=1.0, episode_s=2.5)
    env = NetworkEnv(tiny(), decision_s=0.5, episode_s=1.0, warmup_s=0.0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.full(3, 4))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(4, np.int64))


def _rollout(env, seed: int, n: int, actions_seed: int = 0) -> list:
    rng = np.random.default_rng(actions_seed)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(n):
        a = rng.integers(0, env.action_space.nvec)
        obs, r, *_ = env.step(a)
        out += [obs, np.asarray(r)]
    return out


def test_same_seed_same_trajectory_other_seed_differs() -> None:
    mk = lambda: NetworkEnv(small(), decision_s=0.5, episode_s=5.0)  # noqa: E731
    a, b = _rollout(mk(), 3, 4), _rollout(mk(), 3, 4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    c = _rollout(mk(), 4, 4)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_typed_and_tensor_action_paths_agree() -> None:
    """The vector env sets cell parameters as tensors; the single env sends typed actions."""
    for control in ("energy", "coverage", "mobility"):
        kw = {"decision_s": 0.5, "episode_s": 5.0, "control": control}
        single = NetworkEnv(small(), **kw)
        vec = NetworkVectorEnv(1, small(), **kw)
        rng = np.random.default_rng(1)
        o1, _ = single.reset(seed=7)
        o2, _ = vec.reset(seed=7)
        np.testing.assert_array_equal(o1, o2[0])
        for _ in range(5):
            a = rng.integers(0, single.action_space.nvec)
            o1, r1, *_ = single.step(a)
            o2, r2, *_ = vec.step(a[None])
            np.testing.assert_array_equal(o1, o2[0], err_msg=control)
            assert r1 == r2[0]
        assert len(single.twin.action_log) > 0 and len(vec.twin.action_log) == 0


def test_vector_env_batches_copies_and_autoresets_together() -> None:
    env = NetworkVectorEnv(3, tiny(), decision_s=0.5, episode_s=1.0)
    assert env.twin.copies == 3 and env.twin.n_cells == 9
    obs, info = env.reset(seed=11)
    assert obs.shape == (3, 3, F) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert info["window"]["dl_bits"].shape == (3, 3)
    assert env.action_space.shape == (3, 3)
    # the copies are different networks (own UE drops and traffic)
    drops = env.twin.mobility.x.reshape(3, -1)
    assert not torch.equal(drops[0], drops[1]) and not torch.equal(drops[1], drops[2])
    acts = np.zeros((3, 3), np.int64)
    acts[1, 0] = 2  # only copy 1 puts a cell to sleep
    obs, rew, term, trunc, info = env.step(acts)
    assert rew.shape == (3,) and term.shape == (3,) and trunc.shape == (3,)
    assert not trunc.any() and not term.any()
    state = env.twin.state.reshape(3, 3)
    assert int(state[1, 0]) == int(CellState.DEEP_SLEEP) and int(state[0, 0]) == int(state[2, 0]) == 0
    assert obs[1, 0, FEATURE_NAMES.index("deep_sleep")] == 1
    assert obs[0, 0, FEATURE_NAMES.index("deep_sleep")] == 0
    obs, rew, term, trunc, info = env.step(acts)
    assert trunc.all() and not term.any()  # shared clock: all copies end together
    t_end = float(info["t_s"][0])
    # NEXT_STEP autoreset: the action is ignored, reward 0, a new episode on the same networks
    # (same seed, cell types) with every copy's UEs dropped anew inside its own cells
    x_before, types = env.twin.mobility.x.clone(), env.twin.cell_type.clone()
    obs2, rew2, term2, trunc2, info2 = env.step(np.full((3, 3), 3))
    assert np.all(rew2 == 0) and not trunc2.any() and not term2.any()
    assert float(info2["t_s"][0]) < t_end and int(info2["seed"][0]) == 11
    assert np.all(info2["episode"] == 1) and np.all(info2["decision"] == 0)
    assert torch.equal(env.twin.cell_type, types) and not torch.equal(env.twin.mobility.x, x_before)
    assert np.all(obs2[..., FEATURE_NAMES.index("active")] == 1)
    assert env.observation_space.contains(obs2) and len(env.twin.action_log) == 0
    assert bool((env.twin.serving // 3 == env.twin._copy_of_ue).all())  # each UE in its copy
    # an explicit reset() rebuilds with the next seed
    _, info3 = env.reset()
    assert int(info3["seed"][0]) == 11 + 3 and np.all(info3["episode"] == 0)


def test_vector_env_same_seed_same_trajectory() -> None:
    mk = lambda: NetworkVectorEnv(2, tiny(), decision_s=0.5, episode_s=5.0, control="coverage")  # noqa: E731
    a, b = _rollout(mk(), 9, 3), _rollout(mk(), 9, 3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_one_second_radio_steps_one_step_per_decision() -> None:
    """mobile-env's time resolution: ``time.step_ms = 1000`` and 1 s decisions give one radio
    step per env step; the window, observations and rewards stay consistent with it."""
    sc = small().with_updates(time={"step_ms": 1000, "radio_update_ms": 1000, "candidate_refresh_s": 5})
    env = NetworkVectorEnv(2, sc, decision_s=1.0, episode_s=4.0, control="energy", warmup_s=0.0)
    assert env._core.steps_per_decision == 1
    env.reset(seed=3)
    for i in range(4):
        obs, rew, _, trunc, info = env.step(env.noop_action)
        assert env.observation_space.contains(obs) and np.isfinite(rew).all()
        assert np.all(info["window_s"] == pytest.approx(1.0))
        assert float(info["t_s"][0]) == pytest.approx(i + 1)
        assert env.twin.steps == i + 1
        # "connected" is per nominal UEs of a cell: summed over a copy's cells, the share connected
        share = obs[..., FEATURE_NAMES.index("connected")].sum(1) / env._core.cells_per_copy
        assert np.all((share > 0.5) & (share <= 1.0 + 1e-6))
    assert trunc.all()
