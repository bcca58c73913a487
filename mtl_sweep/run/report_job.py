"""The sweep's report: rendered in a thread while Ray shuts down, then attached to the
sweep run.

Ray's shutdown mostly waits for its processes to exit (1.45 s wall, 0.06 s of the driver's
CPU, measured here), and the report mostly computes (importing pandas and scipy, reading
the runs), so the two overlap instead of following each other at the end of every sweep.
"""

from __future__ import annotations

import threading
from typing import Any

import click

from mtl_core import contract as C


class ReportJob:
    """Render the markdown report of one sweep, in the background or on demand."""

    def __init__(self, tracking_uri: str, experiment: str, sweep: str) -> None:
        self.tracking_uri, self.experiment, self.sweep = tracking_uri, experiment, sweep
        self.thread: threading.Thread | None = None
        self.text: str | None = None
        self.error: BaseException | None = None
        self.attached = False  # whether report.md is on the sweep run

    def start(self) -> None:
        """Start rendering now (every trial has ended its run)."""
        self.thread = threading.Thread(target=self._render, name="report", daemon=True)
        self.thread.start()

    def _render(self) -> None:
        try:
            from mtl_sweep.report import render_report

            self.text = render_report(
                self.tracking_uri, experiment=self.experiment, sweep=self.sweep, fmt="markdown"
            )
        except BaseException as exc:  # handed to attach() on the main thread
            self.error = exc

    def attach(self, client: Any, run_id: str) -> None:
        """Store the report on the sweep run as report.md (rendering it here if it was never
        started). A report that cannot be made is a warning: the runs are safe in MLflow."""
        if self.thread is None:
            self._render()
        else:
            self.thread.join()
        if isinstance(self.error, ImportError):
            return
        if self.error is not None:
            click.echo(f"report not attached: {self.error}", err=True)
            return
        client.log_text(run_id, self.text, C.REPORT_ARTIFACT)
        self.attached = True
