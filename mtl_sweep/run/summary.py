"""What `mtl-sweep run` prints at the start and the end."""

from __future__ import annotations

from typing import Any

import click

from mtl_sweep.run.interrupt import Interrupt

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


def print_summary(outcome: Any, n_skipped: int, elapsed: float, interrupt: Interrupt) -> None:
    """The closing lines: counts, then what was interrupted and what failed, and why."""
    echo = click.echo
    line = f"finished {len(outcome.finished)}, failed {len(outcome.failed)}"
    if interrupt.requested:
        line += f", interrupted {len(outcome.interrupted)}"
    echo(f"{line}, already done {n_skipped} in {elapsed:.0f}s")
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
