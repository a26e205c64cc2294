"""UE mobility, batched over all UEs (no Python loop over UEs).

Models (outdoor UEs; indoor UEs stay where they were dropped):

- ``static``: nobody moves.
- ``random_waypoint``: walk at the UE's speed to a uniform waypoint in the network area, pause
  (exponential, mean ``pause_s``), pick the next one (Johnson & Maltz 1996; the usual RWP).
- ``gauss_markov``: velocity v_t = α v_{t-1} + (1-α) v̄ + sqrt(1-α²) σ w_t per second
  (Liang & Haas 1999), reflected at the edge of the area.
- ``street_grid``: Manhattan model (ETSI TR 101 112 / 3GPP TR 36.885 urban grid): movement along
  streets every ``street_spacing_m``; at each crossing go straight (1/2) or turn (1/4 each side).
- ``trajectories``: given positions (CSV ``ue_id,t_s,x_m,y_m``) interpolated linearly in time;
  UEs without a trajectory stay put.

Speed classes come from ``mobility.speed_mix_kmh`` (TR 38.913 / TR 36.873 use 3, 30 and
120 km/h). Shadowing and LOS state stay spatially consistent as UEs move because they are
functions of position (``fields``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from mobileai.errors import UserError
from mobileai.twin.config import Scenario
from mobileai.twin.layout import Cells
from mobileai.twin.ues import UEs, sample_positions


class Mobility:
    """Positions and motion state of all UEs; :meth:`step` advances them by ``dt``."""

    def __init__(
        self,
        sc: Scenario,
        cells: Cells,
        ues: UEs,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> None:
        self.cfg = sc.mobility
        self.sc = sc
        self.cells = cells
        self.g = generator
        self.device = torch.device(device)
        n = ues.n
        self.n = n
        self.x = ues.x.to(self.device, torch.float32).clone()
        self.y = ues.y.to(self.device, torch.float32).clone()
        x0, x1, y0, y1 = cells.drop_box
        if cells.drop_kind == "hex":
            ext = float(torch.hypot(cells.site_x, cells.site_y).max()) + cells.isd_m / math.sqrt(3.0)
            x0, x1, y0, y1 = -ext, ext, -ext, ext
        self.box = (x0, x1, y0, y1)
        speeds = torch.tensor(list(self.cfg.speed_mix_kmh.keys()), dtype=torch.float64)
        shares = torch.tensor(list(self.cfg.speed_mix_kmh.values()), dtype=torch.float64)
        klass = torch.multinomial(shares, n, replacement=True, generator=generator)
        moving = ~ues.indoor
        if self.cfg.model == "static":
            moving = torch.zeros(n, dtype=torch.bool)
        self.speed = torch.where(moving, speeds[klass] / 3.6, torch.zeros(n, dtype=torch.float64)).to(
            self.device, torch.float32
        )
        self.moving = (self.speed > 0).to(self.device)
        self.pause = torch.zeros(n, device=self.device)
        self.vx = torch.zeros(n, device=self.device)
        self.vy = torch.zeros(n, device=self.device)
        if self.cfg.model == "random_waypoint":
            self.wx, self.wy = self._waypoints(n)
        elif self.cfg.model == "gauss_markov":
            ang = 2 * math.pi * torch.rand(n, generator=generator)
            self.vx = (self.speed.cpu() * torch.cos(ang)).to(self.device)
            self.vy = (self.speed.cpu() * torch.sin(ang)).to(self.device)
        elif self.cfg.model == "street_grid":
            self._init_street_grid()
        elif self.cfg.model == "trajectories":
            assert self.cfg.trajectories_file is not None
            self._load_trajectories(Path(self.cfg.trajectories_file))
        self.t = 0.0

    # ------------------------------------------------------------------ helpers
    def _rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.g).to(self.device)

    def _waypoints(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = sample_positions(self.sc, self.cells, n, self.g)
        return x.to(self.device, torch.float32), y.to(self.device, torch.float32)

    def _init_street_grid(self) -> None:
        s = self.cfg.street_spacing_m
        # snap moving UEs onto the nearest street, heading along it (±x or ±y)
        horizontal = self._rand(self.n) < 0.5
        sign = torch.where(self._rand(self.n) < 0.5, -1.0, 1.0)
        ys = torch.round(self.y / s) * s
        xs = torch.round(self.x / s) * s
        self.x = torch.where(self.moving & ~horizontal, xs, self.x)
        self.y = torch.where(self.moving & horizontal, ys, self.y)
        self.vx = torch.where(horizontal, sign * self.speed, torch.zeros_like(self.speed))
        self.vy = torch.where(horizontal, torch.zeros_like(self.speed), sign * self.speed)

    def _load_trajectories(self, path: Path) -> None:
        src = f"mobility.trajectories_file {path}"
        if not path.is_file():
            raise UserError(f"{src}: does not exist")
        rows: list[tuple[int, float, float, float]] = []
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            need = {"ue_id", "t_s", "x_m", "y_m"}
            if not reader.fieldnames or not need <= {h.strip() for h in reader.fieldnames}:
                raise UserError(f"{src}: needs columns ue_id,t_s,x_m,y_m")
            for i, r in enumerate(reader, start=2):
                try:
                    row = (int(r["ue_id"]), float(r["t_s"]), float(r["x_m"]), float(r["y_m"]))
                except (TypeError, ValueError):
                    raise UserError(
                        f"{src}: row {i}: ue_id must be an integer and t_s,x_m,y_m numbers"
                    ) from None
                if not all(math.isfinite(v) for v in row[1:]):
                    raise UserError(f"{src}: row {i}: values must be finite")
                if not 0 <= row[0] < self.n:
                    raise UserError(f"{src}: row {i}: ue_id {row[0]} out of range 0..{self.n - 1}")
                rows.append(row)
        if not rows:
            raise UserError(f"{src}: no rows")
        rows.sort(key=lambda r: (r[0], r[1]))
        data = torch.tensor(rows, dtype=torch.float64)
        self.traj_ue = data[:, 0].long()
        self.traj_t, self.traj_x, self.traj_y = data[:, 1], data[:, 2], data[:, 3]
        self.has_traj = torch.zeros(self.n, dtype=torch.bool)
        self.has_traj[self.traj_ue] = True
        self.moving = self.has_traj.to(self.device)

    # ------------------------------------------------------------------ stepping
    def step(self, dt: float) -> None:
        """Advance every UE by ``dt`` seconds."""
        self.t += dt
        model = self.cfg.model
        if model == "static":
            return
        if model == "random_waypoint":
            self._step_rwp(dt)
        elif model == "gauss_markov":
            self._step_gauss_markov(dt)
        elif model == "street_grid":
            self._step_grid(dt)
        else:
            self._step_trajectories()

    def _step_rwp(self, dt: float) -> None:
        # NumPy views on CPU: the same float32 arithmetic, cheaper per operation
        xp = _NUMPY if self.device.type == "cpu" else _TORCH
        x, y, wx, wy, speed, pause, moving = (
            xp.view(t) for t in (self.x, self.y, self.wx, self.wy, self.speed, self.pause, self.moving)
        )
        dx, dy = wx - x, wy - y
        dist = xp.clamp_min(xp.hypot(dx, dy), 1e-6)
        paused = pause > 0
        travel = xp.where(paused, xp.f32(0.0), speed * xp.f32(dt))
        arrive = (travel >= dist) & moving & ~paused
        frac = xp.clamp_max(travel / dist, 1.0)
        self.x = xp.tensor(x + dx * frac)
        self.y = xp.tensor(y + dy * frac)
        self.pause = xp.tensor(xp.clamp_min(pause - xp.f32(dt), 0.0))
        if bool(arrive.any()):
            idx = torch.as_tensor(arrive, device=self.device).nonzero().squeeze(1)
            nx, ny = self._waypoints(int(idx.numel()))
            self.wx[idx], self.wy[idx] = nx, ny
            mean_pause = self.cfg.pause_s
            if mean_pause > 0:
                u = torch.rand(int(idx.numel()), generator=self.g).to(self.device)
                self.pause[idx] = -mean_pause * torch.log1p(-u)

    def _step_gauss_markov(self, dt: float) -> None:
        a = self.cfg.gauss_markov_alpha**dt
        sigma = self.speed * 0.5
        w = torch.randn(2, self.n, generator=self.g).to(self.device)
        heading = torch.atan2(self.vy, self.vx)
        mx, my = self.speed * torch.cos(heading), self.speed * torch.sin(heading)
        k = math.sqrt(max(1.0 - a * a, 0.0))
        self.vx = a * self.vx + (1 - a) * mx + k * sigma * w[0]
        self.vy = a * self.vy + (1 - a) * my + k * sigma * w[1]
        self.x = self.x + self.vx * dt
        self.y = self.y + self.vy * dt
        self._reflect_at_edges()

    def _step_grid(self, dt: float) -> None:
        s = self.cfg.street_spacing_m
        nx = self.x + self.vx * dt
        ny = self.y + self.vy * dt
        # crossing an intersection this step: decide straight / left / right there
        cell_x0, cell_x1 = torch.floor(self.x / s), torch.floor(nx / s)
        cell_y0, cell_y1 = torch.floor(self.y / s), torch.floor(ny / s)
        crossed = ((cell_x0 != cell_x1) | (cell_y0 != cell_y1)) & self.moving
        u = self._rand(self.n)
        turn = crossed & (u < 0.5)
        left = u < 0.25
        new_vx = torch.where(left, -self.vy, self.vy)
        new_vy = torch.where(left, self.vx, -self.vx)
        # snap turners onto the crossing they reached
        sx = torch.round(nx / s) * s
        sy = torch.round(ny / s) * s
        self.x = torch.where(turn, sx, nx)
        self.y = torch.where(turn, sy, ny)
        self.vx = torch.where(turn, new_vx, self.vx)
        self.vy = torch.where(turn, new_vy, self.vy)
        self._reflect_at_edges()

    def _reflect_at_edges(self) -> None:
        """UEs that left the area bounce back: velocity reversed, position clamped."""
        x0, x1, y0, y1 = self.box
        out_x = (self.x < x0) | (self.x > x1)
        out_y = (self.y < y0) | (self.y > y1)
        self.vx = torch.where(out_x, -self.vx, self.vx)
        self.vy = torch.where(out_y, -self.vy, self.vy)
        self.x = self.x.clamp(x0, x1)
        self.y = self.y.clamp(y0, y1)

    def _step_trajectories(self) -> None:
        t = torch.tensor(self.t, dtype=torch.float64)
        # per trajectory sample: last sample index with t_s <= t, per UE (vectorised searchsorted)
        key = self.traj_ue.double() * 1e9 + self.traj_t
        q = torch.arange(self.n, dtype=torch.float64) * 1e9 + t
        hi = torch.searchsorted(key, q, right=True)
        lo = (hi - 1).clamp(min=0)
        hi = hi.clamp(max=key.numel() - 1)
        same_lo = self.traj_ue[lo] == torch.arange(self.n)
        same_hi = self.traj_ue[hi] == torch.arange(self.n)
        lo = torch.where(same_lo, lo, hi)
        hi = torch.where(same_hi, hi, lo)
        t0, t1 = self.traj_t[lo], self.traj_t[hi]
        w = torch.where(t1 > t0, ((t - t0) / (t1 - t0)).clamp(0, 1), torch.zeros_like(t0))
        x = self.traj_x[lo] + w * (self.traj_x[hi] - self.traj_x[lo])
        y = self.traj_y[lo] + w * (self.traj_y[hi] - self.traj_y[lo])
        has = self.has_traj
        self.x = torch.where(has.to(self.device), x.to(self.device, torch.float32), self.x)
        self.y = torch.where(has.to(self.device), y.to(self.device, torch.float32), self.y)


def _np_hypot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``torch.hypot`` on NumPy float32 arrays (zero-copy): NumPy's hypot can differ from torch's
    in the last bit (about 1 value in 5 million), so positions stay those of the torch path."""
    return torch.hypot(torch.from_numpy(a), torch.from_numpy(b)).numpy()


#: Array back ends of :meth:`Mobility._step_rwp` (as ``scheduler._TORCH`` / ``scheduler._NUMPY``):
#: NumPy on CPU, where a few thousand UEs make torch's per-operation dispatch the main cost.
_TORCH = SimpleNamespace(
    hypot=torch.hypot,
    clamp_min=torch.clamp_min,
    clamp_max=torch.clamp_max,
    where=torch.where,
    f32=float,
    view=lambda t: t,
    tensor=lambda a: a,
)
_NUMPY = SimpleNamespace(
    hypot=_np_hypot,
    clamp_min=lambda a, v: np.maximum(a, np.float32(v)),
    clamp_max=lambda a, v: np.minimum(a, np.float32(v)),
    where=np.where,
    f32=np.float32,
    view=lambda t: t.numpy(),
    tensor=torch.from_numpy,
)
