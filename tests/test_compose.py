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
    assert 'MLFLOW_BACKEND_STORE_URI="postgresql://' in services["mlflow"]["entrypoint"][2]
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


def test_secrets_come_from_uncommitted_files_and_never_from_a_command_line():
    doc = load()
    services = doc["services"]
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "docker/.env" in ignored and "docker/secrets/" in ignored
    assert (REPO / "docker" / "env.example").exists()
    # Postgres reads its password from a compose secret (a file), and so does MLflow.
    assert "postgres_password" in doc["secrets"]
    assert doc["secrets"]["postgres_password"]["file"].startswith("${POSTGRES_PASSWORD_FILE")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in services["postgres"]["environment"]
    for name in ("postgres", "mlflow"):
        assert services[name]["secrets"] == ["postgres_password"], name
    for name, service in services.items():
        argv = " ".join(str(a) for a in service.get("command", []))
        assert "PASSWORD" not in argv and "postgresql://" not in argv, name
    mlflow_entry = " ".join(services["mlflow"]["entrypoint"])
    assert "/run/secrets/postgres_password" in mlflow_entry
    assert "exec mlflow server" in mlflow_entry  # the URI travels in the environment


def test_ray_runs_with_token_auth_everywhere():
    services = load()["services"]
    for name in ("ray-head", "ray-worker", "sweep"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?"), name
    assert "RAY_AUTH_TOKEN=" in (REPO / "docker" / "env.example").read_text()


def test_the_basic_auth_variant_is_shown():
    text = COMPOSE.read_text()
    assert "--app-name=basic-auth" in text and "MLFLOW_AUTH_CONFIG_PATH" in text
    assert "MLFLOW_TRACKING_PASSWORD" in text


def test_services_mount_only_what_they_need():
    services = load()["services"]
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert services["mlflow"]["volumes"] == ["artifacts:/mlartifacts"]
    assert "environment" not in services["mlflow"]  # no Ray token, no dataset roots
    for name in ("ray-head", "ray-worker", "sweep"):
        targets = {str(v).removesuffix(":ro").rsplit(":", 1)[1] for v in services[name]["volumes"]}
        assert targets == {"/data", "/cache"}, name


def test_the_artifact_folder_exists_in_the_image_owned_by_the_runtime_user():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    services = load()["services"]
    dest = next(
        a.split("=", 1)[1].split()[0]
        for a in services["mlflow"]["command"]
        if a.startswith("--artifacts-destination=")
    )
    assert f"artifacts:{dest}" in services["mlflow"]["volumes"]
    user = re.search(r"^USER (\w+)", dockerfile, re.M).group(1)
    mkdir = re.search(r"mkdir -p ([^\\&]+)", dockerfile).group(1).split()
    chown = re.search(rf"chown -R {user}:{user} ([^\\&\n]+)", dockerfile).group(1).split()
    assert dest in mkdir and dest in chown


def test_the_sweep_service_forwards_signals_to_the_driver():
    sweep = load()["services"]["sweep"]
    assert sweep["init"] is True  # tini as PID 1 passes SIGTERM on
    script = sweep["entrypoint"][2]
    assert "exec mtl-sweep run" in script  # the driver replaces the shell
    assert "ray stop" not in script.split("exec mtl-sweep run")[1]  # nothing runs after it


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
