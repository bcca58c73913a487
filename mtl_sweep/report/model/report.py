"""The analysis of one sweep, whole: the `Report` every section reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from mtl_sweep.report.model.base import DEFAULT_ALPHA, Grouping, Table
from mtl_sweep.report.model.findings import Findings
from mtl_sweep.report.model.fronts import Front
from mtl_sweep.report.model.tuning import Tuning


@dataclass
class Report:
    """The analysis of one sweep: its tables, the counts behind the footnotes, groupings."""

    uri: str
    experiment: str
    sweep: str
    group_by: tuple[str, ...]
    tables: list[Table]
    counts: dict[str, int]  # trials_finished, trials_failed, ..., pretrain_finished, ...
    alpha: float = DEFAULT_ALPHA  # significance level; intervals are 1 - alpha
    tests: int = 0  # paired and interaction t-tests: the family Holm's correction runs over
    groupings: list[Grouping] = field(default_factory=list)
    tuning: Tuning | None = None  # a tuned sweep's search (the tables hold its final runs)
    findings: Findings = field(default_factory=Findings)
    fronts: list[Front] = field(default_factory=list)  # report/fronts.py
