"""The driver's store heartbeat and the fault settings, without a sweep (issue 32)."""

from __future__ import annotations

import pytest
from ray import cloudpickle

from mtl_core.errors import InfraError, UserError
from mtl_sweep.run import store_watch
from mtl_sweep.run.fault_env import FaultSettings
from mtl_sweep.run.interrupt import Interrupt
from mtl_sweep.run.store_watch import StoreWatch


class Store:
    """A probe whose store is up or down, as the test says."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self, uri: str) -> None:
        if not self.up:
            raise InfraError(f"tracking server {uri} is unreachable: connection refused")


def test_the_watch_says_once_when_the_store_went_and_gives_up_after_every_attempt(
    monkeypatch, capsys
):
    now = [1000.0]
    monkeypatch.setattr(store_watch.time, "time", lambda: now[0])
    store = Store()
    watch = StoreWatch("http://user:secret@127.0.0.1:5000", 60, 2, probe=store)
    assert watch.check()
    store.up = False
    for _ in range(10):  # 10 probes, 15 s apart: the line comes once
        now[0] += 15
        assert not watch.check()
        assert watch.gave_up() is (now[0] - 1015 >= 60 * 2 + store_watch.GRACE_S)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "secret" not in err[0]
    assert "unreachable since" in err[0] and "trials will fail after" in err[0]
    assert "(60s deadline x 2 attempt(s)" in err[0]
    assert watch.gave_up()
    store.up = True
    assert watch.check() and "reachable again" in capsys.readouterr().out


def test_a_tune_stopper_that_holds_the_watch_pickles():
    """Tune pickles its stopper with the experiment state; the watch's thread must not go."""
    watch = StoreWatch("sqlite:///x.db", 60, 1, probe=Store())
    watch.start()
    try:
        interrupt = Interrupt()
        interrupt.stop_when(watch.gave_up)
        stopper = cloudpickle.loads(cloudpickle.dumps(interrupt.stopper()))
        assert stopper.stop_all() is False
    finally:
        watch.stop()


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("MTL_SWEEP_STORE_DEADLINE_S", "soon", "is not a number"),
        ("MTL_SWEEP_STORE_DEADLINE_S", "2", "at least 10 seconds"),
        ("MTL_SWEEP_STORE_DEADLINE_S", "nan", "not a finite number"),
        ("MTL_SWEEP_DEBUG_KILL_IN_SAVE", "1.5", "is not an integer"),
        ("MTL_SWEEP_DEBUG_KILL_IN_SAVE", "-1", "a round index"),
    ],
)
def test_a_bad_fault_setting_is_one_line_naming_the_variable(monkeypatch, var, value, says):
    monkeypatch.setenv(var, value)
    with pytest.raises(UserError, match=says) as caught:
        FaultSettings.from_env()
    assert str(caught.value).startswith(f"${var}=")


def test_fault_settings_default_and_travel_to_the_trial(monkeypatch):
    monkeypatch.delenv("MTL_SWEEP_STORE_DEADLINE_S", raising=False)
    monkeypatch.setenv("MTL_SWEEP_DEBUG_KILL_IN_SAVE", "2")
    assert FaultSettings.from_env() == FaultSettings(600.0, 2)
