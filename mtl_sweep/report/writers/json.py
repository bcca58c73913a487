"""The document as one JSON object: the header fields, then each section under its key."""

from __future__ import annotations

import json

from mtl_sweep.report.model.document import Document


def write_json(doc: Document) -> str:
    """The whole document as indented JSON, non-ASCII kept as is."""
    out = dict(doc.meta) | {s.key: s.data for s in doc.sections}
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"
