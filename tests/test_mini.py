"""The laptop-scale experiment's parts: rendered digits, scikit-learn's digits as a dataset kind, the CNN
classifier and judge, the pretrained base's layout, and the paired statistics."""
import dataclasses
import gzip
import json

import numpy as np
import pandas as pd
import pytest
import torch

from ChimeraPipe.classify.judge import fit_judge
from ChimeraPipe.core.images import load_rgb
from ChimeraPipe.datasets import dataset_table, draw_shots, eval_rows, split_rows
from ChimeraPipe.datasets.official import DIGIT_WORDS, SklearnDigits
from ChimeraPipe.models.cnn import SmallCNN, cnn_outputs, eval_transform, load_cnn
from ChimeraPipe.pipeline.config import WorkflowConfig
from ChimeraPipe.pipeline.settings import ClassifierConfig, PretrainSettings
from ChimeraPipe.pretrain.glyphs import caption, digit_fonts, render_digits

from helpers import train


def write_digits(root, per_class=6, seed=0):
    """A miniature digits.csv.gz in scikit-learn's format: 64 grey levels 0-16 and the label per row; each
    class a distinct bar so a classifier can tell them apart."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in range(10):
        for _ in range(per_class):
            image = rng.integers(0, 3, (8, 8))
            image[label % 8, :] = 16 if label < 8 else 0
            image[:, label % 8] = 16 if label >= 8 else image[:, label % 8]
            rows.append(list(image.ravel()) + [label])
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "digits.csv.gz", "wt") as f:
        f.write("\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    return root


def test_digit_fonts_and_rendering_are_seeded_digits():
    fonts = digit_fonts()
    assert len(fonts) >= 12 and not any(f.name.startswith(("cmex", "cmsy", "STIXSiz")) for f in fonts)
    a, labels = render_digits(40, 16, seed=3, fonts=fonts)
    b, _ = render_digits(40, 16, seed=3, fonts=fonts)
    assert a.shape == (40, 16, 16, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert set(labels) <= set(range(10)) and (a.std(axis=(1, 2, 3)) > 10).all()  # ink on paper, never blank
    assert caption(7) == "a photo of a seven"


def test_sklearn_digits_kind_reads_decodes_and_splits_once(tmp_path):
    root = write_digits(tmp_path / "digits", per_class=10)
    table = dataset_table("sklearn_digits", root, decoded_dir=tmp_path / "decoded")
    assert list(table.drop_duplicates("label")["class_name"]) == list(DIGIT_WORDS)
    assert table.groupby(["class", "split"]).size().unstack()["test"].eq(3).all()  # 30 % of 10 per class
    again = dataset_table("sklearn_digits", root, decoded_dir=tmp_path / "decoded")
    assert table.equals(again)  # the split is recorded by its seed: the same every time
    from PIL import Image

    image = Image.open(table["path"].iloc[0])
    assert image.size == (32, 32) and image.mode == "RGB"
    assert len(draw_shots(table, list(DIGIT_WORDS), 4, seed=0)) == 40
    (root / "digits.csv.gz").write_bytes(gzip.compress(b"1,2,3\n"))
    with pytest.raises(Exception, match="digits.csv.gz"):
        dataset_table("sklearn_digits", root, decoded_dir=tmp_path / "decoded2")


def test_the_real_sklearn_file_is_fetched_offline(tmp_path):
    root = SklearnDigits.fetch(tmp_path / "d")
    rows = SklearnDigits()._rows(root)
    assert rows.shape == (1797, 65)


def test_digits_config_plans_without_the_shapes_box_report(tmp_path):
    cfg = WorkflowConfig({"datasets": {"digits": {"kind": "sklearn_digits", "root": str(tmp_path), "demo": True}},
                          "methods": ["real", "chimera", "shared_b"], "alpha": [0.1, 1.0],
                          "method_overrides": {"shared_b": {"alpha": 1.0}}})
    assert cfg.classes("digits") == list(DIGIT_WORDS) and not cfg.has_ground_truth_boxes("digits")
    assert cfg.synth_tags("chimera", "digits") == ["alpha0.1", "alpha1"]
    assert cfg.synth_tags("shared_b", "digits") == ["alpha1"]  # a method's own alpha
    assert cfg.train_settings("chimera", 3)["seed"] == 3       # the run's seed seeds the LoRA


def test_cnn_classifier_learns_and_the_judge_scores_the_test_split(tmp_path):
    root = write_digits(tmp_path / "digits", per_class=12)
    table = dataset_table("sklearn_digits", root, decoded_dir=tmp_path / "decoded")
    cfg = ClassifierConfig(backend="cnn", image_size=16, epochs=12, warmup_epochs=1, batch_size=32, lr=3e-3,
                           augment="none", mix_prob=0.0)
    classes = list(DIGIT_WORDS)
    meta = fit_judge(split_rows(table, "train", classes), eval_rows(table, classes)[0], classes,
                     tmp_path / "judge" / "judge.safetensors", cfg)
    assert meta["backend"] == "cnn" and meta["loss_per_epoch"][-1] < 0.5 * meta["loss_per_epoch"][0]
    assert meta["test_accuracy"] >= 0.8  # ten bar patterns: far above chance (0.1)
    model, saved = load_cnn(tmp_path / "judge" / "judge.safetensors")
    pixels = torch.stack([eval_transform(saved["image_size"])(load_rgb(p)) for p in table["path"][:5]])
    feats, predicted = cnn_outputs(model, pixels)
    assert feats.shape == (5, 128) and np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)
    assert json.loads((tmp_path / "judge" / "judge.json").read_text())["test_accuracy"] == meta["test_accuracy"]


def test_cnn_classifier_is_deterministic_from_its_seed(tmp_path):
    root = write_digits(tmp_path / "digits", per_class=4)
    table = dataset_table("sklearn_digits", root, decoded_dir=tmp_path / "decoded")
    rows = pd.DataFrame({"path": table["path"], "label": table["label"], "real": True})
    cfg = ClassifierConfig(backend="cnn", image_size=16, epochs=1, warmup_epochs=0, batch_size=16, augment="affine")
    for name in ("a", "b"):
        train(cfg, rows, list(DIGIT_WORDS), tmp_path / f"{name}.safetensors")
    a, _ = load_cnn(tmp_path / "a.safetensors")
    b, _ = load_cnn(tmp_path / "b.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert SmallCNN(10)(torch.zeros(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.slow
def test_pretrained_base_is_a_stable_diffusion_pipeline_the_workflow_loads(tmp_path):
    """A few steps of each phase: the layout, the latent scale, and generation through the project's path."""
    from ChimeraPipe.diffusion.generate import load_pipeline
    from ChimeraPipe.models.specs import resolve_model
    from ChimeraPipe.pipeline.stages import pretrain_base

    cfg = PretrainSettings(pool=64, vae_steps=2, unet_steps=2, batch_size=8, check_images=40, check_samples=2)
    report = pretrain_base(str(tmp_path / "models" / "digits-base"), dataclasses.asdict(cfg))
    assert report["latent_scale"] > 0 and set(report["timings_s"]) == {"render_s", "vae_s", "unet_s", "check_s"}
    assert 0 <= report["check"]["samples_right_class"] <= 1
    assert (tmp_path / "models" / "digits-base" / "samples.png").is_file()
    path = resolve_model("diffusion", "digits-base", tmp_path / "models")
    pipe = load_pipeline(path, "cpu")
    assert pipe.vae.config.scaling_factor == pytest.approx(report["latent_scale"])
    images = pipe("a photo of a three", height=16, width=16, num_inference_steps=2, output_type="np").images
    assert images.shape == (1, 16, 16, 3)
