"""One plain function per workflow stage: paths and settings in, files out. Snakemake rules call these
through thin scripts; a library user can call them directly."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from . import data, detect, quality
from . import models as models_module
from .classify import ClassifierConfig, evaluate_classifier, train_classifier
from .generate import generate_class
from .io import write_csv, write_text
from .report import write_accuracy_table, write_sample_grid
from .runtime import class_prompt, pick_device, settings_dataclass, stable_seed
from .train import LoraTrainConfig, train_lora
from .views import build_view_cache

log = logging.getLogger(__name__)


def model_location(models: dict, kind: str, models_dir: str = "results/models") -> str:
    """`models` maps kind -> 'tiny', a directory or a hub id (rules pass the built tiny model's folder)."""
    return models_module.resolve_model(kind, models[kind], models_dir)


def class_shots(split_csv: str | Path, class_name: str) -> pd.DataFrame:
    table = pd.read_csv(split_csv)
    shots = table[table["class"] == class_name].sort_values("shot")
    if shots.empty:
        raise ValueError(f"{split_csv}: no shots for class {class_name!r}")
    return shots


def split(root: str, classes: list[str], shots: int, seed: int, out_csv: str) -> None:
    write_csv(out_csv, data.choose_shots(root, classes, shots, seed))


def detect_class(split_csv: str, class_name: str, backend: str, out_csv: str, out_preview: str, *,
                 root: str, models: dict, settings: dict, device: str = "auto") -> None:
    paths = list(class_shots(split_csv, class_name)["path"])
    if backend == "full":
        boxes = detect.full_boxes(paths)
    elif backend == "annotations":
        annotations, source = data.read_annotations(root, settings.get("annotations_file", "boxes.csv"))
        boxes = detect.annotation_boxes(paths, annotations, source)
    elif backend == "grounded_sam":
        detector = detect.GroundedSam(
            model_location(models, "grounding_dino"),
            model_location(models, "sam"), pick_device(device),
            settings.get("box_threshold", 0.3), settings.get("text_threshold", 0.25))
        prompt = detect.grounding_prompt(class_name, settings.get("noun"))
        boxes = detect.grounded_sam_boxes(paths, prompt, detector, max_side=settings.get("max_side", 1333))
    else:
        raise ValueError(f"detect.backend: unknown backend {backend!r}; expected one of {detect.BACKENDS}")
    write_csv(out_csv, boxes)
    write_sample_grid(out_preview, real=paths, boxes=boxes)


def crops_class(split_csv: str, boxes_csv: str, class_name: str, out_views: str, out_preview: str, *,
                models: dict, settings: dict, seed: int, device: str = "auto") -> None:
    from diffusers import AutoencoderKL

    device = pick_device(device)
    vae = AutoencoderKL.from_pretrained(model_location(models, "diffusion"),
                                        subfolder="vae").to(device).eval()
    jitter = {k: settings[k] for k in ("translate", "min_side_frac", "flip_prob") if k in settings}
    if "scale_range" in settings:
        jitter["scale_range"] = tuple(settings["scale_range"])
    build_view_cache(class_shots(split_csv, class_name), pd.read_csv(boxes_csv), vae, out_views, out_preview,
                     settings["views_per_image"], settings["resolution"], stable_seed(seed, class_name),
                     device, **jitter)


def train_class(views: str, class_name: str, out_adapter: str, *, models: dict,
                train_settings: dict, prompt_prefix: str = "", device: str = "auto") -> None:
    cfg = settings_dataclass(LoraTrainConfig, {k: tuple(v) if k == "targets" else v
                                               for k, v in train_settings.items()}, "train")
    diffusion = model_location(models, "diffusion")
    train_lora(diffusion, views, class_prompt(class_name, prompt_prefix), out_adapter, cfg, pick_device(device),
               base_model=models["diffusion"])


def generate_for_class(adapter: str | None, class_name: str, out_manifest: str, *, models: dict, method: dict,
                       alpha: float | None, num_images: int, settings: dict,
                       seed: int, prompt_prefix: str = "", device: str = "auto") -> None:
    out_dir = Path(out_manifest).parent / "images"
    generate_class(model_location(models, "diffusion"), adapter,
                   class_prompt(class_name, prompt_prefix), out_dir, out_manifest, num_images, alpha or 1.0,
                   method.get("mixing", "dirichlet"), stable_seed(seed, class_name, "generate"),
                   guidance_scale=settings.get("guidance_scale", 2.0), steps=settings.get("steps", 50),
                   batch_size=settings.get("batch_size", 8), resolution=settings["resolution"],
                   device=pick_device(device), precision=settings.get("precision", "auto"), class_name=class_name)


def classifier_table(split_csv: str, manifests: list[str], classes: list[str], with_real: bool) -> pd.DataFrame:
    """Training images for the classifier: synthetic ones from the manifests, plus (or only) the real shots."""
    label = {name: i for i, name in enumerate(classes)}
    parts = []
    for manifest in manifests:
        frame = pd.read_csv(manifest)
        parts.append(pd.DataFrame({"path": frame["file"], "label": frame["class"].map(label), "real": False}))
    if with_real or not manifests:
        real = pd.read_csv(split_csv)
        parts.append(pd.DataFrame({"path": real["path"], "label": real["class"].map(label), "real": True}))
    return pd.concat(parts, ignore_index=True)


def classify(split_csv: str, manifests: list[str], classes: list[str], out_classifier: str, *, models: dict,
             settings: dict, prompt_prefix: str = "", seed: int = 0,
             device: str = "auto") -> None:
    settings = dict(settings)
    with_real = settings.pop("with_real", True)
    table = classifier_table(split_csv, manifests, classes, with_real)
    cfg = settings_dataclass(ClassifierConfig, {**settings, "seed": seed}, "classify")
    train_classifier(model_location(models, "clip"), table,
                     [class_prompt(c, prompt_prefix) for c in classes], out_classifier, cfg, pick_device(device))


def evaluate(classifier: str, root: str, classes: list[str], out_json: str, out_predictions: str,
             tags: dict | None = None, device: str = "auto") -> None:
    test = data.scan_split(root, "test", classes)
    if test.empty:
        raise data.DatasetError(f"{Path(root) / 'test'}: no test images")
    evaluate_classifier(classifier, test, classes, out_json, out_predictions, pick_device(device), tags=tags)


def report(eval_jsons: list[str], out_csv: str, out_md: str) -> None:
    write_accuracy_table(eval_jsons, out_csv, out_md)


def box_quality(root: str, annotations_file: str, boxes: dict[str, list[str]], views: dict[str, list[str]],
                out_csv: str, out_md: str) -> None:
    truth, _ = data.read_annotations(root, annotations_file)
    table = quality.box_quality(boxes, views, truth)
    write_csv(out_csv, table)
    write_text(out_md, "# Boxes against ground truth\n\n" + table.to_markdown(index=False, floatfmt=".3f") + "\n")


def sample_grid(split_csv: str, class_name: str, manifests: dict[str, str], out_png: str, per_row: int = 8) -> None:
    real = list(class_shots(split_csv, class_name)["path"])
    synth = {method: list(pd.read_csv(m)["file"])[:per_row] for method, m in manifests.items()}
    write_sample_grid(out_png, real=real, synth=synth)
