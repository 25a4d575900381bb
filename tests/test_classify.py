"""The CLIP classifier: LoRA attention equals the original at init; training and evaluation write results."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from ChimeraPipe.classify.clip_lora import LoRAAttention, inject_clip_lora
from ChimeraPipe.classify.data import classifier_loss
from ChimeraPipe.classify.evaluate import evaluate_classifier
from ChimeraPipe.models.clip import load_clip
from ChimeraPipe.models.specs import resolve_model
from ChimeraPipe.pipeline.settings import ClassifierConfig

from helpers import images_of, shots_of, train


def test_lora_attention_starts_as_the_original(models_dir):
    model, _, tokenizer = load_clip(resolve_model("clip", "tiny", models_dir))
    model.eval()
    images, text = torch.randn(2, 3, 64, 64), tokenizer(["a photo of a circle", "a photo of a square"])
    before = model.encode_image(images), model.encode_text(text)
    count = inject_clip_lora(model, rank=16, lora_alpha=32, dropout=0.1)
    model.eval()
    assert count == 4  # 2 vision + 2 text blocks
    torch.testing.assert_close(model.encode_image(images), before[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.encode_text(text), before[1], atol=1e-5, rtol=1e-5)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert any(n.startswith("visual.") for n in trainable) and any(n.startswith("transformer.") for n in trainable)


def test_train_and_evaluate(tmp_path, models_dir, shapes_root):
    classes = ["circle", "square", "triangle"]
    real = shots_of(shapes_root, classes, 4, 0).assign(real=True)
    synth = real.assign(real=False)  # stands in for generated images: checks the weighted real+synth path
    table = pd.concat([real, synth], ignore_index=True)
    cfg = ClassifierConfig(epochs=2, warmup_epochs=1, batch_size=8, augment="anchor")
    meta = train(cfg, table, classes, tmp_path / "clf.safetensors", resolve_model("clip", "tiny", models_dir))
    assert len(meta["loss_per_epoch"]) == 2
    test = images_of(shapes_root, "test", classes)
    metrics = evaluate_classifier(tmp_path / "clf.safetensors", test, classes, tmp_path / "m.json",
                                  tmp_path / "p.csv", tags={"method": "x"})
    assert set(metrics["per_class"]) == set(classes)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["n_test"] == 18
    assert json.loads((tmp_path / "m.json").read_text())["tags"] == {"method": "x"}
    assert len(pd.read_csv(tmp_path / "p.csv")) == 18


def colour_images(root, count, seed):
    """Noisy red images (class 0) and noisy blue ones (class 1): a task any working classifier solves."""
    rng, rows = np.random.default_rng(seed), []
    for label in (0, 1):
        for i in range(count):
            pixels = rng.integers(0, 60, (64, 64, 3)).astype(np.uint8)
            pixels[..., 0 if label == 0 else 2] += 180
            path = root / f"{label}_{i}.png"
            Image.fromarray(pixels).save(path)
            rows.append({"path": str(path), "label": label, "class": ["red", "blue"][label], "real": False})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("prompts", [["a photo of a red thing", "a photo of a blue thing"],
                                     ["a photo of a blue thing", "a photo of a red thing"]])
def test_classifier_learns_two_distinct_classes(tmp_path, models_dir, prompts):
    """Random-weight CLIP labels one of these two prompt orders all wrong before training (it is a
    coin flip which): whichever it is, training must reach near-perfect accuracy on held-out images."""
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    images, test = colour_images(tmp_path / "train", 12, 0), colour_images(tmp_path / "test", 10, 1)
    cfg = ClassifierConfig(epochs=4, warmup_epochs=1, batch_size=8, lr=1e-3, augment="simple", with_real=False)
    meta = train(cfg, images, ["red", "blue"], tmp_path / "c.safetensors", resolve_model("clip", "tiny", models_dir),
                 prompts=prompts)
    metrics = evaluate_classifier(tmp_path / "c.safetensors", test, ["red", "blue"], tmp_path / "m.json",
                                  tmp_path / "p.csv")
    assert metrics["accuracy"] >= 0.9, metrics
    assert meta["loss_per_epoch"][-1] < 0.8 * meta["loss_per_epoch"][0]


def test_real_and_synthetic_loss_weighting_by_hand():
    per_sample = torch.tensor([1.0, 2.0, 3.0, 5.0])
    is_real = torch.tensor([True, False, False, True])
    # real mean (1 + 5) / 2 = 3, synthetic mean (2 + 3) / 2 = 2.5: 0.8 * 3 + 0.2 * 2.5 = 2.9
    assert torch.isclose(classifier_loss(per_sample, is_real, 0.8), torch.tensor(2.9))
    assert torch.isclose(classifier_loss(per_sample, is_real, None), torch.tensor(2.75))  # synthetic only: mean
    # A batch without real samples counts only the synthetic term: 0.2 * 2.5.
    assert torch.isclose(classifier_loss(per_sample[1:3], is_real[1:3], 0.8), torch.tensor(0.5))


def test_lora_attention_honours_both_masks():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    lora = LoRAAttention(mha, rank=4, lora_alpha=8, dropout=0.0).eval()
    x = torch.randn(3, 5, 16)
    padding = torch.tensor([[False] * 5, [False, False, False, True, True], [False] * 4 + [True]])
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    with torch.no_grad():
        for kwargs in ({"key_padding_mask": padding}, {"attn_mask": causal},
                       {"key_padding_mask": padding, "attn_mask": causal},
                       {"attn_mask": torch.randn(5, 5)}):
            expected = mha(x, x, x, need_weights=False, **kwargs)[0]
            got = lora(x, x, x, need_weights=False, **kwargs)[0]
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(NotImplementedError):
        lora(x, x, x, need_weights=True)


class Recording(torch.utils.data.Dataset):
    """Items whose 'augmentation' draws from the global RNG, as torchvision's transforms do; every fetch is
    recorded (index, the draw)."""

    def __init__(self, n: int):
        self.n, self.seen = n, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        draw = float(torch.rand(()))
        self.seen.append((i, draw))
        return torch.full((3, 8, 8), float(i)) + draw, i % 2, True


class TinyBackend:
    name, num_classes = "tiny", 2

    def __init__(self):
        self.model = nn.Linear(3 * 8 * 8, 2)

    def parameters(self):
        return list(self.model.parameters())

    def state(self):
        return dict(self.model.named_parameters())

    def train(self):
        self.model.train()

    def eval(self):
        self.model.eval()

    def logits(self, pixels):
        return self.model(pixels.flatten(1))


@pytest.mark.parametrize("backend", ["clip", "cnn"])
def test_mixing_never_moves_the_data_order_or_the_augmentation_stream(backend):
    """Both backends go through one loop: CutMix/MixUp on every batch or on none, the images come in the same
    order with the same augmentation draws."""
    from ChimeraPipe.classify.loop import fit
    from ChimeraPipe.pipeline.settings import ClassifierConfig

    runs = []
    for mix_prob in (0.0, 1.0):
        torch.manual_seed(0)
        data = Recording(12)
        cfg = ClassifierConfig(backend=backend, epochs=2, warmup_epochs=0, batch_size=4, mix_prob=mix_prob,
                               augment="anchor" if backend == "clip" else "none")
        fit(TinyBackend(), data, cfg)
        runs.append(data.seen)
    assert runs[0] == runs[1] and len(runs[0]) == 24


def test_real_shots_are_repeated_to_the_synthetic_count_whatever_the_backend():
    from ChimeraPipe.classify.data import is_mixed, training_table

    table = pd.DataFrame({"path": [f"s{i}" for i in range(10)] + ["r0", "r1"], "label": 0,
                          "real": [False] * 10 + [True, True]})
    rows = training_table(table)
    assert is_mixed(table) and rows["real"].sum() == 10 and (~rows["real"]).sum() == 10  # ceil(10 / 2) = 5 x 2
    assert len(training_table(table[table["real"]])) == 2   # real only: as given
