"""Procedural synthetic faces, written in the real datasets' formats (see write.py)."""
