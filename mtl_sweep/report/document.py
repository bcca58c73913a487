"""A Report (the analysis) laid out as a Document (what every format shows): the header,
the sections in reading order and the figures of `--plot`. A new section is a builder
here; the writers (report/writers/) stay as they are."""

from __future__ import annotations

from mtl_sweep.report.captions import confidence, delta_convention, summary
from mtl_sweep.report.findings_section import findings_section
from mtl_sweep.report.forest import forest_panels
from mtl_sweep.report.fronts_section import front_panels, fronts_section
from mtl_sweep.report.grouping_section import affinity_panels, grouping_section
from mtl_sweep.report.guide import guide_section
from mtl_sweep.report.main_section import main_section
from mtl_sweep.report.model.document import Document, Figure, Section
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.tuning_section import (
    budget_notes,
    sensitivity_panels,
    tuning_caption,
    tuning_section,
)

NO_RUNS = "No trial or pretraining runs yet."
NO_GAINS = (
    "--plot: no multi-task row has finished single-task rows with the same seeds to compare with"
)


def build_document(report: Report) -> Document:
    """The report's document: the findings first, then how to read the numbers, the
    comparison tables, the task groupings and the trade-off fronts (where the sweep has a
    multi-task set to trace); `--plot` draws the forest plot and the fronts."""
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
            _tuned(main_section(report), report),
            *filter(None, [tuning_section(report)]),
            grouping_section(report),
            *([fronts] if (fronts := fronts_section(report)) else []),
        ],
        figures=[
            Figure(forest, required=NO_GAINS),
            Figure(affinity_panels(report), suffix="-affinity"),
            Figure(sensitivity_panels(report), suffix="-sensitivity"),
            Figure(front_panels(report), suffix="-fronts"),
        ],
    )


def _tuned(section: Section, report: Report) -> Section:
    """A tuned sweep's comparison tables say how they were tuned (caption) and flag (†)
    comparisons whose arms' search steps differ past the tolerance (notes)."""
    if report.tuning is None:
        return section
    caption, flags = tuning_caption(report.tuning), budget_notes(report.tuning)
    for block in section.blocks:
        block[0].caption = f"{block[0].caption} {caption}".strip()
        block[0].notes.extend(flags)
    return section
