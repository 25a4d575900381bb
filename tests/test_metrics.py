"""Gap metrics against hand-computed values on small arrays."""
import math

import numpy as np
import pandas as pd
import pytest

from ChimeraPipe.metrics import gap


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_frechet_of_two_gaussians_matches_the_closed_form():
    # diag(1, 4) vs diag(4, 9): |mu|^2 = 1 + 4, traces 5 + 13, 2 Tr sqrt = 2 (2 + 6) -> 7
    assert gap.frechet_from_stats([0, 0], np.diag([1, 4]), [1, 2], np.diag([4, 9])) == pytest.approx(7.0)
    s = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert gap.frechet_from_stats([0, 0], s, [3, 4], s) == pytest.approx(25.0)  # same covariance: |mu diff|^2
    # commuting non-diagonal covariances: eigenvalues (3, 1) and (12, 4) in one basis -> (sqrt12-sqrt3)^2 + (2-1)^2
    r = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
    s1, s2 = r @ np.diag([3, 1]) @ r.T, r @ np.diag([12, 4]) @ r.T
    assert gap.frechet_from_stats([0, 0], s1, [0, 0], s2) == pytest.approx((math.sqrt(12) - math.sqrt(3)) ** 2 + 1)


def test_frechet_from_samples_converges_to_the_gaussians_distance():
    rng = np.random.default_rng(0)
    a = rng.normal([0, 0], [1, 2], size=(200_000, 2))
    b = rng.normal([1, 2], [2, 3], size=(200_000, 2))
    assert gap.frechet_distance(a, b) == pytest.approx(7.0, abs=0.1)
    assert gap.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(gap.frechet_distance(a[:1], b))


def test_clip_score_centroid_and_diversity_by_hand():
    assert gap.clip_score([[1, 0], [0, 1]], [1, 0]) == pytest.approx(50.0)
    assert gap.clip_score([[2, 0], [0, 3]], [[4, 0], [0, 1]]) == pytest.approx(100.0)  # one prompt per image
    assert gap.centroid_similarity([[1, 0], [0, 1]], [[1, 0]]) == pytest.approx(100 / math.sqrt(2))
    assert gap.diversity([[1, 0], [0, 1], [1, 0]]) == pytest.approx(2 / 3)  # cosines 0, 1, 0
    assert math.isnan(gap.diversity([[1, 0]]))


def test_prdc_by_hand():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    # k = 1: real radii 1, fake radii 9.5; distances real x fake: .5/10, .5/9, 1.5/8, 2.5/7
    assert gap.prdc(real, fake, k=1) == {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5, "k": 1}
    # k above the sets' sizes drops to the smaller set's size - 1 (here 1), never raises
    assert gap.prdc(real, fake, k=5)["k"] == 1
    assert math.isnan(gap.prdc(real, fake[:1], k=5)["coverage"])


def test_prdc_identical_sets_are_fully_covered():
    x = np.random.default_rng(1).normal(size=(50, 4))
    result = gap.prdc(x, x + 1e-9, k=5)
    assert result["coverage"] == 1.0 and result["precision"] == 1.0 and result["recall"] == 1.0


def test_copy_rate_counts_images_nearer_a_shot_than_the_shots_are_to_each_other():
    shots = [unit(0), unit(20)]                      # shots 20 degrees apart
    synth = [unit(5), unit(90), unit(180)]           # 5 degrees from a shot: a copy; the others are not
    assert gap.copy_rate(synth, shots) == pytest.approx(1 / 3)
    assert math.isnan(gap.copy_rate(synth, shots[:1]))


def test_dataset_gap_per_class_rows_and_pooled_summary():
    rng = np.random.default_rng(0)
    classes = ["a", "b"]
    test = pd.DataFrame({"class": ["a"] * 6 + ["b"] * 6})
    shots = pd.DataFrame({"class": ["a", "a", "b", "b"]})
    synth = pd.DataFrame({"class": ["a"] * 5 + ["b"] * 5})
    centre = {"a": np.array([1.0, 0, 0]), "b": np.array([0, 1.0, 0])}
    emb = {name: gap.normalise(np.stack([centre[c] + 0.1 * rng.normal(size=3) for c in frame["class"]]))
           for name, frame in (("test", test), ("shots", shots), ("synth", synth))}
    text = {c: centre[c] for c in classes}
    per_class, summary = gap.dataset_gap(test, shots, synth, emb, text, classes, k=3)
    assert list(per_class["class"]) == classes and (per_class["n_synthetic"] == 5).all()
    assert summary["centroid_similarity"] > 95 and summary["clip_score"] > 90
    assert summary["fd"] == pytest.approx(per_class["fd"].mean())
    assert summary["k"] == 3 and np.isfinite(summary["fd_pooled"])
    # a synthetic set of the wrong class is far: lower CLIP score and coverage, higher FID
    swapped = {**emb, "synth": emb["synth"][::-1].copy()}
    _, bad = gap.dataset_gap(test, shots, synth, swapped, text, classes, k=3)
    assert bad["clip_score"] < 20 and bad["coverage"] == 0 and bad["fd"] > summary["fd"]


def test_regime_metrics_by_hand():
    shots = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])           # closest two shots: sqrt(2) apart
    synth = np.array([[0.99, 0.14], [0.6, 0.8], [-0.1, 0.99], [-1.0, 0.01]])
    # nearest shots: 0 (d ~0.14), 1 (d ~0.63: sqrt((0.6)^2 + (0.2)^2)), 1 (~0.10), 2 (~0.01)
    near = gap.regime(synth, shots, one_head=True)
    assert near["copy_rate"] == 1.0                                    # all below sqrt(2)
    # one head per image: image j through head j mod 3 -> own shots 0, 1, 2, 0 against nearest 0, 1, 1, 2
    assert near["own_shot"] == pytest.approx(2 / 4)
    dist, which, between = gap.nearest_shots(synth, shots)
    assert list(which) == [0, 1, 1, 2] and between == pytest.approx(np.sqrt(2))
    assert near["nearest_shot"] == pytest.approx(dist.mean()) and math.isnan(gap.regime(synth, shots)["own_shot"])
    # pixels: raw RMS, no normalisation; a copy is nearer than the two closest shots
    pix_shots, pix_synth = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 0.1], [0.5, 0.5]])
    pixels = gap.regime(pix_synth, pix_shots, normalised=False)
    assert pixels["nearest_shot"] == pytest.approx((0.1 / np.sqrt(2) + 0.5) / 2)
    assert pixels["copy_rate"] == 1.0 and gap.regime(pix_synth, pix_shots[:1])["copy_rate"] != 0  # NaN: one shot
