"""One writer per format, each over the report's Document (report/model/document.py)."""
