"""A Report (the analysis) laid out as a Document (what every format shows): the header,
the sections in reading order and the figures of `--plot`. A new section is a builder
here; the writers (report/writers/) stay as they are."""

from __future__ import annotations

from mtl_sweep.report.captions import confidence, delta_convention, summary
from mtl_sweep.report.findings_section import findings_section
from mtl_sweep.report.forest import forest_panels
from mtl_sweep.report.grouping_section import affinity_panels, grouping_section
from mtl_sweep.report.guide import guide_section
from mtl_sweep.report.main_section import main_section
from mtl_sweep.report.model import Document, Figure, Report

NO_RUNS = "No trial or pretraining runs yet."
NO_GAINS = (
    "--plot: no multi-task row has finished single-task rows with the same seeds to compare with"
)


def build_document(report: Report) -> Document:
    """The report's document: the findings first, then how to read the numbers, the
    comparison tables and the task groupings; `--plot` draws the forest plot."""
    meta = {
        "sweep": report.sweep,
        "experiment": report.experiment,
        "tracking_uri": report.uri,
        "group_by": list(report.group_by),
        "counts": report.counts,
        "delta_m_convention": delta_convention(report),
        "alpha": report.alpha,
        "confidence": confidence(report),
        # Holm runs over every paired and interaction test in the report at once.
        "holm_family": "report",
        "tests": report.tests,
    }
    forest = forest_panels([r for t in report.tables for r in t.rows], report.alpha)
    return Document(
        sweep=report.sweep,
        summary=summary(report),
        empty="" if report.tables else NO_RUNS,
        meta=meta,
        sections=[
            findings_section(report),
            guide_section(report),
            main_section(report),
            grouping_section(report),
        ],
        figures=[
            Figure(forest, required=NO_GAINS),
            Figure(affinity_panels(report), suffix="-affinity"),
        ],
    )
