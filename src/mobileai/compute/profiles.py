"""Per-layer profiles of the AI models: FLOPs, parameters, activation sizes, measured CPU latency.

The profile of a model is one row per splittable block of its architecture
(:mod:`mobileai.compute.architectures`): floating-point operations counted by PyTorch's
``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplications and convolutions, 2 FLOPs
per multiply-accumulate; element-wise work is not counted), parameters, the number of elements of
the block's output tensor (what crosses the air interface when the inference is split after
this block), and the block's latency measured on this machine's CPU with one thread (median of
``repeats`` runs after a warm-up), as Neurosurgeon (Kang et al., ASPLOS 2017) profiles per-layer
latency to predict it on other processors.

The profile ships as ``model_profiles.json`` next to this module; ``mobileai offload-profile``
(or ``python -m mobileai.compute.profiles``) regenerates it. Reference accuracies are the
published numbers of the architectures (sources in :mod:`mobileai.compute.architectures`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

PROFILE_FILE = "model_profiles.json"

#: Model facts not measured here: task, published accuracy and its metric, the raw input as sent
#: when the whole inference is offloaded (bytes), the result returned to the device (bytes).
MODEL_FACTS: dict[str, dict[str, object]] = {
    "resnet18": {
        "task": "image classification",
        "accuracy": 0.6976,
        "accuracy_metric": "ImageNet top-1",
        "input_bytes": 3 * 224 * 224,  # uint8 RGB frame as the model reads it
        "result_bytes": 40,  # top-5 class ids and scores
    },
    "mobilenet_v2": {
        "task": "image classification",
        "accuracy": 0.7188,
        "accuracy_metric": "ImageNet top-1",
        "input_bytes": 3 * 224 * 224,
        "result_bytes": 40,
    },
    "yolov3_tiny": {
        "task": "object detection",
        "accuracy": 0.331,
        "accuracy_metric": "COCO mAP@0.5",
        "input_bytes": 3 * 416 * 416,
        "result_bytes": 1200,  # up to 100 boxes x (4 coords + class + score) in fp16
    },
    "conformer_s": {
        "task": "speech recognition",
        "accuracy": 0.973,
        "accuracy_metric": "1 - WER, LibriSpeech test-clean",
        "input_bytes": 32_000,  # 1 s of 16 kHz 16-bit PCM
        "result_bytes": 120,
    },
    "gpt2_decode": {
        "task": "LLM decode step (one token, 256-token context)",
        "accuracy": 0.4599,
        "accuracy_metric": "LAMBADA accuracy",
        "input_bytes": 4,  # one token id
        "result_bytes": 4,
    },
}

#: Bytes per activation element sent over the air at a split point (fp16), for every policy.
ACTIVATION_BYTES = 2
#: Bytes per parameter of a model shipped to a device (fp16), for the model-download modality.
PARAM_BYTES = 2


@dataclass(frozen=True)
class ModelProfile:
    """Per-block arrays of one model (index i = block i); split point s runs blocks [0, s) on the
    device and [s, n) on the server (s = 0: full offload, s = n: on-device)."""

    name: str
    task: str
    accuracy: float
    accuracy_metric: str
    input_bytes: int
    result_bytes: int
    layer_names: tuple[str, ...]
    flops: np.ndarray
    params: np.ndarray
    out_elems: np.ndarray
    cpu_s: np.ndarray

    @property
    def n_blocks(self) -> int:
        return len(self.layer_names)

    @property
    def total_flops(self) -> float:
        return float(self.flops.sum())

    def split_upload_bytes(self) -> np.ndarray:
        """Bytes sent uplink for split s = 0..n (s = n: nothing)."""
        act = self.out_elems[:-1] * ACTIVATION_BYTES
        return np.concatenate(([self.input_bytes], act, [0])).astype(np.float64)

    def prefix_cpu_s(self) -> np.ndarray:
        """CPU seconds of blocks [0, s) for s = 0..n."""
        return np.concatenate(([0.0], np.cumsum(self.cpu_s)))

    def prefix_params(self) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(self.params)))

    def model_bytes(self) -> float:
        return float(self.params.sum()) * PARAM_BYTES


def profile_model(name: str, repeats: int = 15, warmup: int = 3) -> dict[str, object]:
    """Profile one architecture block by block on this CPU (one thread)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mobileai.compute.architectures import ARCHITECTURES

    if name not in ARCHITECTURES:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(ARCHITECTURES)}")
    torch.manual_seed(0)
    model, x = ARCHITECTURES[name]()
    rows = []
    with torch.inference_mode():
        for block_name, block in model.named_children():
            with FlopCounterMode(display=False) as fc:
                y = block(x)
            for _ in range(warmup):
                block(x)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                block(x)
                times.append(time.perf_counter() - t0)
            rows.append(
                {
                    "name": block_name,
                    "flops": int(fc.get_total_flops()),
                    "params": int(sum(p.numel() for p in block.parameters())),
                    "out_elems": int(y.numel()),
                    "cpu_ms": round(statistics.median(times) * 1e3, 5),
                }
            )
            x = y
    return {**MODEL_FACTS[name], "input_shape": list(model_input_shape(name)), "layers": rows}


def model_input_shape(name: str) -> tuple[int, ...]:
    from mobileai.compute.architectures import ARCHITECTURES

    return tuple(ARCHITECTURES[name]()[1].shape)


def generate_profiles(out: Path | None = None, repeats: int = 15) -> Path:
    """Profile every architecture and write the JSON atomically (default: the packaged file)."""
    import torch

    from mobileai.compute.architectures import ARCHITECTURES

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = {n: profile_model(n, repeats=repeats) for n in ARCHITECTURES}
    finally:
        torch.set_num_threads(threads)
    doc = {
        "generated": {
            "date": _dt.date.today().isoformat(),
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
            "system": platform.platform(),
            "threads": 1,
            "repeats": repeats,
            "command": "mobileai offload-profile",
        },
        "models": models,
    }
    target = Path(out) if out is not None else Path(__file__).with_name(PROFILE_FILE)
    fd, tmp = tempfile.mkstemp(prefix=target.name, dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, target)
    return target


@cache
def _packaged() -> dict:
    text = resources.files("mobileai.compute").joinpath(PROFILE_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def profile_metadata() -> dict:
    """Where and how the packaged profile was measured."""
    return dict(_packaged()["generated"])


def available_models() -> list[str]:
    return sorted(_packaged()["models"])


def load_profile(name: str, doc: dict | None = None) -> ModelProfile:
    """The packaged (or given) profile of model ``name`` as arrays."""
    models = (doc or _packaged())["models"]
    if name not in models:
        raise KeyError(f"unknown model {name!r}; profiled models: {', '.join(sorted(models))}")
    m = models[name]
    layers = m["layers"]
    return ModelProfile(
        name=name,
        task=str(m["task"]),
        accuracy=float(m["accuracy"]),
        accuracy_metric=str(m["accuracy_metric"]),
        input_bytes=int(m["input_bytes"]),
        result_bytes=int(m["result_bytes"]),
        layer_names=tuple(r["name"] for r in layers),
        flops=np.array([r["flops"] for r in layers], dtype=np.float64),
        params=np.array([r["params"] for r in layers], dtype=np.float64),
        out_elems=np.array([r["out_elems"] for r in layers], dtype=np.float64),
        cpu_s=np.array([r["cpu_ms"] for r in layers], dtype=np.float64) / 1e3,
    )


def reference_cpu_flops_per_s(doc: dict | None = None) -> float:
    """This machine's effective single-thread rate over all profiled blocks (FLOPs / CPU second):
    the yardstick that converts measured CPU latency into latency on a node of known throughput."""
    models = (doc or _packaged())["models"]
    flops = sum(r["flops"] for m in models.values() for r in m["layers"])
    secs = sum(r["cpu_ms"] for m in models.values() for r in m["layers"]) / 1e3
    return flops / secs


if __name__ == "__main__":
    print(generate_profiles())
