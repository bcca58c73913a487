"""The loss-weighting strategies a spec may name. A new strategy is a new file under
`trainables/weighting/` plus one line here."""

from __future__ import annotations

from mtl_core.registry import Registry

WEIGHTINGS: Registry[None] = Registry("weighting")
WEIGHTINGS.add("fixed", "trainables.weighting.fixed:Fixed")  # the spec's weights, unchanged
WEIGHTINGS.add("uncertainty", "trainables.weighting.uncertainty:Uncertainty")  # Kendall 2018
WEIGHTINGS.add("dwa", "trainables.weighting.dwa:DWA")  # Liu et al. 2019
WEIGHTINGS.add("gradnorm", "trainables.weighting.gradnorm:GradNorm")  # Chen et al. 2018
