"""Anomaly detection and root cause for the RAN (``mobileai.ai4net.anomaly``).

Learned normal behaviour per cell and hour (:mod:`.features`), a LightGBM fault classifier with
TreeSHAP reasons (:mod:`.detector`), topology-aware root-cause localisation (:mod:`.rca`),
self-healing proposals as typed actions (:mod:`.healing`), the OSC AD xApp-style fixed-threshold
baseline (:mod:`.threshold`), scoring (:mod:`.scoring`) and benchmarks (:mod:`.bench`).
See docs/anomaly.md.
"""

from mobileai.ai4net.anomaly.detector import AnomalyConfig, AnomalyModel
from mobileai.ai4net.anomaly.healing import HealingProposal, propose
from mobileai.ai4net.anomaly.pipeline import detect, proposals, write_results
from mobileai.ai4net.anomaly.threshold import ThresholdDetector

__all__ = [
    "AnomalyConfig",
    "AnomalyModel",
    "HealingProposal",
    "ThresholdDetector",
    "detect",
    "proposals",
    "propose",
    "write_results",
]
