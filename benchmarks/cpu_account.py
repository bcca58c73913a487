"""Where a command's CPU time goes: its whole process tree, sampled, grouped by role.

A sweep's startup on a small machine is CPU-bound (every core busy from the first
seconds), so its wall time is the CPU work before the first trial divided by the cores.
This samples each process of the tree (psutil's user + system time, every `interval`
seconds) and sums it by role at any moment, which says what a faster startup must remove.
A process that exits between two samples loses at most one interval of its CPU time.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import psutil

GROUPS = ("driver", "synthetic faces", "trial workers", "Ray's own processes")


@dataclass
class _Proc:
    pid: int
    cmdlines: set[str] = field(default_factory=set)  # Ray's workers rename themselves
    samples: list[tuple[float, float]] = field(default_factory=list)  # (epoch s, CPU s)

    def cpu_at(self, when: float) -> float:
        """CPU seconds used by `when` (the last sample at or before it)."""
        used = 0.0
        for t, cpu in self.samples:
            if t > when:
                break
            used = cpu
        return used


def role(pid: int, root: int, cmdlines: set[str]) -> str:
    """The group a process of the tree belongs to, from every command line it showed (a
    new worker first shows its parent's, then its script's, then the title Ray sets)."""
    if pid == root:
        return "driver"
    if any("multiprocessing" in c for c in cmdlines):  # face renderers and their tracker
        return "synthetic faces"
    worker = ("ray::IDLE", "ray::ImplicitFunc")
    if any(c.startswith(worker) or "default_worker.py" in c for c in cmdlines):
        return "trial workers"  # Ray's worker processes, which Tune's trial actors run in
    return "Ray's own processes"  # GCS, raylet, dashboard, agents, monitors


class TreeSampler:
    """Samples the CPU time of `root` and all its descendants in a background thread."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self.root, self.interval = root, interval
        self.procs: dict[tuple[int, float], _Proc] = {}  # by (pid, creation time)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.root)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:  # the command has exited
            return
        now = time.time()
        for proc in tree:
            try:
                # The creation time tells a reused pid's new process from the old one.
                key = (proc.pid, proc.create_time())
                cpu = proc.cpu_times()
                cmdline = " ".join(proc.cmdline())
            except psutil.Error:
                continue
            entry = self.procs.setdefault(key, _Proc(proc.pid))
            entry.cmdlines.add(cmdline)
            entry.samples.append((now, cpu.user + cpu.system))

    def by_role(self, until: float) -> dict[str, float]:
        """CPU seconds per group used by the epoch time `until`, in GROUPS order."""
        totals: dict[str, float] = defaultdict(float)
        for proc in self.procs.values():
            totals[role(proc.pid, self.root, proc.cmdlines)] += proc.cpu_at(until)
        return {g: totals.get(g, 0.0) for g in GROUPS}
