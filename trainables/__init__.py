"""The learning side of mtl-sweep: data, models, losses, weighting, metrics, the loop,
and the Ray Tune trainable. Heavy imports (torch) live in the submodules."""
