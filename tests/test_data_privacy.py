"""Privacy and access policy: keyed pseudonyms, coarsening, k-anonymity, role enforcement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mobileai.data.policy import DEFAULT_POLICY, AccessDenied, AccessPolicy
from mobileai.data.privacy import coarsen, k_anonymity, pseudonymise, suppress_small_groups
from mobileai.data.store import Store
from mobileai.data.synthetic import synthetic_kpis
from mobileai.errors import UserError

KEY = b"0123456789abcdef-test-key"


def _ues(n: int = 200) -> pa.Table:
    rng = np.random.default_rng(1)
    return pa.table(
        {
            "time": pa.array(np.full(n, 1_767_225_600_000) + rng.integers(0, 3_600_000, n)).cast(
                pa.timestamp("ms", tz="UTC")
            ),
            "ue_id": [f"ue{i % 50}" for i in range(n)],
            "imsi": [f"00101{i % 50:010d}" for i in range(n)],
            "imei": ["35" + "0" * 13] * n,
            "cell_id": [f"c{i % 4}" for i in range(n)],
            "x_m": rng.uniform(0, 3000, n),
            "y_m": rng.uniform(0, 3000, n),
            "rsrp": rng.normal(-95, 8, n),
        }
    )


def test_pseudonyms_are_keyed_consistent_and_not_plain_hashes() -> None:
    t = _ues()
    a = pseudonymise(t, ["imsi"], KEY)
    b = pseudonymise(t, ["imsi"], KEY)
    c = pseudonymise(t, ["imsi"], b"another-key-0123456789")
    assert a["imsi"].equals(b["imsi"]) and not a["imsi"].equals(c["imsi"])
    assert len(set(a["imsi"].to_pylist())) == 50  # one pseudonym per subscriber
    assert not set(a["imsi"].to_pylist()) & set(t["imsi"].to_pylist())
    import hashlib

    assert hashlib.sha256(b"001010000000000").hexdigest()[:16] not in a["imsi"].to_pylist()


def test_coarsen_to_grid_centres() -> None:
    t = coarsen(_ues(), {"x_m": 500.0, "time": 3600.0})
    assert set(np.unique(t["x_m"].to_numpy())) <= {250.0 + 500 * i for i in range(6)}
    assert len(set(t["time"].to_pylist())) == 1
    with pytest.raises(UserError, match="only numbers and timestamps"):
        coarsen(_ues(), {"cell_id": 1.0})


def test_k_anonymity_check_and_suppression() -> None:
    t = _ues()
    rep = k_anonymity(t, ["cell_id"], 5)
    assert rep.ok and rep.groups == 4 and rep.smallest_group == 50
    rare = pa.concat_tables([t, t.slice(0, 1).set_column(4, "cell_id", pa.array(["lonely"]))])
    rep = k_anonymity(rare, ["cell_id"], 5)
    assert not rep.ok and rep.violating_rows == 1 and rep.violating_groups == 1
    kept, dropped = suppress_small_groups(rare, ["cell_id"], 5)
    assert kept.num_rows == 200 and dropped["cell_id"].to_pylist() == ["lonely"]


def test_store_enforces_the_role(tmp_path: Path) -> None:
    op = Store(tmp_path, "r", policy=DEFAULT_POLICY, role="operator")
    op.append(synthetic_kpis(6, 4))
    op.append(_ues(), name="ues")
    op.close()
    partner = Store(tmp_path, "r", policy=DEFAULT_POLICY, role="partner", pseudonym_key=KEY)
    k = partner.query("2026-01-01", "2026-01-02")
    assert (
        "site" not in k.column_names and "cell_type" not in k.column_names and "DRB.UEThpDl" in k.column_names
    )
    with pytest.raises(AccessDenied, match="may not read column"):
        partner.query(kpis=["site"])
    with pytest.raises(AccessDenied, match="may not write"):
        partner.append(synthetic_kpis(6, 1, first_period=9))
    with pytest.raises(AccessDenied, match="may not read table 'events'"):
        partner.query(table="events")
    u = partner.query(table="ues")
    assert "imei" not in u.column_names
    assert not set(u["imsi"].to_pylist()) & set(_ues()["imsi"].to_pylist())
    assert set(np.unique(u["x_m"].to_numpy())) <= {500.0 + 1000 * i for i in range(4)}
    with pytest.raises(UserError, match="MOBILEAI_PSEUDONYM_KEY"):
        Store(tmp_path, "r", policy=DEFAULT_POLICY, role="analyst").query(table="ues")


def test_policy_file_validation(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("roles:\n  x:\n    tables:\n      kpis: {coarsen: {x_m: -1}}\n")
    with pytest.raises(UserError, match="coarsening steps must be > 0"):
        AccessPolicy.load(p)
    p.write_text("roles:\n  x:\n    tables:\n      kpis: {deny: [site]}\n")
    assert AccessPolicy.load(p).rule("x", "kpis").readable("cell_id")
    with pytest.raises(UserError, match="role 'y' is not in the access policy"):
        AccessPolicy.load(p).role("y")
