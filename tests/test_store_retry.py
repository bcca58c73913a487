"""Trial logging retries transient tracking-store faults and nothing else."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE

from trainables import store_retry
from trainables.store_retry import RetryingClient, is_transient


class Flaky:
    """A client whose `log` fails `failures` times with `exc`, then answers."""

    def __init__(self, failures: int, exc: BaseException) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0
        self.name = "not callable"

    def log(self, value: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return value


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(store_retry, "FIRST_WAIT_S", 0.0)
    monkeypatch.setattr(store_retry, "MAX_WAIT_S", 0.0)


def test_a_locked_database_is_retried_until_it_answers():
    locked = MlflowException("(sqlite3.OperationalError) database is locked")
    flaky = Flaky(3, locked)
    assert RetryingClient(flaky).log(7) == 7
    assert flaky.calls == 4


def test_a_permanent_error_is_raised_at_once():
    bad = MlflowException("no such run", error_code=RESOURCE_DOES_NOT_EXIST)
    flaky = Flaky(3, bad)
    with pytest.raises(MlflowException, match="no such run"):
        RetryingClient(flaky).log(7)
    assert flaky.calls == 1


def test_it_gives_up_after_its_deadline(monkeypatch):
    monkeypatch.setattr(store_retry, "call_bound_s", lambda give_up_s: 0.05)
    flaky = Flaky(10**6, MlflowException("down", error_code=TEMPORARILY_UNAVAILABLE))
    with pytest.raises(MlflowException, match="down"):
        RetryingClient(flaky, give_up_s=0.2).log(7)
    assert flaky.calls > 1


def test_attributes_pass_through():
    assert RetryingClient(Flaky(0, ValueError())).name == "not callable"


def test_mlflows_own_error_for_a_server_that_is_down_is_transient(monkeypatch):
    """The exception MLflow really raises when nothing listens (after its own retries)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
    with pytest.raises(MlflowException) as caught:
        client.get_experiment_by_name("x")
    assert is_transient(caught.value)


def test_a_missing_run_in_a_real_store_is_not_transient(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(MlflowException) as caught:
        client.get_run("0" * 32)
    assert not is_transient(caught.value)


def test_a_create_whose_answer_is_lost_makes_one_run(tmp_path, monkeypatch):
    """The store creates the run, then the connection drops before the answer: the retry
    finds that run by its attempt token instead of creating a second one."""
    from mtl_core import contract as C
    from trainables.trial_run import TrialRun

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = MlflowClient(uri).create_experiment("lost-answer")
    real_create = MlflowClient.create_run
    calls = []

    def create_then_drop(self, *args, **kwargs):
        run = real_create(self, *args, **kwargs)
        calls.append(run.info.run_id)
        if len(calls) == 1:
            raise ConnectionError("connection reset by peer")
        return run

    monkeypatch.setattr(MlflowClient, "create_run", create_then_drop)
    trial = TrialRun(uri, exp, "t", {C.KEY: "k"})
    runs = MlflowClient(uri).search_runs([exp])
    assert len(calls) == 1  # found, not created again
    assert [r.info.run_id for r in runs] == [trial.run_id] == calls
    assert runs[0].data.tags[C.KEY] == "k"


def test_a_trial_gives_up_on_a_hung_server_within_its_deadline(tmp_path, monkeypatch):
    """A server that accepts connections and never answers: MLflow's own retries (7, with
    a 120 s timeout each by default) used to run minutes inside one call. The trial's
    deadline now holds for the whole call."""
    from trainables.trial_run import TrialRun

    # MLflow's defaults, and the test's environment is restored afterwards.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    deadline = 10.0
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel completes the handshake; nobody ever reads
        uri = f"http://127.0.0.1:{hung.getsockname()[1]}"
        outcome: dict[str, object] = {}

        def open_run() -> None:
            started = time.monotonic()
            try:
                TrialRun(uri, "1", "t", {}, give_up_s=deadline)
            except Exception as exc:
                outcome["error"] = exc
            outcome["took"] = time.monotonic() - started

        worker = threading.Thread(target=open_run, daemon=True)
        worker.start()
        worker.join(deadline + 20)
    assert "took" in outcome, "still inside MLflow's own retries after the deadline"
    assert outcome["took"] <= deadline + 1.0
    assert is_transient(outcome["error"])  # a store fault, given up on: the trial fails
