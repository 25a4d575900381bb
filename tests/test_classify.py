"""The CLIP classifier: LoRA attention equals the original at init; training and evaluation write results."""
import json

import pandas as pd
import torch

from ChimeraPipe.classify import ClassifierConfig, evaluate_classifier, inject_clip_lora, load_clip, train_classifier
from ChimeraPipe.data import choose_shots, scan_split
from ChimeraPipe.models import resolve_model


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
    real = choose_shots(shapes_root, classes, 4, 0).assign(real=True)
    synth = real.assign(real=False)  # stands in for generated images: checks the weighted real+synth path
    table = pd.concat([real, synth], ignore_index=True)
    cfg = ClassifierConfig(epochs=2, warmup_epochs=1, batch_size=8, augment="anchor")
    meta = train_classifier(resolve_model("clip", "tiny", models_dir), table, [f"a photo of a {c}" for c in classes],
                            tmp_path / "clf.safetensors", cfg)
    assert len(meta["loss_per_epoch"]) == 2
    test = scan_split(shapes_root, "test", classes)
    metrics = evaluate_classifier(tmp_path / "clf.safetensors", test, classes, tmp_path / "m.json",
                                  tmp_path / "p.csv", tags={"method": "x"})
    assert set(metrics["per_class"]) == set(classes)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["n_test"] == 18
    assert json.loads((tmp_path / "m.json").read_text())["tags"] == {"method": "x"}
    assert len(pd.read_csv(tmp_path / "p.csv")) == 18
