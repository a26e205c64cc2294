"""What the benchmarks share: measurements in fresh subprocesses, machine facts, formatting.

Each measurement runs in its own interpreter (``python -m <module> --worker ...``) so its peak
resident memory (``getrusage`` ``ru_maxrss``) is its own; the parent watches the child's
resident memory and wall time and kills it past a cap, reporting the row as skipped.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

import torch

#: Prefix of the one stdout line that carries a worker's JSON result.
RESULT_TAG = "@@mobileai-bench@@ "


def maxrss_mb() -> float:
    """Peak resident memory of this process so far, MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def rss_mb(pid: int) -> float | None:
    """Current resident memory of a process, MiB (Linux ``/proc``; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def load_avg() -> float | None:
    """1-minute load average (other processes competing for the cores distort timings)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, memory, load and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gb = None
    try:
        sionna = metadata.version("sionna-no-rt")
    except metadata.PackageNotFoundError:
        sionna = None
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sionna_no_rt": sionna,
        "device": device,
        "platform": platform.platform(),
    }
    if hasattr(os, "getloadavg"):
        info["load_avg_1min_at_start"] = load_avg()
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def emit_result(result: dict[str, Any]) -> None:
    """A worker's last word: its result as one tagged JSON line on stdout."""
    sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")


def run_worker(
    module: str, args: list[str], kill_mb: float, timeout_s: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``python -m module --worker *args`` and return its result; kill it past ``kill_mb``
    resident or ``timeout_s`` and return ``{"skipped": why, "peak_mb_seen": ...}`` instead."""
    cmd = [sys.executable, "-m", module, "--worker", *args]
    child_env = dict(os.environ, PYTHONWARNINGS="ignore", **(env or {}))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env)
    t0 = time.monotonic()
    seen_mb = 0.0
    while proc.poll() is None:
        rss = rss_mb(proc.pid)
        reason = None
        if rss is not None:
            seen_mb = max(seen_mb, rss)
            if rss > kill_mb:
                reason = f"killed: resident memory {rss:.0f} MB exceeded the cap of {kill_mb:.0f} MB"
        if time.monotonic() - t0 > timeout_s:
            reason = f"killed: ran longer than {timeout_s:.0f} s"
        if reason:
            proc.kill()
            proc.wait()
            return {"skipped": reason, "peak_mb_seen": round(seen_mb)}
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (stderr.strip().splitlines() or ["no output"])[-1]
    return {"skipped": f"failed (exit {proc.returncode}): {tail}"}


def command_line(module: str, script: str) -> str:
    """How this benchmark was started, as a user would type it again."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv else "python"
    if argv0 in (script, "__main__.py"):
        return shlex.join(["python", "-m", module, *sys.argv[1:]])
    if argv0.endswith(".py"):
        return shlex.join(["python", os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    return shlex.join([argv0, *sys.argv[1:]])


def fmt(v: Any, spec: str) -> str:
    """``format(v, spec)``, or ``-`` for a missing value."""
    return "-" if v is None else format(v, spec)
