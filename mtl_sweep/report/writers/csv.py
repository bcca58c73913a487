"""The document as CSV: every section's records, one line each, through pandas."""

from __future__ import annotations

import pandas as pd

from mtl_sweep.report.model.document import Document


def write_csv(doc: Document) -> str:
    """The records: the sections' leading columns first, their closing ones last, counts
    as integers and significance as booleans (blank where a record has no such field)."""
    recs = [r for s in doc.sections for r in s.records]
    head = list(dict.fromkeys(k for s in doc.sections for k in s.first))
    tail = list(dict.fromkeys(k for s in doc.sections for k in s.last))
    middle = dict.fromkeys(k for r in recs for k in r if k not in head and k not in tail)
    frame = pd.DataFrame.from_records(recs, columns=[*head, *middle, *tail])
    for col in frame.columns:
        if col.endswith(" n"):  # blank where a row has no such cell, not 3.0
            frame[col] = frame[col].astype("Int64")
        elif col.endswith(" significant"):
            frame[col] = frame[col].astype("boolean")
    return frame.to_csv(index=False)
