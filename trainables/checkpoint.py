"""Checkpoint files: plain state dicts, saved with torch.save and loaded weights_only."""

from __future__ import annotations

import os
import random
import signal
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mtl_core.files import atomic_path

RESUME_FILE = "resume.pt"  # everything a later attempt needs: model, optimizer, best, ...


def save(obj: Any, path: Path, die_midway: bool = False) -> None:
    """torch.save to a temporary file, then rename, so a reader never sees half a file.

    `die_midway` (the test hook `kill_in_save`): SIGKILL this process once half the file
    is written, as a node or worker lost mid-save would; the temporary stays behind.
    """
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
        if die_midway:
            os.truncate(tmp, tmp.stat().st_size // 2)
            os.kill(os.getpid(), signal.SIGKILL)


def load(path: Path) -> Any:
    """torch.load with weights_only=True onto the CPU: no pickled code runs."""
    return torch.load(path, map_location="cpu", weights_only=True)


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a module's state dict, with its module versions."""
    state = model.state_dict()
    copy = OrderedDict((k, v.detach().to("cpu", copy=True)) for k, v in state.items())
    # load_state_dict hands each module its saved version; MNASNet refuses a state without.
    copy._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]
    return copy


def load_matching(model: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Load every tensor whose name and shape match; returns the top-level parts loaded.

    A pretraining checkpoint initialises the trunk and the heads whose tasks match; a
    head of another shape (e.g. a DEX head into a regression head) is left as built.
    """
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    parts = {
        ".".join(k.split(".")[:2]) if k.startswith("heads.") else k.split(".")[0] for k in usable
    }
    return sorted(p for p in parts if p not in ("mean", "std"))


def rng_state() -> dict[str, Any]:
    """The global RNG states (Python, NumPy, torch CPU and CUDA), as weights_only-safe values.

    Saved with each checkpoint, so that a resumed trial draws the same dropout masks (and
    anything else random) as one that never stopped.
    """
    kind, keys, pos, gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, torch.from_numpy(keys.copy()), pos, gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Set the global RNG states saved by `rng_state`."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        # Only as many devices as this node has; a retry may land on another node.
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
