"""Start and stop a real server for tests, examples and benchmarks; measure it; inject faults.

Bounded everywhere: the server binds 127.0.0.1 only, readiness is polled with a deadline, and the
whole process group (API server, engine core, workers) is terminated on exit, killed if it lingers.

Fault injection (`install_faults`) lives here, not in the service, so production code carries no
test branches: the server only imports this module when `VLLM_D2L_TEST_FAULTS` is set.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`vllm-d2l serve ARGS` in its own process group; use as a context manager."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, log_path: Path | str | None = None,
                 startup_timeout: float = 300.0, port: int | None = None):
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    def command(self) -> list[str]:
        """What runs: `vllm-d2l serve` with this server's flags (a subclass may run vLLM's own)."""
        return [sys.executable, "-m", "vllm_d2l.cli", "serve", *self.args]

    def start(self) -> "ServerProcess":
        out = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = t0 + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} during startup{self._tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as r:
                    if r.status == 200:
                        self.startup_seconds = time.monotonic() - t0
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"server not ready after {self.startup_timeout:.0f}s{self._tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash or the OOM killer would."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def rss_bytes(self) -> int:
        """Resident memory of every process in the server's group (see `process_group_rss`)."""
        return process_group_rss(self.proc.pid) if self.alive() else 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def _tail(self, n: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
        return "\n--- server log tail ---\n" + "\n".join(lines)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------------------- memory
def process_group_rss(pgid: int) -> int:
    """Sum of VmRSS over the processes in group `pgid` (Linux /proc).

    Pages shared between processes (the model's weights mapped by API server and engine) count
    once per process, so this over-states the machine's use; it is the number the OOM killer and
    container limits look at per process, summed.
    """
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) != pgid:  # after the ")": state, ppid, pgrp
                continue
            with open(f"/proc/{entry}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total


class PeakRss:
    """Samples a server's process-group RSS on a thread while the `with` block runs."""

    def __init__(self, server: ServerProcess, interval_s: float = 0.2):
        self.server, self.interval_s = server, interval_s
        self.peak = self.start = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakRss":
        self.start = self.server.rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.peak = max(self.peak, self.server.rss_bytes())


# ----------------------------------------------------------------------------------- faults
def install_faults(svc: Any, spec: str) -> None:
    """Make uploads whose text contains a marker fail in a chosen place, inside the real server.

    `spec` is `kind=marker[,kind=marker...]` (`VLLM_D2L_TEST_FAULTS`):

    - `oom`: the generator raises `torch.OutOfMemoryError`, as a huge document would on a GPU;
    - `crash`: the generator raises a `RuntimeError`;
    - `register`: the workers receive damaged adapter bytes, so vLLM's own loading fails inside the
      real worker method and the service must roll the store entry back.
    """
    import torch

    from . import get_logger
    from .ids import document_id

    faults = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
    get_logger(__name__).warning("vllm-d2l: TEST FAULTS ACTIVE (%s); never set VLLM_D2L_TEST_FAULTS in production",
                                 ", ".join(sorted(faults)))
    generator = svc.generator
    if generator is None:
        return
    real_internalize = generator.internalize
    real_register = svc._register_in_workers
    doomed: set[str] = set()

    def internalize(text, *args, **kwargs):
        if faults.get("oom") and faults["oom"] in text:
            raise torch.OutOfMemoryError("injected: CUDA out of memory. Tried to allocate 96.00 GiB")
        if faults.get("crash") and faults["crash"] in text:
            raise RuntimeError("injected generator failure")
        if faults.get("register") and faults["register"] in text:
            doomed.add(document_id(text, svc.fingerprint))
        return real_internalize(text, *args, **kwargs)

    async def register(int_id, doc_id, path, data, config):
        if doc_id in doomed:
            data = data[: len(data) // 2]
        return await real_register(int_id, doc_id, path, data, config)

    generator.internalize = internalize
    svc._register_in_workers = register
