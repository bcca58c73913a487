"""Multi-source batches (cycling, epoch rules, masks, determinism), eval batches and
augmentation."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from mtl_data.cache import CachedSplit
from mtl_data.source import ResolvedSource
from trainables.augmentation import augment
from trainables.batches import Batch, MultiSourceBatches, eval_batches

TASKS = ("age", "gender", "emotion", "smile")


def split(n: int, name: str, **labels: list[float] | np.ndarray) -> CachedSplit:
    """In-memory split: image i has every pixel equal to i % 256 in channel 0 and its index
    split over channels 1 and 2, so a batch tells which rows it holds."""
    images = np.zeros((n, 4, 4, 3), np.uint8)
    images[..., 0] = (np.arange(n) % 256)[:, None, None]
    images[..., 1] = (np.arange(n) // 256)[:, None, None]
    full = {t: np.full(n, np.nan, np.float32) for t in TASKS}
    full.update({t: np.asarray(v, np.float32) for t, v in labels.items()})
    std = np.full(n, np.nan, np.float32)
    if "age" in labels:
        std = np.linspace(1, 2, n).astype(np.float32)
    stats = {"usable": n, "dropped": {}}
    return CachedSplit(images, full, std, stats, source=ResolvedSource(name, f"/data/{name}"))


def rows(batch: Batch) -> np.ndarray:
    return (batch.images[:, 0, 0, 0].long() + 256 * batch.images[:, 1, 0, 0].long()).numpy()


def test_longest_rule_covers_the_longest_once_and_cycles_the_shorter() -> None:
    big = split(100, "chalearn", age=np.arange(100))
    small = split(10, "fer2013", emotion=np.arange(10) % 7)
    mb = MultiSourceBatches([(big, ("age",)), (small, ("emotion",))], 8, "longest", seed=0)
    assert len(mb) == 25 and mb.per_part == [4, 4]
    seen_big, seen_small = Counter(), Counter()
    for batch in mb.epoch(0):
        assert len(batch) == 8
        r = rows(batch)
        seen_big.update(r[:4].tolist())
        seen_small.update(r[4:].tolist())
        assert batch.mask["age"][:4].all() and not batch.mask["age"][4:].any()
        assert batch.mask["emotion"][4:].all() and not batch.mask["emotion"][:4].any()
        assert torch.isnan(batch.labels["emotion"][:4]).all()
        np.testing.assert_array_equal(batch.labels["age"][:4].numpy(), r[:4])
        assert set(batch.labels) == {"age", "emotion"}
    assert seen_big == Counter(range(100))  # every image of the longest, exactly once
    assert seen_small == Counter({i: 10 for i in range(10)})  # 10 full cycles, not truncated
    text = mb.describe()
    assert "longest" in text and "25 steps" in text and "cycle" in text


def test_sum_rule_cap_and_remainder() -> None:
    a, b, c = (split(n, f"s{n}", smile=np.zeros(n)) for n in (50, 30, 13))
    parts = [(a, ("smile",)), (b, ("smile",)), (c, ("smile",))]
    mb = MultiSourceBatches(parts, 10, "sum", seed=1)
    assert mb.per_part == [4, 3, 3] and len(mb) == math.ceil(93 / 10)
    assert "93 images" in mb.describe()
    capped = MultiSourceBatches(parts, 10, "longest", seed=1, steps_per_epoch=3)
    assert len(capped) == 3 and len(list(capped.epoch(0))) == 3
    assert "capped at 3" in capped.describe()
    with pytest.raises(ValueError, match="unknown epoch rule"):
        MultiSourceBatches(parts, 10, "shortest", seed=1)
    with pytest.raises(ValueError, match="smaller than the number of sources"):
        MultiSourceBatches(parts, 2, "sum", seed=1)


def test_order_depends_only_on_seed_and_epoch() -> None:
    def run(seed: int, epoch: int) -> list[list[int]]:
        mb = MultiSourceBatches([(split(40, "a", age=np.arange(40)), ("age",))], 8, "sum", seed)
        return [rows(b).tolist() for b in mb.epoch(epoch)]

    assert run(0, 3) == run(0, 3)  # a resumed trial sees the same batches
    assert run(0, 3) != run(0, 4)
    assert run(0, 3) != run(1, 3)
    assert sorted(r for batch in run(0, 3) for r in batch) == list(range(40))


def test_masks_cover_missing_labels_and_tasks_a_source_does_not_provide() -> None:
    gender = np.array([1, np.nan, 0, 1, 0, np.nan])
    celeb = split(6, "celeba", gender=gender, smile=np.array([1, 0, 1, 0, 1, 0]))
    mb = MultiSourceBatches([(celeb, ("gender",))], 6, "longest", seed=0)
    (batch,) = list(mb.epoch(0))
    order = rows(batch)
    assert set(batch.labels) == {"gender"}  # smile is not this trial's task
    np.testing.assert_array_equal(batch.mask["gender"].numpy(), ~np.isnan(gender[order]))
    assert batch.images.dtype == torch.uint8 and batch.images.shape == (6, 3, 4, 4)
    assert batch.images.is_contiguous()
    assert torch.isnan(batch.age_std).all()


def test_eval_batches_in_order_with_a_partial_last_batch() -> None:
    s = split(10, "chalearn", age=np.arange(10))
    batches = list(eval_batches(s, ("age",), 4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert np.concatenate([rows(b) for b in batches]).tolist() == list(range(10))
    np.testing.assert_allclose(torch.cat([b.age_std for b in batches]).numpy(), s.age_std)
    assert all(b.mask["age"].all() for b in batches)


def test_augment_flip_only_is_a_mirror_or_identity() -> None:
    x = torch.rand(16, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    y = augment(x, g, hflip=True, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert y.shape == x.shape and y.dtype == x.dtype
    flipped = 0
    for a, b in zip(x, y, strict=True):
        if torch.allclose(b, a.flip(-1), atol=1e-5):
            flipped += 1
        else:
            assert torch.allclose(b, a, atol=1e-5)
    assert 0 < flipped < 16
    same = augment(x, torch.Generator().manual_seed(0), True, (1.0, 1.0), (1.0, 1.0))
    assert torch.equal(same, y)  # the generator fixes the draws
    ident = augment(x, g, hflip=False, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(ident, x, atol=1e-5)


def test_augment_crop_zooms_in() -> None:
    # A bright centre on a dark border: a quarter-area crop sees mostly the bright part.
    x = torch.zeros(32, 1, 16, 16)
    x[:, :, 4:12, 4:12] = 1.0
    y = augment(x, torch.Generator().manual_seed(1), False, (0.25, 0.25), (1.0, 1.0))
    assert y.mean() > x.mean() + 0.1
    assert augment(x[:0], None, True, (0.5, 1.0), (0.8, 1.2)).shape == (0, 1, 16, 16)
