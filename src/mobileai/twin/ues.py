"""UE drop: positions, heights and indoor state (TR 38.901 Table 7.2-1, 7.2-3, 7.8-1).

- Hex layouts: ``per_sector`` UEs uniformly in each sector's rhombus of the site hexagon
  (``count`` UEs: uniformly over all rhombi), re-drawn while closer than the minimum 2D
  distance to the site.
- File layouts: uniformly in the sites' bounding box, re-drawn while closer than the minimum
  distance to any site.
- Indoor with probability ``indoor_ratio``; indoor height h_UT = 3(n_fl - 1) + 1.5 m with
  n_fl ~ U{1, N_fl}, N_fl ~ U{4, 8} (Table 7.2-1 Note); d_2D-in = min of two U(0, d_max)
  draws (clause 7.4.3.1); high-loss walls per ``o2i_model``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from mobileai.twin.config import Scenario
from mobileai.twin.layout import Cells


@dataclass(frozen=True)
class UEs:
    """UE state as tensors of shape [U]."""

    x: torch.Tensor
    y: torch.Tensor
    height: torch.Tensor
    indoor: torch.Tensor  # bool
    d2d_in: torch.Tensor  # indoor 2D distance, 0 for outdoor UEs
    o2i_high: torch.Tensor  # bool: behind high-loss walls
    o2i_dev: torch.Tensor  # N(0,1) draw scaling sigma_P of the O2I loss (UE-specific)
    u_he: torch.Tensor  # U(0,1) per UE seeding the UMa environment-height draws

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> UEs:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def ue_count(sc: Scenario, cells: Cells) -> int:
    """Number of UEs a scenario drops."""
    if sc.ues.count is not None:
        return sc.ues.count
    return int(sc.ues.per_sector or 1) * cells.n


def sample_positions(
    sc: Scenario, cells: Cells, n: int, g: torch.Generator, per_cell: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform positions in the network area honouring the minimum distance (vectorised
    rejection rounds). ``per_cell``: the same number in every cell's area (hex layouts)."""
    min_d = sc.ues.min_distance_m
    x = torch.empty(n, dtype=torch.float64)
    y = torch.empty(n, dtype=torch.float64)
    todo = torch.arange(n)
    if cells.drop_kind == "hex" and per_cell:
        owner = torch.arange(cells.n).repeat_interleave(int(sc.ues.per_sector or 1))
    else:
        owner = torch.randint(0, cells.n, (n,), generator=g)
    radius = cells.isd_m / math.sqrt(3.0)
    for _ in range(1000):
        if todo.numel() == 0:
            break
        m = todo.numel()
        if cells.drop_kind == "hex":
            c = owner[todo]
            b = (
                torch.deg2rad(cells.boresight_deg[c])
                if cells.n_sites != cells.n
                else torch.deg2rad(30.0 + 120.0 * torch.randint(0, 3, (m,), generator=g).double())
            )
            a1, a2 = b - math.pi / 3, b + math.pi / 3
            u, v = (
                torch.rand(m, generator=g, dtype=torch.float64),
                torch.rand(m, generator=g, dtype=torch.float64),
            )
            sx, sy = cells.site_x[cells.site[c]], cells.site_y[cells.site[c]]
            px = sx + radius * (u * torch.cos(a1) + v * torch.cos(a2))
            py = sy + radius * (u * torch.sin(a1) + v * torch.sin(a2))
            d = torch.hypot(px - sx, py - sy)
        else:
            x0, x1, y0, y1 = cells.drop_box
            px = x0 + (x1 - x0) * torch.rand(m, generator=g, dtype=torch.float64)
            py = y0 + (y1 - y0) * torch.rand(m, generator=g, dtype=torch.float64)
            d = (
                torch.cdist(torch.stack([px, py], 1), torch.stack([cells.site_x, cells.site_y], 1))
                .min(1)
                .values
            )
        ok = d >= min_d
        x[todo[ok]] = px[ok]
        y[todo[ok]] = py[ok]
        todo = todo[~ok]
    if todo.numel():
        raise RuntimeError("could not place UEs outside the minimum distance; check ues.min_distance_m")
    return x, y


def drop_ues(sc: Scenario, cells: Cells, generator: torch.Generator, n: int | None = None) -> UEs:
    """Drop UEs for a scenario (CPU, float64; move with :meth:`UEs.to`)."""
    g = generator
    n = ue_count(sc, cells) if n is None else n
    x, y = sample_positions(sc, cells, n, g, per_cell=sc.ues.count is None)
    indoor = torch.rand(n, generator=g, dtype=torch.float64) < sc.ues.indoor_ratio
    height = torch.full((n,), sc.ues.outdoor_height_m, dtype=torch.float64)
    if sc.ues.indoor_floors == "3gpp" and sc.radio.scenario != "rma":
        n_fl = torch.randint(4, 9, (n,), generator=g)
        floor = (torch.rand(n, generator=g, dtype=torch.float64) * n_fl).floor() + 1.0
        height = torch.where(indoor, 3.0 * (floor - 1.0) + 1.5, height)
    dmax = sc.indoor_distance_max_m
    d_in = (
        torch.minimum(
            torch.rand(n, generator=g, dtype=torch.float64), torch.rand(n, generator=g, dtype=torch.float64)
        )
        * dmax
    )
    d_in = torch.where(indoor, d_in, torch.zeros_like(d_in))
    model = sc.radio.o2i_model
    if model == "mixed":
        high = torch.rand(n, generator=g, dtype=torch.float64) < sc.radio.o2i_high_loss_fraction
    else:
        high = torch.full((n,), model == "high", dtype=torch.bool)
    o2i_dev = torch.randn(n, generator=g, dtype=torch.float64)
    u_he = torch.rand(n, generator=g, dtype=torch.float64)
    return UEs(
        x=x,
        y=y,
        height=height,
        indoor=indoor,
        d2d_in=d_in,
        o2i_high=high & indoor,
        o2i_dev=o2i_dev,
        u_he=u_he,
    )
