"""What a figure needs next to it to be read honestly: machine, load, what else was running."""
from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def training_running() -> bool:
    """Whether a `vllm-d2l train` job shares the machine (it takes one of the cores)."""
    try:
        return subprocess.run(["pgrep", "-f", "vllm-d2l train"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def snapshot() -> dict:
    """Cheap conditions, taken at the start and the end of every scenario."""
    return {"time_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "load_average": load_average(), "training_running": training_running()}


def machine() -> dict:
    import torch
    import vllm

    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu_model": cpu_model(), "cpus": os.cpu_count(), "memory_gib": round(mem_gib, 1),
            "python": platform.python_version(), "torch": torch.__version__, "vllm": vllm.__version__,
            "git_commit": git_commit()}
