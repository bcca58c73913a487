"""`ray start ...` through Ray's own CLI, kept on 127.0.0.1 even for a worker node.

RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is what keeps every Ray address on loopback, but with
it `ray start --address` refuses to start a worker node (a guard meant for Windows and
macOS). This runs the same command with that one check lifted, so the cluster test can run
the worker command of docs/scale-out.md without any traffic leaving 127.0.0.1.

    python tests/ray_loopback.py start --address=127.0.0.1:6379 [...]
"""

from __future__ import annotations

import sys
import types

from ray._private import ray_constants
from ray.scripts import scripts

if __name__ == "__main__":
    proxy = types.ModuleType("ray_constants_for_scripts")
    proxy.__dict__.update(vars(ray_constants))
    proxy.ENABLE_RAY_CLUSTER = True  # seen only by the CLI's guard; Ray itself keeps 127.0.0.1
    scripts.ray_constants = proxy
    sys.argv = ["ray", *sys.argv[1:]]
    scripts.main()
