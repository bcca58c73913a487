"""The learning side of mtl-sweep: data, models, losses, the loop and the Ray Tune trainable."""
