"""Metric formulas pinned to hand-computed examples; selection rule; heads' predictions."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.metrics import METRICS, SplitMetrics, epsilon_errors, selection_score
from trainables.models.heads import AgeDEX, dex_expectation


def test_epsilon_error_matches_the_chalearn_formula():
    pred = torch.tensor([30.0, 25.0, 40.0])
    mean = torch.tensor([25.0, 25.0, 20.0])
    std = torch.tensor([5.0, 3.0, 10.0])
    got = epsilon_errors(pred, mean, std)
    expected = [1 - math.exp(-0.5), 0.0, 1 - math.exp(-2.0)]
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    assert float(got.min()) >= 0 and float(got.max()) <= 1


def test_dex_prediction_is_the_softmax_expectation_not_the_argmax():
    ages = torch.arange(0, 101).float()
    logits = torch.full((1, 101), -1e9)
    logits[0, 20] = 0.0
    logits[0, 40] = math.log(3.0)  # p(40) = 0.75, p(20) = 0.25
    assert float(dex_expectation(logits, ages)) == pytest.approx(0.25 * 20 + 0.75 * 40)
    head = AgeDEX(dim=4)
    assert float(head.predict(logits)) == pytest.approx(35.0)  # argmax would say 40


def test_mae_is_per_image_over_the_split_not_a_mean_of_batch_means():
    acc = SplitMetrics(["age"])
    # Batch 1: one image, error 10. Batch 2: three images, error 2 each.
    acc.update(
        {"age": torch.tensor([30.0])}, {"age": torch.tensor([20.0])}, {"age": torch.tensor([True])}
    )
    acc.update(
        {"age": torch.tensor([12.0, 12.0, 12.0])},
        {"age": torch.tensor([10.0] * 3)},
        {"age": torch.tensor([True] * 3)},
    )
    assert acc.compute()["age_mae"] == pytest.approx((10 + 2 * 3) / 4)  # 4.0, not 6.0


def test_masked_samples_do_not_count_and_eps_needs_a_known_std():
    acc = SplitMetrics(["age", "gender"])
    preds = {"age": torch.tensor([30.0, 99.0, 25.0]), "gender": torch.tensor([1, 0, 1])}
    labels = {"age": torch.tensor([25.0, 0.0, 25.0]), "gender": torch.tensor([1.0, 1.0, 0.0])}
    mask = {"age": torch.tensor([True, False, True]), "gender": torch.tensor([True, True, False])}
    std = torch.tensor([5.0, 5.0, float("nan")])
    acc.update(preds, labels, mask, std)
    out = acc.compute()
    assert out["age_mae"] == pytest.approx(2.5)
    assert out["age_eps"] == pytest.approx(1 - math.exp(-0.5))  # only the image with a std
    assert out["gender_acc"] == pytest.approx(0.5)


def test_each_metric_records_its_direction():
    assert METRICS["age_mae"].higher_is_better is False
    assert METRICS["age_eps"].higher_is_better is False
    for name in ("gender_acc", "emotion_acc", "smile_acc"):
        assert METRICS[name].higher_is_better is True


def test_selection_score_is_the_mean_scale_free_error():
    val = {"age_mae": 5.0, "gender_acc": 0.9, "emotion_acc": 0.6}
    # age: 5 / 10 = 0.5; gender 0.1; emotion 0.4 -> mean 1/3
    assert selection_score(val, ["age", "gender", "emotion"], 10.0) == pytest.approx(1.0 / 3)
