"""Trial resources against the Ray cluster: fits, concurrency, fake local resources."""

from __future__ import annotations

import socket

import pytest

from mtl_core.errors import InfraError, SpecError, UserError
from mtl_sweep.run.cluster import (
    check_fits,
    check_reachable,
    concurrency,
    largest_node,
    local_resources,
    wait_until_fits,
)

NODES = [
    {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}},
    {"Alive": True, "Resources": {"CPU": 16.0}},
    {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}},  # a dead node counts for nothing
]


def test_largest_node_ignores_dead_nodes():
    assert largest_node(NODES) == {"CPU": 16.0, "GPU": 1.0}


def test_a_trial_must_fit_on_one_node():
    check_fits("s.yaml", 16, 0, NODES)
    check_fits("s.yaml", 4, 1, NODES)
    with pytest.raises(SpecError) as exc:
        check_fits("s.yaml", 1, 2, NODES)
    assert str(exc.value) == (
        "s.yaml: resources.gpu: each trial asks for 2 GPU(s) but the largest node of the Ray "
        "cluster has 1; lower resources.gpu or add a node with more GPUs"
    )
    with pytest.raises(SpecError, match=r"resources\.cpu: each trial asks for 17 CPU\(s\)"):
        check_fits("s.yaml", 17, 0, NODES)
    with pytest.raises(SpecError, match=r"asks for 0.5 GPU\(s\) but .* has 0"):
        check_fits("s.yaml", 1, 0.5, [NODES[1]])


def test_waiting_for_nodes_that_join(monkeypatch):
    monkeypatch.setattr("mtl_sweep.run.cluster.time.sleep", lambda s: None)
    seen = iter([[NODES[1]], [NODES[1]], NODES])
    wait_until_fits("s.yaml", 1, 1, lambda: next(seen), wait_s=60)  # the GPU node joined
    with pytest.raises(SpecError):
        wait_until_fits("s.yaml", 1, 1, lambda: [NODES[1]], wait_s=0)


def test_concurrency_is_limited_by_cpus_and_gpus():
    assert concurrency(1, 0, {"CPU": 2}) == 2
    assert concurrency(1, 0.5, {"CPU": 2, "GPU": 1}) == 2
    assert concurrency(1, 0.5, {"CPU": 8, "GPU": 1}) == 2
    assert concurrency(4, 0.25, {"CPU": 8, "GPU": 1}) == 2
    assert concurrency(1, 1, {"CPU": 8}) == 1  # never 0


def test_local_resources_from_the_environment():
    assert local_resources({}) == {}
    env = {"MTL_SWEEP_RAY_NUM_CPUS": "2", "MTL_SWEEP_RAY_NUM_GPUS": "1"}
    assert local_resources(env) == {"num_cpus": 2, "num_gpus": 1.0}
    for var, bad in (("MTL_SWEEP_RAY_NUM_GPUS", "two"), ("MTL_SWEEP_RAY_NUM_CPUS", "0")):
        with pytest.raises(UserError, match=rf"\${var} must be a number"):
            local_resources({var: bad})


def test_a_cluster_address_nothing_answers_at_fails_at_once():
    # ray.init retried such an address for minutes (a bad --address looked like a hang).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connection is refused
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            with pytest.raises(InfraError, match=f"no Ray cluster answers at {address}"):
                check_reachable(address)
        s.listen()
        check_reachable(f"127.0.0.1:{port}")  # something answers: left to Ray
    for address in (None, "", "auto", "local", "anyscale://x"):
        check_reachable(address)
    with pytest.raises(UserError, match="expected host:port"):
        check_reachable("headnode")
