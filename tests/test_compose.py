"""The compose stack agrees with what the CLI reads, and publishes nothing on 0.0.0.0."""

from __future__ import annotations

import re

import yaml

from mtl_sweep.store.uri import resolve_tracking_uri

from .conftest import REPO

COMPOSE = REPO / "docker" / "compose.yaml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _ports(service: dict) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def test_the_services_are_there():
    services = load()["services"]
    assert {"postgres", "mlflow", "ray-head", "ray-worker", "sweep"} <= set(services)


def test_nothing_is_published_on_all_interfaces():
    for name, service in load()["services"].items():
        for port in _ports(service):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port}"
            assert "0.0.0.0" not in port


def test_env_vars_point_at_the_services_the_cli_reads(monkeypatch):
    doc = load()
    services = doc["services"]
    env = services["sweep"]["environment"]
    # The names the CLI reads.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
    assert resolve_tracking_uri() == env["MLFLOW_TRACKING_URI"]
    host, port = re.match(r"http://([\w-]+):(\d+)$", env["MLFLOW_TRACKING_URI"]).groups()
    assert host == "mlflow"
    mlflow_cmd = " ".join(services["mlflow"]["command"])
    assert f"--port={port}" in mlflow_cmd
    assert "--serve-artifacts" in mlflow_cmd
    assert "postgresql://" in mlflow_cmd
    ray_host, ray_port = env["RAY_ADDRESS"].split(":")
    assert ray_host == "ray-head"
    assert f"--port={ray_port}" in services["ray-head"]["command"]
    assert f"--address={env['RAY_ADDRESS']}" in services["ray-worker"]["command"]
    runner = (REPO / "mtl_sweep" / "run" / "runner.py").read_text()
    assert 'os.environ.get("RAY_ADDRESS")' in runner


def test_workers_reserve_gpus_and_datasets_are_read_only():
    services = load()["services"]
    devices = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    for name in ("ray-head", "ray-worker", "sweep"):
        mounts = [str(v) for v in services[name]["volumes"]]
        data = [m for m in mounts if ":/data" in m]
        assert data and all(m.endswith(":ro") for m in data), name


def test_secrets_come_from_an_uncommitted_env_file():
    text = COMPOSE.read_text()
    assert "${POSTGRES_PASSWORD" in text
    assert "docker/.env" in (REPO / ".gitignore").read_text().splitlines()
    assert (REPO / "docker" / "env.example").exists()


def test_the_image_installs_with_the_readme_command_and_runs_as_a_user():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    first_line = (REPO / "README.md").read_text().splitlines()[0]
    install = first_line.split("&&")[0].strip()
    assert f"RUN {install}" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert 'ENTRYPOINT ["mtl-sweep"]' in dockerfile
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for path in ("data/", "mlflow.db", "ray_results/"):
        assert path in ignored
