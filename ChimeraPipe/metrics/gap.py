"""The synthetic-to-real gap metrics, on arrays of L2-normalised embeddings (rows are images).

Definitions, sources and the readings we took where the paper is terse: docs/metrics.md.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg


def _rows(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-d array of embeddings (images x features), got shape {x.shape}")
    return x


def normalise(x) -> np.ndarray:
    x = _rows(x)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def frechet_from_stats(mu1, cov1, mu2, cov2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Fréchet (2-Wasserstein) distance of two
    Gaussians, as FID computes it (a tiny ridge when the product is singular, the imaginary round-off
    of the square root dropped)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():
        ridge = np.eye(len(cov1)) * 1e-6
        covmean = linalg.sqrtm((cov1 + ridge) @ (cov2 + ridge))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean), 0.0))


def frechet_distance(a, b) -> float:
    """Fréchet distance between the Gaussians fitted to two sets (sample covariance, n - 1); NaN when a
    set has fewer than two images."""
    a, b = _rows(a), _rows(b)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return frechet_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def clip_score(images, text) -> float:
    """100 x the mean cosine between each image embedding and the text embedding of its prompt (one text
    row for all images, or one per image)."""
    images, text = normalise(images), normalise(np.atleast_2d(text))
    return float(100 * np.mean(np.sum(images * text, axis=1)))


def centroid_similarity(a, b) -> float:
    """100 x the cosine between the means of two sets of normalised embeddings."""
    ca, cb = normalise(a).mean(0), normalise(b).mean(0)
    return float(100 * ca @ cb / max(np.linalg.norm(ca) * np.linalg.norm(cb), 1e-12))


def _distances(a, b) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def _kth_neighbour_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest other point of the same set."""
    d = _distances(x, x)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def prdc(real, fake, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of Naeem et al. (ICML 2020), Euclidean distances, the
    k-th neighbour excluding the point itself, strict '<' (the `prdc` package's definitions).

    precision: share of fake points inside some real point's k-NN ball; recall: share of real points
    inside some fake point's ball; density: mean number of real balls holding a fake point, / k;
    coverage: share of real points whose ball holds at least one fake point. `k` is lowered to the
    smaller set's size - 1 when a set is smaller than k + 1 (the value used is returned as `k`)."""
    real, fake = _rows(real), _rows(fake)
    k = min(k, len(real) - 1, len(fake) - 1)
    if k < 1:
        return {"precision": np.nan, "recall": np.nan, "density": np.nan, "coverage": np.nan, "k": 0}
    real_radii, fake_radii = _kth_neighbour_radii(real, k), _kth_neighbour_radii(fake, k)
    d = _distances(real, fake)                                # [real, fake]
    inside_real = d < real_radii[:, None]
    return {"precision": float(inside_real.any(0).mean()),
            "recall": float((d < fake_radii[None, :]).any(1).mean()),
            "density": float(inside_real.sum(0).mean() / k),
            "coverage": float((d.min(1) < real_radii).mean()),
            "k": int(k)}


def copy_rate(synth, shots) -> float:
    """Share of synthetic images nearer (Euclidean, normalised embeddings) to some real shot of their class
    than the two closest shots of the class are to each other: an image that resembles one shot more than
    any two real photographs of the class resemble each other counts as a copy. NaN with fewer than two shots."""
    return regime(synth, shots)["copy_rate"]


def nearest_shots(synth, shots, normalised: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Each synthetic image's distance to its nearest shot and that shot's index, and the distance between the
    two closest shots: Euclidean between normalised embeddings, or the RMS pixel difference of thumbnails
    (`normalised` false: raw vectors, distance / sqrt(dimension))."""
    synth, shots = _rows(synth), _rows(shots)
    if normalised:
        synth, shots = normalise(synth), normalise(shots)
    unit = 1.0 if normalised else np.sqrt(synth.shape[1])
    d = _distances(synth, shots) / unit
    between = _distances(shots, shots) / unit
    np.fill_diagonal(between, np.inf)
    return d.min(1), d.argmin(1), float(between.min()) if len(shots) > 1 else float("nan")


def regime(synth, shots, one_head: bool = False, normalised: bool = True) -> dict[str, float]:
    """How near a set sits to its shots: the mean distance to the nearest shot, the copy rate (nearer to a shot
    than the two closest shots are to each other), and - for a set made through one head per image (image j
    through head j mod K, shots in head order) - the share of images whose nearest shot is their head's own."""
    if len(synth) == 0 or len(shots) < 2:
        return {"nearest_shot": float("nan"), "copy_rate": float("nan"), "own_shot": float("nan")}
    dist, which, between = nearest_shots(synth, shots, normalised)
    own = float(np.mean(which == np.arange(len(which)) % len(shots))) if one_head else float("nan")
    return {"nearest_shot": float(dist.mean()), "copy_rate": float(np.mean(dist < between)), "own_shot": own}


def diversity(x) -> float:
    """Mean cosine distance (1 - cos) over all pairs of distinct images of a set; NaN below two images."""
    x = normalise(x)
    n = len(x)
    if n < 2:
        return float("nan")
    sims = x @ x.T
    return float(1 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))


def class_gap(test, shots, synth, text, k: int = 5, synth_clip=None, one_head: bool = False) -> dict[str, float]:
    """Every metric of one class's synthetic set against its real test images (and shots, and prompt);
    the CLIP score reads `synth_clip` (the same images in CLIP space) when the features are not CLIP's."""
    synth_clip = synth if synth_clip is None else synth_clip
    near = regime(synth, shots, one_head)
    return {"n_synthetic": len(synth), "n_test": len(test),
            "fd": frechet_distance(synth, test),
            "clip_score": clip_score(synth_clip, text) if len(synth) and text is not None else float("nan"),
            "centroid_similarity": centroid_similarity(synth, test),
            **prdc(test, synth, k),
            "copy_rate": near["copy_rate"], "nearest_shot": near["nearest_shot"], "own_shot": near["own_shot"],
            "diversity": diversity(synth),
            "real_diversity": diversity(test)}


def dataset_gap(test: pd.DataFrame, shots: pd.DataFrame, synth: pd.DataFrame, emb: dict[str, np.ndarray],
                text: dict[str, np.ndarray] | None, classes: list[str], k: int = 5,
                synth_clip: np.ndarray | None = None, one_head: bool = False,
                pixels: dict[str, np.ndarray] | None = None) -> tuple[pd.DataFrame, dict]:
    """Per-class metrics (a row per class) and the dataset's summary: each metric's mean over classes, plus
    the dataset-level Fréchet distance of the pooled sets (`fd_pooled`). With `pixels` (grey thumbnails of
    'shots' and 'synth', rows as in `emb`) the regime metrics in pixel space too (`pixel_*`, RMS units).

    `test`, `shots`, `synth`: tables with a `class` column whose row order matches `emb[name]`."""
    def of(name, frame, cls):
        return emb[name][(frame["class"] == cls).to_numpy()]

    def clip_of(cls):
        return None if synth_clip is None else synth_clip[(synth["class"] == cls).to_numpy()]

    rows = [{"class": cls, **class_gap(of("test", test, cls), of("shots", shots, cls), of("synth", synth, cls),
                                       (text or {}).get(cls), k, clip_of(cls), one_head)} for cls in classes]
    if pixels is not None:
        for row in rows:
            cls = row["class"]
            near = regime(pixels["synth"][(synth["class"] == cls).to_numpy()],
                          pixels["shots"][(shots["class"] == cls).to_numpy()], one_head, normalised=False)
            row.update({f"pixel_{key}": value for key, value in near.items()})
    per_class = pd.DataFrame(rows)
    if "predicted" in synth:  # the feature extractor is a classifier: the share it labels as their class
        correct = synth["predicted"] == synth["class"]
        per_class["class_accuracy"] = [float(correct[synth["class"] == c].mean()) for c in classes]
    chosen = synth["class"].isin(classes).to_numpy()
    real = test["class"].isin(classes).to_numpy()
    summary = {col: float(per_class[col].mean()) for col in per_class.columns
               if col not in ("class", "k") and per_class[col].dtype.kind in "fi"}
    summary["fd_pooled"] = frechet_distance(emb["synth"][chosen], emb["test"][real])
    summary["k"] = int(per_class["k"].min()) if len(per_class) else 0
    return per_class, summary
