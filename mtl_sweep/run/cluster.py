"""What each trial asks Ray for, against what the Ray cluster has.

A trial's CPUs and GPUs must fit on one node (Tune places a trial's resources together),
so a spec asking for more than the largest node has would wait forever; the runner
refuses it with one line (exit 2) before Tune starts a trial.

For tests, a local Ray instance can declare resources it does not have:
`MTL_SWEEP_RAY_NUM_CPUS` and `MTL_SWEEP_RAY_NUM_GPUS` are passed to `ray.init` as
`num_cpus` / `num_gpus` (fake GPUs let fractional-GPU scheduling run on a CPU-only
machine). They are ignored when joining a cluster (`--address`).

On a cluster, worker nodes may still be joining when the driver starts (a compose stack
brought up a moment ago), so there the check waits up to JOIN_WAIT_S for a node that fits.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mtl_core.errors import InfraError, SpecError, UserError

CONNECT_TIMEOUT_S = 5.0  # how long a cluster address may take to accept a connection
JOIN_WAIT_S = 30.0  # on a cluster, how long worker nodes that are still joining may take
LOCAL_RESOURCE_ENV = {"num_cpus": "MTL_SWEEP_RAY_NUM_CPUS", "num_gpus": "MTL_SWEEP_RAY_NUM_GPUS"}


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise InfraError when nothing accepts a connection at a cluster `address`
    (host:port or ray://host:port): ray.init would retry it for minutes, printing warnings.
    `auto`, `local` and other schemes are left to Ray."""
    if not address or address in ("auto", "local"):
        return
    scheme, sep, rest = address.partition("://")
    if sep and scheme != "ray":
        return
    host, colon, port = (rest if sep else address).rpartition(":")
    if not colon or not host or not port.isdigit():
        raise UserError(f"Ray address {address!r}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout).close()
    except OSError as exc:
        raise InfraError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            "`ray start --head` or fix --address / $RAY_ADDRESS"
        ) from None


def local_resources(env: Mapping[str, str] | None = None) -> dict[str, float]:
    """`ray.init` keyword arguments from MTL_SWEEP_RAY_NUM_CPUS / _NUM_GPUS, where set."""
    env = os.environ if env is None else env
    out: dict[str, float] = {}
    for kwarg, var in LOCAL_RESOURCE_ENV.items():
        text = env.get(var, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not math.isfinite(value) or value < 0 or (kwarg == "num_cpus" and value < 1):
            raise UserError(f"${var} must be a number >= {int(kwarg == 'num_cpus')}, got {text!r}")
        out[kwarg] = int(value) if kwarg == "num_cpus" else value
    return out


def largest_node(nodes: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The most CPUs and GPUs any one alive node has (`ray.nodes()` entries)."""
    best = {"CPU": 0.0, "GPU": 0.0}
    for node in nodes:
        if not node.get("Alive", True):
            continue
        have = node.get("Resources", {})
        for name in best:
            best[name] = max(best[name], float(have.get(name, 0.0)))
    return best


def check_fits(file: str, cpu: float, gpu: float, nodes: Iterable[Mapping[str, Any]]) -> None:
    """Raise SpecError (exit 2) when one trial's CPUs or GPUs fit on no node of the cluster."""
    node = largest_node(nodes)
    for key, want, have, unit in (
        ("gpu", gpu, node["GPU"], "GPU"),
        ("cpu", cpu, node["CPU"], "CPU"),
    ):
        if want > have:
            raise SpecError(
                file,
                f"resources.{key}",
                f"each trial asks for {want:g} {unit}(s) but the largest node of the Ray "
                f"cluster has {have:g}; lower resources.{key} or add a node with more {unit}s",
            )


def check_fits_here(file: str, cpu: float) -> None:
    """`check_fits` against the local Ray instance `run` would start, without starting it
    (a dry run): its CPUs are this machine's, or MTL_SWEEP_RAY_NUM_CPUS. GPUs are left to
    the real run, which asks Ray what it detected."""
    have = local_resources().get("num_cpus") or os.cpu_count() or 1
    check_fits(file, cpu, 0.0, [{"Resources": {"CPU": have}}])


def concurrency(cpu: float, gpu: float, cluster: Mapping[str, float]) -> int:
    """How many trials the cluster's totals let run at once (at least 1)."""
    n = int(cluster.get("CPU", 1) // cpu)
    if gpu > 0:
        n = min(n, int(cluster.get("GPU", 0) // gpu))
    return max(1, n)


def wait_until_fits(
    file: str,
    cpu: float,
    gpu: float,
    nodes: Callable[[], Iterable[Mapping[str, Any]]],
    wait_s: float,
) -> None:
    """check_fits, retried for up to `wait_s` seconds while nodes join (0: check once)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            check_fits(file, cpu, gpu, nodes())
            return
        except SpecError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(1.0)
