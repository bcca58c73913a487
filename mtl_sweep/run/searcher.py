"""A Ray Tune searcher over fixed trial requests that respects pretraining dependencies."""

from __future__ import annotations

from collections import deque
from typing import Any

from ray.tune.search import Searcher

from mtl_core.trial import TUNE_CONFIG_KEY, TrialRequest


def longest_first(requests: list[TrialRequest]) -> list[TrialRequest]:
    """More tasks read more sources per epoch: start those first, so no long trial ends alone."""
    return sorted(requests, key=lambda r: -len(r.config.tasks))


class StagedSearcher(Searcher):
    """Hands out pretraining jobs first, then trials whose job (if any) has finished.

    Trials without a job still to run are ready at once; a trial whose job fails is never
    scheduled and is listed in `skipped` with the reason.
    """

    def __init__(
        self, jobs: list[TrialRequest], trials: list[tuple[TrialRequest, str | None]]
    ) -> None:
        super().__init__()
        self.jobs = deque(jobs)
        self.ready: list[TrialRequest] = longest_first([r for r, dep in trials if dep is None])
        self.waiting: dict[str, list[TrialRequest]] = {}
        for request, dep in trials:
            if dep is not None:
                self.waiting.setdefault(dep, []).append(request)
        self.live: dict[str, TrialRequest] = {}
        self.skipped: list[tuple[TrialRequest, str]] = []

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The next request that may run now; None to wait; FINISHED when all are out."""
        if self.jobs:
            request = self.jobs.popleft()
        elif self.ready:
            request = self.ready.pop(0)
        elif self.live or self.waiting:
            return None  # wait for a running job to release its trials
        else:
            return Searcher.FINISHED
        self.live[trial_id] = request
        return {TUNE_CONFIG_KEY: request}

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Release (or skip, when it failed) the trials that wait on a finished job."""
        request = self.live.pop(trial_id, None)
        if request is None or not request.config.is_pretrain:
            return
        dependents = self.waiting.pop(request.key, [])
        if error:
            reason = f"its pretraining job {request.key} ({request.name}) failed"
            self.skipped.extend((d, reason) for d in dependents)
        else:
            self.ready = longest_first(self.ready + dependents)
