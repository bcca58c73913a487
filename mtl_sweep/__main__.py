"""`python -m mtl_sweep` is `mtl-sweep`."""

from mtl_sweep.commands.main import main

main()
