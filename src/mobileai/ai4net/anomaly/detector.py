"""Anomaly detector: learned normal profile + gradient-boosted fault classifier, with reasons.

Two stages, both explainable:

1. :class:`~mobileai.ai4net.anomaly.features.NormalProfile` turns each cell-period's KPIs into
   robust z-scores against what that cell does at that hour (fault-free history only);
   :func:`~mobileai.ai4net.anomaly.features.neighbour_features` adds the neighbours' z-scores.
   Training rows are scored out of sample (:func:`cross_fitted_features`, one 24 h block, or
   with one day the even / odd periods, held out at a time), as test rows will be.
2. A LightGBM multi-class model (Ke et al., NeurIPS 2017) maps those deviations to ``normal`` or
   one of the fault kinds (:data:`mobileai.twin.config.FAULT_KINDS`), trained on the labelled
   faults of the *training* days. A cell-period is flagged when P(any fault) >= ``threshold``.
   With a few dozen faults per kind one boosted model depends on its random row/feature
   subsampling (its seed); ``n_models`` models with different seeds are averaged in margin
   (log-odds) space before the softmax, a seed-bagged ensemble (Breiman, Mach Learn 1996,
   bagging; the variance of an average of m models falls as 1/m of its uncorrelated part).
   Each decision carries its reason: the features with the largest TreeSHAP contributions
   (Lundberg et al., Nat Mach Intell 2020; LightGBM ``pred_contrib=True``) to the chosen class,
   averaged over the models (SHAP values are additive in the margin, so the average explains the
   averaged margin exactly), and the KPIs furthest from normal (their z-scores).

Without labelled faults (a user's KPI export with no fault log), :meth:`AnomalyModel.fit` falls
back to the profile alone: the score is the root-mean-square of the clipped z-scores and the
threshold is its ``unsupervised_quantile`` on the training periods inside Tukey's outer fence
(so faults hidden in an unlabelled history do not raise it); no kind is predicted.

Models are saved to a folder (profile as Parquet, boosters as LightGBM text, ``model.json`` with
the configuration and the training metrics) written to a temporary folder and renamed into place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from mobileai.ai4net.anomaly.features import (
    NormalProfile,
    check_kpi_table,
    hour_of_day,
    neighbour_features,
)
from mobileai.ai4net.anomaly.labels import fault_events, period_labels
from mobileai.ai4net.topology import NeighbourGraph, neighbour_graph
from mobileai.errors import UserError

NORMAL = "normal"
FORMAT_VERSION = 2
#: z-scores are clipped here before the unsupervised RMS score (one dead KPI must not dominate).
Z_CLIP = 10.0


class AnomalyConfig(BaseModel):
    """Options of :class:`AnomalyModel` (validated; errors name the field and what is allowed)."""

    model_config = ConfigDict(extra="forbid")

    window_h: int = Field(1, ge=0, le=11, description="Hours either side pooled into the hourly profile.")
    neighbours: int = Field(6, ge=1, le=50, description="Neighbours per cell in the topology graph.")
    min_overlap: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Share of a period a fault must cover to label it as that fault (0.1: onset "
        "periods, partly covered, are where a fault is first seen and scored; chosen on development "
        "histories, docs/benchmarks.md, anomaly section).",
    )
    threshold: float = Field(
        0.4,
        gt=0,
        lt=1,
        description="Flag when P(any fault) >= threshold (0.4: best mean event F1 over seeds 0 and 1 "
        "on the training days of the HISTORY_VERSION 4 benchmark histories, each day scored by a model "
        "fitted on the other training days, test days unused; docs/benchmarks.md, anomaly section).",
    )
    unsupervised_quantile: float = Field(
        0.995, gt=0.5, lt=1, description="Without labels: flag above this quantile of training scores."
    )
    n_estimators: int = Field(300, ge=10, le=5000)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(
        7, ge=4, le=1024, description="Leaves per tree (7: chosen on development histories)."
    )
    min_child_samples: int = Field(
        20, ge=1, le=1000, description="Rows per leaf at least (20: chosen on development histories)."
    )
    seed: int = Field(0, ge=0, description="Ensemble seed: model i of the ensemble uses seed * n_models + i.")
    n_models: int = Field(
        5,
        ge=1,
        le=50,
        description="LightGBM models with different seeds averaged in margin space (variance "
        "reduction; chosen on development histories, docs/benchmarks.md, anomaly section).",
    )
    explain_top: int = Field(3, ge=1, le=20, description="Reasons listed per decision.")


@dataclass
class AnomalyModel:
    """A fitted detector; :meth:`predict` scores a KPI table, :meth:`save` / :meth:`load` persist."""

    config: AnomalyConfig
    profile: NormalProfile
    graph: NeighbourGraph | None
    cells: pd.DataFrame | None
    classes: list[str]
    feature_names: list[str]
    boosters: list[lgb.Booster]
    unsupervised_threshold: float
    metrics: dict[str, Any] = field(default_factory=dict)

    # ---- fitting
    @classmethod
    def fit(
        cls,
        kpis: pd.DataFrame,
        events: pd.DataFrame | None = None,
        cells: pd.DataFrame | None = None,
        config: AnomalyConfig | None = None,
    ) -> AnomalyModel:
        """Learn the normal profile from fault-free rows and, when ``events`` holds faults, the
        fault classifier from all labelled rows of ``kpis`` (the training days only)."""
        cfg = config or AnomalyConfig()
        check_kpi_table(kpis)
        t0 = time.perf_counter()
        kpis = kpis.reset_index(drop=True)
        faults = fault_events(events) if events is not None else None
        lab = period_labels(kpis, faults) if faults is not None and len(faults) else None
        normal = np.ones(len(kpis), dtype=bool) if lab is None else (lab["overlap"].to_numpy() == 0)
        profile = NormalProfile.fit(kpis, normal, window_h=cfg.window_h)
        graph = neighbour_graph(cells, cfg.neighbours) if cells is not None else None
        x = cross_fitted_features(kpis, normal, profile, graph)
        rms = unsupervised_score(x[profile.kpis])
        unsup_thr = robust_quantile(rms[normal], cfg.unsupervised_quantile)
        model = cls(cfg, profile, graph, cells, [NORMAL], list(x.columns), [], unsup_thr)
        metrics: dict[str, Any] = {"train_rows": len(kpis), "train_normal_rows": int(normal.sum())}
        if lab is not None:
            kinds = sorted(k for k in lab["kind"].dropna().unique())
            classes = [NORMAL, *kinds]
            y = np.full(len(kpis), -1)
            y[normal] = 0
            labelled = (lab["overlap"].to_numpy() >= cfg.min_overlap) & lab["kind"].notna().to_numpy()
            y[labelled] = [classes.index(k) for k in lab["kind"][labelled]]
            use = y >= 0
            if len(set(y[use])) < 2:
                raise UserError("events: the training periods hold no labelled fault; cannot train")
            base = {
                "objective": "multiclass",
                "num_class": len(classes),
                "learning_rate": cfg.learning_rate,
                "num_leaves": cfg.num_leaves,
                "min_child_samples": cfg.min_child_samples,
                "feature_fraction": 0.8,
                "bagging_fraction": 0.8,
                "bagging_freq": 1,
                "num_threads": 1,
                "verbose": -1,
                "deterministic": True,
            }
            ds = lgb.Dataset(
                x[use].to_numpy(dtype=np.float64),
                label=y[use],
                feature_name=_lgb_names(x.columns),
                free_raw_data=False,
            )
            model.boosters = [
                lgb.train(base | {"seed": cfg.seed * cfg.n_models + i}, ds, num_boost_round=cfg.n_estimators)
                for i in range(cfg.n_models)
            ]
            model.classes = classes
            metrics |= {
                "train_fault_rows": int(labelled.sum()),
                "train_faults": int(faults["cell_id"].isin(kpis["cell_id"].unique()).sum()),
                "classes": classes,
                "rows_per_class": {c: int((y == i).sum()) for i, c in enumerate(classes)},
            }
        metrics["fit_s"] = round(time.perf_counter() - t0, 3)
        model.metrics = metrics
        return model

    @property
    def supervised(self) -> bool:
        return bool(self.boosters)

    def with_profile(self, kpis: pd.DataFrame, cells: pd.DataFrame | None = None) -> AnomalyModel:
        """The same classifier on another network: learn that network's normal profile from
        ``kpis`` (its history, assumed mostly normal) and its topology from ``cells``."""
        missing = [k for k in self.profile.kpis if k not in kpis]
        if self.supervised and missing:
            raise UserError(f"kpis: missing KPI column(s) the model was trained on: {missing[:5]}")
        profile = NormalProfile.fit(kpis, None, window_h=self.config.window_h)
        profile.kpis = [k for k in self.profile.kpis if k in profile.kpis]
        profile.log_kpis = [k for k in profile.log_kpis if k in profile.kpis]
        graph = neighbour_graph(cells, self.config.neighbours) if cells is not None else None
        x = build_features(kpis.reset_index(drop=True), profile, graph)
        thr = robust_quantile(unsupervised_score(x[profile.kpis]), self.config.unsupervised_quantile)
        return AnomalyModel(
            self.config,
            profile,
            graph,
            cells,
            self.classes,
            self.feature_names,
            self.boosters,
            thr,
            dict(self.metrics),
        )

    # ---- scoring
    def predict(self, kpis: pd.DataFrame, explain: bool = True) -> pd.DataFrame:
        """One row per input row: ``score`` (P(any fault), or the unsupervised score), ``flag``,
        ``kind`` and ``kind_prob`` (most likely fault kind), ``p:<kind>`` per kind, and when
        ``explain``: ``reasons`` (top SHAP features) and ``top_kpis`` (largest |z|) for flagged
        rows."""
        check_kpi_table(kpis)
        kpis = kpis.reset_index(drop=True)
        x = build_features(kpis, self.profile, self.graph)
        out = pd.DataFrame({"period_start": kpis["period_start"], "cell_id": kpis["cell_id"].astype(str)})
        if "period_end" in kpis:
            out["period_end"] = kpis["period_end"]
        rms = unsupervised_score(x[self.profile.kpis])
        out["zscore_rms"] = rms
        if self.supervised:
            xs = x.reindex(columns=self.feature_names)
            proba = self.predict_proba(xs.to_numpy(dtype=np.float64))
            for i, c in enumerate(self.classes[1:], start=1):
                out[f"p:{c}"] = proba[:, i]
            out["score"] = 1.0 - proba[:, 0]
            k = proba[:, 1:].argmax(axis=1)
            out["kind"] = np.asarray(self.classes[1:], dtype=object)[k]
            out["kind_prob"] = proba[:, 1:].max(axis=1)
            out["flag"] = out["score"] >= self.config.threshold
        else:
            out["score"] = rms
            out["kind"] = None
            out["kind_prob"] = np.nan
            out["flag"] = rms >= self.unsupervised_threshold
        if explain:
            out["top_kpis"] = None
            out["reasons"] = None
            rows = np.flatnonzero(out["flag"].to_numpy())
            if len(rows):
                z = x.loc[rows, self.profile.kpis]
                out.loc[rows, "top_kpis"] = top_kpis(z, self.config.explain_top)
                if self.supervised:
                    out.loc[rows, "reasons"] = self.reasons(
                        x.loc[rows].reindex(columns=self.feature_names), out.loc[rows, "kind"].tolist()
                    )
                else:
                    out.loc[rows, "reasons"] = out.loc[rows, "top_kpis"]
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities [rows, classes]: softmax of the ensemble's mean margin."""
        margin = np.mean([b.predict(x, raw_score=True) for b in self.boosters], axis=0)
        margin = margin.reshape(len(x), len(self.classes))
        e = np.exp(margin - margin.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def reasons(self, x: pd.DataFrame, kinds: list[str]) -> list[str]:
        """Top TreeSHAP contributions (feature=value: +contribution) to each row's chosen kind,
        averaged over the ensemble (exact for the averaged margin)."""
        a = x.to_numpy(dtype=np.float64)
        contrib = np.mean([b.predict(a, pred_contrib=True) for b in self.boosters], axis=0)
        nf = len(self.feature_names) + 1  # + bias column per class
        out = []
        for r, kind in enumerate(kinds):
            ci = self.classes.index(kind)
            c = contrib[r, ci * nf : (ci + 1) * nf - 1]
            top = np.argsort(-c)[: self.config.explain_top]
            parts = [f"{self.feature_names[j]}={_fmt(x.iat[r, j])} (+{c[j]:.2f})" for j in top if c[j] > 0]
            out.append("; ".join(parts))
        return out

    # ---- persistence
    def save(self, folder: Path) -> Path:
        """Write the model to ``folder`` atomically (temporary folder, then rename)."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
        try:
            for name, frame in self.profile.to_frames().items():
                pq.write_table(
                    pa.Table.from_pandas(frame, preserve_index=False), tmp / f"profile_{name}.parquet"
                )
            if self.cells is not None:
                pq.write_table(pa.Table.from_pandas(self.cells, preserve_index=False), tmp / "cells.parquet")
            for i, b in enumerate(self.boosters):
                b.save_model(str(tmp / f"booster_{i}.txt"))
            meta = {
                "format_version": FORMAT_VERSION,
                "config": self.config.model_dump(),
                "kpis": self.profile.kpis,
                "log_kpis": self.profile.log_kpis,
                "classes": self.classes,
                "feature_names": self.feature_names,
                "unsupervised_threshold": self.unsupervised_threshold,
                "metrics": self.metrics,
            }
            (tmp / "model.json").write_text(json.dumps(meta, indent=1, default=str))
            old = None
            if folder.exists():
                old = folder.with_name(folder.name + f".old-{os.getpid()}")
                os.replace(folder, old)
            os.replace(tmp, folder)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: Path) -> AnomalyModel:
        """Read a model written by :meth:`save` (UserError if the folder is not one)."""
        folder = Path(folder)
        meta_path = folder / "model.json"
        if not meta_path.is_file():
            raise UserError(f"--model {folder}: not an anomaly model folder (no model.json)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise UserError(
                f"--model {folder}: format_version {meta.get('format_version')} is not supported "
                f"(this version reads {FORMAT_VERSION}); retrain the model"
            )
        frames = {
            n: pq.read_table(folder / f"profile_{n}.parquet").to_pandas()
            for n in ("location", "scale", "pooled_location", "pooled_scale")
        }
        cfg = AnomalyConfig.model_validate(meta["config"])
        profile = NormalProfile.from_frames(frames, meta["kpis"], meta["log_kpis"], cfg.window_h)
        cells = (
            pq.read_table(folder / "cells.parquet").to_pandas()
            if (folder / "cells.parquet").exists()
            else None
        )
        graph = neighbour_graph(cells, cfg.neighbours) if cells is not None else None
        boosters = [
            lgb.Booster(model_file=str(folder / f"booster_{i}.txt"))
            for i in range(cfg.n_models)
            if (folder / f"booster_{i}.txt").exists()
        ]
        return cls(
            cfg,
            profile,
            graph,
            cells,
            meta["classes"],
            meta["feature_names"],
            boosters,
            float(meta["unsupervised_threshold"]),
            meta["metrics"],
        )


def cross_fitted_features(
    kpis: pd.DataFrame, normal: np.ndarray, profile: NormalProfile, graph: NeighbourGraph | None
) -> pd.DataFrame:
    """Training features with out-of-sample z-scores: each 24 h block of the history is scored
    by a profile learned from the other blocks, as the test day will be (an in-sample median
    sits closer to its own points, so in-sample z-scores would be too small). With less than two
    days, the two folds are the even and the odd periods (the hourly window still finds the
    other fold's periods of the same hour)."""
    since = kpis["period_start"] - kpis["period_start"].min()
    block = (since // pd.Timedelta(days=1)).to_numpy()
    if len(np.unique(block)) < 2:
        step = since[since > pd.Timedelta(0)].min()
        block = (since // step).to_numpy() % 2 if pd.notna(step) else np.zeros(len(kpis), dtype=int)
    blocks = np.unique(block)
    if len(blocks) < 2:
        return build_features(kpis, profile, graph)
    parts = []
    for b in blocks:
        rows = block == b
        held_out = NormalProfile.fit(kpis[~rows], normal[~rows], window_h=profile.window_h)
        held_out.kpis = profile.kpis
        parts.append(build_features(kpis[rows], held_out, graph).set_index(np.flatnonzero(rows)))
    return pd.concat(parts).sort_index()


def build_features(kpis: pd.DataFrame, profile: NormalProfile, graph: NeighbourGraph | None) -> pd.DataFrame:
    """z-scores of the cell, its neighbours' z-score summaries and the hour (sin/cos)."""
    z = profile.zscores(kpis)
    z.index = range(len(z))
    k = kpis.reset_index(drop=True)
    nb = neighbour_features(z, k, graph, profile.kpis)
    h = hour_of_day(k["period_start"]) * (2 * np.pi / 24)
    hours = pd.DataFrame({"hour_sin": np.sin(h), "hour_cos": np.cos(h)}, index=z.index)
    return pd.concat([z, nb, hours], axis=1)


def unsupervised_score(z: pd.DataFrame) -> np.ndarray:
    """Root-mean-square of the clipped z-scores over the reported KPIs."""
    a = np.clip(z.to_numpy(dtype=np.float64), -Z_CLIP, Z_CLIP)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.nanmean(a * a, axis=1))


def robust_quantile(scores: np.ndarray, q: float) -> float:
    """``q``-quantile of the scores inside Tukey's outer fence (Q3 + 3 IQR): history without a
    fault log still holds faults, which must not set the threshold (Tukey, EDA, 1977)."""
    s = scores[np.isfinite(scores)]
    q1, q3 = np.quantile(s, [0.25, 0.75])
    inside = s[s <= q3 + 3.0 * (q3 - q1)]
    return float(np.quantile(inside, q))


def top_kpis(z: pd.DataFrame, n: int) -> list[str]:
    """Per row: the ``n`` KPIs furthest from normal, as 'KPI z=+4.2'."""
    a = z.to_numpy(dtype=np.float64)
    order = np.argsort(-np.nan_to_num(np.abs(a), nan=-1.0), axis=1)[:, :n]
    cols = list(z.columns)
    return [
        ", ".join(f"{cols[j]} z={a[r, j]:+.1f}" for j in order[r] if np.isfinite(a[r, j]))
        for r in range(len(a))
    ]


def _lgb_names(columns: Any) -> list[str]:
    """LightGBM rejects JSON special characters in feature names; ours keep the KPI names."""
    return [re.sub(r"[^0-9A-Za-z_]", "_", str(c)) for c in columns]


def _fmt(v: float) -> str:
    return "nan" if v is None or not np.isfinite(v) else f"{v:+.2f}"
