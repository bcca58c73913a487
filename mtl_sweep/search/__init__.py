"""Tuned comparisons: cells, paired samples, search-trial keys and the winner of a cell."""
