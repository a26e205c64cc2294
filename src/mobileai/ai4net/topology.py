"""Neighbour graph of a cellular layout, derived from the cells table.

Operators keep neighbour relation tables (NRT, TS 38.300 15.3.3 automatic neighbour relations);
when none is exported, a geometric stand-in is the usual planning heuristic: each sector serves an
area centred in front of its antenna, so two cells are neighbours when those *coverage centroids*
are close. A cell's centroid is its site moved ``reach`` metres along the antenna azimuth
(``reach`` defaults to a third of the typical inter-site distance, the centre of a hexagonal
sector's area); co-sited sectors then sit ``reach * sqrt(3)`` apart and are neighbours, while
cells on sites that face away from each other are not. :func:`neighbour_graph` keeps the ``k``
nearest centroids of every cell, weighted by inverse distance.

The graph is symmetric-closed on request (``symmetric=True``): if ``b`` is among ``a``'s k
nearest, ``a`` is added to ``b``'s list too, as NRTs are usually bidirectional.

Input columns: ``cell_id``, ``x_m``, ``y_m``, ``azimuth_deg`` (compass bearing, degrees clockwise
from north, as in :func:`mobileai.twin.timeline.cell_config_table`); cells without ``azimuth_deg``
(omni cells) stay at their site.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from mobileai.errors import UserError

REQUIRED_COLUMNS = ("cell_id", "x_m", "y_m")


@dataclass(frozen=True)
class NeighbourGraph:
    """Cells and their neighbour lists (indices into ``cell_ids``) with weights in (0, 1]."""

    cell_ids: tuple[str, ...]
    neighbours: tuple[tuple[int, ...], ...]
    weights: tuple[tuple[float, ...], ...]

    @property
    def n_cells(self) -> int:
        return len(self.cell_ids)

    def index(self, cell_id: str) -> int:
        """Position of ``cell_id`` (UserError naming the cell if unknown)."""
        try:
            return self.positions[cell_id]
        except KeyError:
            raise UserError(
                f"cell_id: {cell_id!r} is not in the neighbour graph (e.g. {self.cell_ids[0]!r})"
            ) from None

    @cached_property
    def positions(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.cell_ids)}

    def of(self, cell_id: str) -> list[str]:
        """Neighbour cell ids of ``cell_id``, strongest first."""
        return [self.cell_ids[j] for j in self.neighbours[self.index(cell_id)]]

    def edges(self) -> Iterator[tuple[int, int, float]]:
        """(cell, neighbour, weight) triples."""
        for i, (nb, w) in enumerate(zip(self.neighbours, self.weights, strict=True)):
            for j, wj in zip(nb, w, strict=True):
                yield i, j, wj

    def adjacency(self) -> np.ndarray:
        """Dense [C, C] weight matrix (0 where not neighbours)."""
        a = np.zeros((self.n_cells, self.n_cells))
        for i, j, w in self.edges():
            a[i, j] = w
        return a

    def to_table(self) -> pa.Table:
        """One row per relation: cell_id, neighbour_id, weight (e.g. to save as Parquet)."""
        rows = [(self.cell_ids[i], self.cell_ids[j], w) for i, j, w in self.edges()]
        return pa.table(
            {
                "cell_id": pa.array([r[0] for r in rows], pa.string()),
                "neighbour_id": pa.array([r[1] for r in rows], pa.string()),
                "weight": pa.array([r[2] for r in rows], pa.float64()),
            }
        )


def coverage_centroids(cells: pd.DataFrame, reach_m: float | None = None) -> np.ndarray:
    """[C, 2] centre of each cell's served area: the site moved ``reach_m`` along the azimuth."""
    xy = cells[["x_m", "y_m"]].to_numpy(dtype=np.float64)
    if "azimuth_deg" not in cells:
        return xy
    if reach_m is None:
        reach_m = typical_site_distance(xy) / 3.0
    az = np.deg2rad(cells["azimuth_deg"].to_numpy(dtype=np.float64))
    omni = ~np.isfinite(az)
    off = reach_m * np.stack([np.sin(np.where(omni, 0, az)), np.cos(np.where(omni, 0, az))], axis=1)
    off[omni] = 0.0
    return xy + off


def typical_site_distance(xy: np.ndarray) -> float:
    """Median distance from each site to its nearest other site (co-sited cells collapse)."""
    sites = np.unique(np.round(xy, 1), axis=0)
    if len(sites) < 2:
        return 1.0
    d = np.linalg.norm(sites[:, None, :] - sites[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


def neighbour_graph(
    cells: pa.Table | pd.DataFrame, k: int = 6, *, reach_m: float | None = None, symmetric: bool = True
) -> NeighbourGraph:
    """The ``k`` nearest coverage centroids of every cell (see the module docstring)."""
    df = cells.to_pandas() if isinstance(cells, pa.Table) else cells
    missing = [c for c in REQUIRED_COLUMNS if c not in df]
    if missing:
        raise UserError(
            f"cells table: missing column(s) {missing}; a neighbour graph needs {REQUIRED_COLUMNS}"
        )
    if k < 1:
        raise UserError(f"k: {k} is not allowed; use k >= 1 neighbours")
    ids = tuple(str(c) for c in df["cell_id"])
    if len(set(ids)) != len(ids):
        raise UserError("cells table: cell_id values must be unique")
    n = len(ids)
    cen = coverage_centroids(df, reach_m)
    d = np.linalg.norm(cen[:, None, :] - cen[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    kk = min(k, n - 1)
    scale = max(typical_site_distance(df[["x_m", "y_m"]].to_numpy(dtype=np.float64)), 1e-6)
    lists: list[dict[int, float]] = [{} for _ in range(n)]
    for i in range(n):
        for j in np.argsort(d[i], kind="stable")[:kk]:
            w = float(1.0 / (1.0 + d[i, j] / scale))
            lists[i][int(j)] = w
            if symmetric:
                lists[int(j)].setdefault(i, w)
    nb = tuple(tuple(sorted(m, key=lambda j, m=m: -m[j])) for m in lists)
    wt = tuple(tuple(lists[i][j] for j in nb[i]) for i in range(n))
    return NeighbourGraph(ids, nb, wt)
