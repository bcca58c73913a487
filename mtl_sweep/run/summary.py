"""What `mtl-sweep run` prints at the start and the end."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

import click

from mtl_core import contract as C
from mtl_sweep.run.interrupt import Interrupt
from mtl_sweep.store.ui_link import free_port, hide_password, ui_hint

LIST_DONE_MAX = 20  # list skipped keys one per line up to this many


def print_skipped(skipped: list, total: int) -> None:
    """List the trials already done (FINISHED in MLflow), up to LIST_DONE_MAX."""
    if not skipped:
        return
    click.echo(f"{len(skipped)} of {total} trials already done (FINISHED in MLflow), skipped:")
    for t in skipped[:LIST_DONE_MAX]:
        click.echo(f"  {t.key}  {t.name}")
    if len(skipped) > LIST_DONE_MAX:
        click.echo(f"  ... and {len(skipped) - LIST_DONE_MAX} more (mtl-sweep plan lists them)")


def command_seconds() -> float:
    """Wall seconds since this process started: what the user waited for, interpreter
    start, imports and Ray's start and shutdown included.

    On Linux from /proc (the process's start and the uptime, both in ticks since boot:
    10 ms); elsewhere psutil, whose start time rounds the boot time to the second.
    """
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())


def next_steps(
    uri: str, experiment_id: str, experiment: str, sweep: str, attached: bool, port: int
) -> list[str]:
    """Where to look next: the report command for this sweep (and the report.md on the
    sweep run, when it was attached), then the MLflow UI on a free `port`."""
    args = ["--tracking-uri", hide_password(uri), "-e", experiment, "-s", sweep]
    command = shlex.join(["mtl-sweep", "report", *args, "-o", "report.html"])
    lines = [f"report: {command}"]
    if attached:
        lines.append(f"  (the markdown report is also on the sweep run as {C.REPORT_ARTIFACT})")
    return lines + ui_hint(uri, experiment_id, port)


def print_next_steps(
    uri: str, experiment_id: str, experiment: str, sweep: str, attached: bool
) -> None:
    """Print `next_steps`, with the UI on port 5000 or, when that is taken, a free one."""
    for line in next_steps(uri, experiment_id, experiment, sweep, attached, free_port()):
        click.echo(line)


def print_summary(outcome: Any, n_skipped: int, elapsed: float, interrupt: Interrupt) -> None:
    """The closing lines: counts and the wall time, then what was interrupted and what
    failed, and why."""
    echo = click.echo
    line = f"finished {len(outcome.finished)}, failed {len(outcome.failed)}"
    if interrupt.requested:
        line += f", interrupted {len(outcome.interrupted)}"
    echo(f"{line}, already done {n_skipped}; {elapsed:.1f} s since the command started")
    if interrupt.requested and not outcome.interrupted:
        echo(
            f"interrupted by {interrupt.name} with no trial running: the sweep run is "
            "KILLED; the next run starts what is not done",
            err=True,
        )
    elif interrupt.requested:
        echo(
            f"interrupted by {interrupt.name}: the sweep run is KILLED; "
            "these trials resume from their last checkpoint on the next run:",
            err=True,
        )
        for request in outcome.interrupted:
            echo(f"  {request.key}  {request.name}", err=True)
    if outcome.failed:
        echo("failed:", err=True)
        for request, error in outcome.failed:
            cfg = request.config
            detail = {
                k: getattr(cfg, k)
                for k in ("tasks", "backbone", "weighting", "loss_weights", "seed")
            }
            echo(f"  {request.key}  {request.name}  {detail}", err=True)
            echo(f"    {error}", err=True)
