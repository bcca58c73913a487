"""A real `mlflow server` on loopback for fault tests: started, killed for good (SIGKILL,
no graceful shutdown), and started again on the same port and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .test_cluster import free_port, wait_http


class MlflowServer:
    """One server process at a time, its database and artifacts under `root`."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        """Serve and wait until /health answers. One worker: it comes up seconds sooner on
        two cores."""
        db = self.root / "mlflow-server.db"
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "mlflow", "server", "--workers", "1"),
                *("--backend-store-uri", f"sqlite:///{db}", "--serve-artifacts"),
                *("--artifacts-destination", str(self.root / "mlartifacts")),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killed as a whole
        )
        wait_http(f"{self.uri}/health", timeout)

    def kill(self) -> None:
        """SIGKILL the server and its workers."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
