"""Neighbour graph from the cells table (mobileai.ai4net.topology)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mobileai.ai4net.topology import coverage_centroids, neighbour_graph, typical_site_distance
from mobileai.errors import UserError


def three_sector_sites(sites: list[tuple[float, float]]) -> pd.DataFrame:
    rows = []
    for s, (x, y) in enumerate(sites):
        for k, az in enumerate((0.0, 120.0, 240.0)):
            rows.append({"cell_id": f"S{s}-{k}", "x_m": x, "y_m": y, "azimuth_deg": az})
    return pd.DataFrame(rows)


def test_facing_cells_are_neighbours_and_cells_facing_away_are_not() -> None:
    cells = pd.DataFrame(
        {
            "cell_id": ["A", "B", "C"],
            "x_m": [0.0, 300.0, -300.0],
            "y_m": [0.0, 0.0, 0.0],
            "azimuth_deg": [90.0, 270.0, 270.0],  # A faces east to B; C sits west, facing away
        }
    )
    g = neighbour_graph(cells, k=1, symmetric=False)
    assert g.of("A") == ["B"]
    assert g.of("B") == ["A"]
    assert "C" not in g.of("A")


def test_co_sited_sectors_are_neighbours_and_graph_is_symmetric() -> None:
    sites = [(0.0, 0.0)] + [(300 * np.cos(a), 300 * np.sin(a)) for a in np.arange(6) * np.pi / 3]
    g = neighbour_graph(three_sector_sites(sites), k=4)
    assert g.n_cells == 21
    adj = g.adjacency()
    assert np.all((adj > 0) == (adj.T > 0))
    assert np.all(np.diag(adj) == 0)
    assert all(len(nb) >= 4 for nb in g.neighbours)
    # a centre-site sector has at least one co-sited sector among its neighbours
    assert any(c.startswith("S0-") for c in g.of("S0-0"))
    assert all(0 < w <= 1 for _, _, w in g.edges())
    assert g.to_table().num_rows == sum(len(n) for n in g.neighbours)


def test_centroids_move_along_azimuth() -> None:
    cells = pd.DataFrame(
        {"cell_id": ["N", "E"], "x_m": [0.0, 0.0], "y_m": [0.0, 0.0], "azimuth_deg": [0.0, 90.0]}
    )
    c = coverage_centroids(cells, reach_m=100.0)
    np.testing.assert_allclose(c, [[0.0, 100.0], [100.0, 0.0]], atol=1e-9)
    assert typical_site_distance(np.array([[0.0, 0.0], [300.0, 0.0], [0.0, 400.0]])) == 300.0


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(UserError, match="missing column"):
        neighbour_graph(pd.DataFrame({"cell_id": ["a"]}))
    with pytest.raises(UserError, match="k: 0"):
        neighbour_graph(three_sector_sites([(0, 0)]), k=0)
    with pytest.raises(UserError, match="unique"):
        neighbour_graph(pd.DataFrame({"cell_id": ["a", "a"], "x_m": [0, 1], "y_m": [0, 1]}))
    g = neighbour_graph(three_sector_sites([(0, 0), (300, 0)]), k=2)
    with pytest.raises(UserError, match="'nope'"):
        g.of("nope")
