"""One plain function per workflow stage: paths and settings in, files out. Snakemake rules call these
through thin scripts; a library user can call them directly."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from . import data, datasets, detect, quality
from . import models as models_module
from .classify import evaluate_classifier, train_classifier
from .clip_filter import ClipFilter
from .cnn import train_cnn_classifier
from .generate import RealGuidance, generate_class
from .images import load_rgb
from .io import atomic_dir, write_csv, write_json, write_text
from .metrics import embeddings, gap
from .metrics.features import feature_extractor
from .metrics.tsne import write_tsne_plot
from .parts import PartIndexError, class_files, run_classes, write_index
from .report import build_report, write_image_grid, write_sample_grid
from .runtime import class_prompt, file_digest, pick_device, stable_seed
from .settings import ClassifierConfig, GenerationSettings, LoraTrainConfig, settings_dataclass
from .train import train_lora
from .views import build_view_cache

log = logging.getLogger(__name__)


def model_location(models: dict, kind: str, models_dir: str = "results/models") -> str:
    """`models` maps kind -> 'tiny', a directory or a hub id (rules pass the built tiny model's folder)."""
    return models_module.resolve_model(kind, models[kind], models_dir)


def shots_by_class(split_csv: str | Path, classes: list[str]) -> dict[str, pd.DataFrame]:
    """Each class's shots in shot order, from one read of the split; a class without shots names the file."""
    table = pd.read_csv(split_csv)
    shots = {cls: table[table["class"] == cls].sort_values("shot") for cls in classes}
    empty = [cls for cls, rows in shots.items() if rows.empty]
    if empty:
        raise ValueError(f"{split_csv}: no shots for classes {empty}")
    return shots


def display_name(cls: str, names: dict | None) -> str:
    """A class's display name (the class id itself when no names are given)."""
    return (names or {}).get(cls, cls)


def prompt_of(cls: str, names: dict | None, prefix: str = "") -> str:
    """The class prompt from its display name."""
    return class_prompt(display_name(cls, names), prefix)


def dataset_table(kind: str, root: str, out_csv: str, *, naming: str = "baseline", on_missing: str = "error",
                  decoded_dir: str | None = None) -> None:
    """The dataset's canonical table (every split) in one CSV; skipped entries (on_missing=skip) are
    listed in a `<table>.skipped.csv` beside it and counted in the log, never dropped silently."""
    table = datasets.dataset_table(kind, root, naming, decoded_dir=decoded_dir, on_missing=on_missing)
    skipped = table.attrs.get("skipped", [])
    write_csv(Path(out_csv).with_suffix(".skipped.csv"), pd.DataFrame({"path": skipped}))
    if skipped:
        log.warning("%s: %d split entries skipped: their image files are missing (listed in %s)", kind,
                    len(skipped), Path(out_csv).with_suffix(".skipped.csv"))
    write_csv(out_csv, table)


def split(table_csv: str, classes: list[str], shots: int, seed: int, out_csv: str, *,
          shots_file: str | None = None, root: str | None = None) -> None:
    """K shots per class from the table's train split (a seeded draw or the user's shot list); every
    chosen image is opened here, so an unreadable one fails now, named, not inside a GPU job."""
    chosen = datasets.draw_shots(pd.read_csv(table_csv), classes, shots, seed, shots_file, root)
    for path in chosen["path"]:
        load_rgb(path)
    write_csv(out_csv, chosen)


def _detector(backend: str, root: str, models: dict, settings: dict, device: str):
    """A function paths, class -> boxes for the backend; models are loaded once per job."""
    if backend == "full":
        return lambda paths, _: detect.full_boxes(paths)
    if backend == "annotations":
        annotations, source = data.read_annotations(root, settings.get("annotations_file", "boxes.csv"))
        return lambda paths, _: detect.annotation_boxes(paths, annotations, source)
    if backend == "grounded_sam":
        detector = detect.GroundedSam(
            model_location(models, "grounding_dino"),
            model_location(models, "sam"), pick_device(device),
            settings.get("box_threshold", 0.3), settings.get("text_threshold", 0.25))
        return lambda paths, cls: detect.grounded_sam_boxes(
            paths, detect.grounding_prompt(cls, settings.get("noun")), detector,
            max_side=settings.get("max_side", 1333))
    raise ValueError(f"detect.backend: unknown backend {backend!r}; expected one of {detect.BACKENDS}")


def detect_part(split_csv: str, classes: list[str], backend: str, out_csv: str, out_preview: str, *,
                root: str, models: dict, settings: dict, device: str = "auto", names: dict | None = None) -> None:
    """Boxes of the part's reference images: one CSV (a `class` column first) and a preview, a row per class."""
    shots = shots_by_class(split_csv, classes)
    boxes_of = _detector(backend, root, models, settings, device)
    frames, rows = [], []
    for cls in classes:
        paths = list(shots[cls]["path"])
        frames.append(boxes_of(paths, display_name(cls, names)).assign(**{"class": cls}))
        rows.append((cls, paths))
    boxes = pd.concat(frames, ignore_index=True)
    boxes = boxes[["class"] + [c for c in boxes.columns if c != "class"]]
    write_csv(out_csv, boxes)
    write_image_grid(out_preview, rows, boxes)


def class_folders(out_index: str) -> Path:
    """Per-class files of a part sit beside its index's `parts/` folder: <stage dir>/<class>/..."""
    return Path(out_index).parent.parent


def crops_part(split_csv: str, boxes_csv: str, classes: list[str], out_index: str, *,
               models: dict, settings: dict, seed: int, device: str = "auto") -> None:
    """View caches (+ previews) of the part's classes, `<class>/views.safetensors`, and the part index."""
    from diffusers import AutoencoderKL

    boxes, root, shots = pd.read_csv(boxes_csv), class_folders(out_index), shots_by_class(split_csv, classes)
    device = pick_device(device)
    diffusion = model_location(models, "diffusion")
    vae = AutoencoderKL.from_pretrained(diffusion, subfolder="vae").to(device).eval()
    jitter = {k: settings[k] for k in ("translate", "flip_prob", "mode") if k in settings}
    if "scale_range" in settings:
        jitter["scale_range"] = tuple(settings["scale_range"])
    # LoFT's centre crop is one fixed view per image.
    views_per_image = 1 if settings.get("mode") == "center" else settings["views_per_image"]

    def inputs(cls):
        return {"settings": settings, "seed": seed, "vae": diffusion, "device": device,
                "shots": shots[cls]["path"].tolist(), "boxes": boxes[boxes["class"] == cls].to_dict("records")}

    def work(cls):
        files = outputs(cls)
        build_view_cache(shots[cls], boxes[boxes["class"] == cls], vae, files["views"],
                         files["preview"], views_per_image, settings["resolution"],
                         stable_seed(seed, cls), device, **jitter)

    def outputs(cls):
        return {"views": str(root / cls / "views.safetensors"), "preview": str(root / cls / "preview.png")}

    write_index(out_index, run_classes(classes, lambda c: root / c, inputs, outputs, work, "crops"))


def train_part(views_index: str, classes: list[str], out_index: str, *, models: dict,
               train_settings: dict, prompt_prefix: str = "", device: str = "auto", names: dict | None = None) -> None:
    """One adapter per class of the part, `<class>/adapter.safetensors` (+ .json), and the part index."""
    cfg = settings_dataclass(LoraTrainConfig, train_settings, "train")
    diffusion, views, root = model_location(models, "diffusion"), class_files([views_index], "views"), \
        class_folders(out_index)
    missing = [c for c in classes if c not in views]
    if missing:
        raise PartIndexError(f"{views_index}: no view cache for classes {missing}")

    def inputs(cls):
        return {"train": train_settings, "prompt": prompt_of(cls, names, prompt_prefix), "diffusion": diffusion,
                "views": file_digest(views[cls])}

    def outputs(cls):
        return {"adapter": str(root / cls / "adapter.safetensors"), "description": str(root / cls / "adapter.json")}

    def work(cls):
        train_lora(diffusion, views[cls], prompt_of(cls, names, prompt_prefix), outputs(cls)["adapter"], cfg,
                   pick_device(device), base_model=models["diffusion"])

    write_index(out_index, run_classes(classes, lambda c: root / c, inputs, outputs, work, "train"))


def generate_part(adapter_index: str | None, classes: list[str], out_index: str, *, models: dict, method: dict,
                  alpha: float | None, num_images: int, settings: dict, seed: int, prompt_prefix: str = "",
                  device: str = "auto", split_csv: str | None = None, all_classes: list[str] | None = None,
                  names: dict | None = None) -> None:
    """Synthetic images per class of the part, `<class>/images/*.png` + `<class>/manifest.csv`, and the index.

    Real guidance (method `guidance: real`) starts from the class's shots in `split_csv`; the CLIP filter
    (`clip_filter: true`) judges each image against the prompts of `all_classes` (the whole dataset)."""
    diffusion, root = model_location(models, "diffusion"), class_folders(out_index)
    generation = settings_dataclass(GenerationSettings, settings, "generate")
    device = pick_device(device)
    adapters = class_files([adapter_index], "adapter") if adapter_index else {}
    if adapter_index and (missing := [c for c in classes if c not in adapters]):
        raise PartIndexError(f"{adapter_index}: no adapter for classes {missing}")
    real = method.get("guidance", "text") == "real"
    if (real or method.get("clip_filter")) and not (split_csv and all_classes):
        raise ValueError("real guidance and the CLIP filter need the split file and the dataset's class list")
    shots = shots_by_class(split_csv, classes) if real else {}
    clip_filter = None
    if method.get("clip_filter"):
        prompts = [prompt_of(c, names, prompt_prefix) for c in all_classes]
        clip_filter = ClipFilter(model_location(models, "clip"), prompts, device, generation.clip_filter_max_factor)

    def guidance(cls):
        if not real:
            return None
        return RealGuidance(tuple(shots[cls]["path"]), float(method.get("strength", 0.5)))

    def inputs(cls):
        return {"method": method, "alpha": alpha, "num_images": num_images, "settings": settings, "seed": seed,
                "prompt": prompt_of(cls, names, prompt_prefix), "diffusion": diffusion,
                "adapter": file_digest(adapters[cls]) if cls in adapters else None,
                "shots": list(shots[cls]["path"]) if real else None,
                "filter": clip_filter.fingerprint() if clip_filter else None}

    def outputs(cls):
        return {"manifest": str(root / cls / "manifest.csv")}

    def work(cls):
        generate_class(diffusion, adapters.get(cls), prompt_of(cls, names, prompt_prefix), root / cls / "images",
                       outputs(cls)["manifest"], num_images, alpha, method.get("mixing", "dirichlet"),
                       stable_seed(seed, cls, "generate"), generation, device, class_name=cls,
                       real_guidance=guidance(cls), clip_filter=clip_filter,
                       class_index=all_classes.index(cls) if clip_filter else 0)

    write_index(out_index, run_classes(classes, lambda c: root / c, inputs, outputs, work, "generate"))


def longtail_train(table_csv: str, split_csv: str, head: list[str], tail: list[str], head_max: int, seed: int,
                   out_csv: str) -> None:
    """A long-tail dataset's real training images: up to `head_max` per head class, the run's shots per
    tail class."""
    write_csv(out_csv, datasets.draw_longtail(pd.read_csv(table_csv), pd.read_csv(split_csv), head, tail,
                                              head_max, seed))


def classifier_table(split_csv: str, manifests: list[str], classes: list[str], with_real: bool,
                     per_class: int | None = None) -> pd.DataFrame:
    """Training images for the classifier: synthetic ones from the manifests (the first `per_class` of each
    class's set: smaller volumes are prefixes of the generated one), plus (or only) the real images."""
    label = {name: i for i, name in enumerate(classes)}
    parts = []
    for manifest in manifests:
        frame = pd.read_csv(manifest)
        if per_class is not None:
            if len(frame) < per_class:
                raise ValueError(f"{manifest}: {len(frame)} images, fewer than the {per_class} asked for")
            frame = frame.head(per_class)
        parts.append(pd.DataFrame({"path": frame["file"], "label": frame["class"].map(label), "real": False}))
    if with_real or not manifests:
        real = pd.read_csv(split_csv)
        parts.append(pd.DataFrame({"path": real["path"], "label": real["class"].map(label), "real": True}))
    return pd.concat(parts, ignore_index=True)


def classify(split_csv: str, synth_indexes: list[str], classes: list[str], out_classifier: str, *, models: dict,
             settings: dict, prompt_prefix: str = "", seed: int = 0, device: str = "auto",
             table_csv: str | None = None, names: dict | None = None, num_images: int | None = None) -> None:
    """Train the classifier of one method on the first `num_images` synthetic images per class (all when
    None); with `select: val` the dataset's val split (from the table) picks the epoch. The text head reads
    the classes' display names."""
    cfg = settings_dataclass(ClassifierConfig, {**settings, "seed": seed}, "classify")
    manifests = list(class_files(synth_indexes, "manifest").values())
    table = classifier_table(split_csv, manifests, classes, cfg.with_real, num_images)
    val = None
    if cfg.select == "val":
        val = datasets.split_rows(pd.read_csv(table_csv), "val", classes) if table_csv else pd.DataFrame()
        if val.empty:
            raise datasets.DatasetLayoutError(f"{table_csv}: the dataset has no val split for classify.select = val")
    if cfg.backend == "cnn":
        if val is not None:
            raise ValueError("classify.select = val is not implemented for the cnn backend; use last")
        train_cnn_classifier(table, classes, out_classifier, cfg, pick_device(device), cfg.image_size)
        return
    train_classifier(model_location(models, "clip"), table, [prompt_of(c, names, prompt_prefix) for c in classes],
                     out_classifier, cfg, pick_device(device), val=val)


def evaluate(classifier: str, table_csv: str, classes: list[str], out_json: str, out_predictions: str,
             tags: dict | None = None, device: str = "auto", groups: dict[str, list[str]] | None = None) -> None:
    """Accuracy on the dataset's test split (its val split where it has no test split, e.g. ISIC without
    the Test part; `eval_split` in the result says which); `groups` (e.g. a long-tail dataset's head and
    tail classes) are also scored apart."""
    table = pd.read_csv(table_csv)
    which = datasets.eval_split(table)
    rows = datasets.split_rows(table, which, classes)
    if rows.empty:
        raise datasets.DatasetLayoutError(f"{table_csv}: no {which} images for classes {classes[:3]}...")
    evaluate_classifier(classifier, rows, classes, out_json, out_predictions, pick_device(device),
                        tags={**(tags or {}), "eval_split": which}, groups=groups)


def report(eval_jsons: list[str], out_dir: str, *, gap_jsons: list[str] = (), tsne_pngs: list[str] = (),
           grid_dirs: list[str] = (), box_quality_csvs: list[str] = (), base_dirs: list[str] = (),
           judge_jsons: list[str] = ()) -> None:
    """Every table and figure for what the run produced: out_dir/{accuracy.*, tables/, figures/, report.md,
    report.html}."""
    build_report(list(eval_jsons), list(gap_jsons), list(tsne_pngs), list(grid_dirs), list(box_quality_csvs),
                 out_dir, base_dirs=list(base_dirs), judge_jsons=list(judge_jsons))


def box_quality(root: str, annotations_file: str, boxes: dict[str, list[str]], views: dict[str, list[str]],
                out_csv: str, out_md: str) -> None:
    """`boxes`: backend -> detect part CSVs; `views`: backend -> crops part indexes."""
    truth, _ = data.read_annotations(root, annotations_file)
    view_caches = {backend: list(class_files(indexes, "views").values()) for backend, indexes in views.items()}
    table = quality.box_quality(boxes, view_caches, truth)
    write_csv(out_csv, table)
    write_text(out_md, "# Boxes against ground truth\n\n" + table.to_markdown(index=False, floatfmt=".3f") + "\n")


def sample_grids(split_csv: str, classes: list[str], synth_indexes: dict[str, list[str]], out_dir: str,
                 per_row: int = 8) -> None:
    """`<class>.png` per class in out_dir: the real shots, then a row of generated images per method."""
    manifests = {method: class_files(indexes, "manifest") for method, indexes in synth_indexes.items()}
    shots = shots_by_class(split_csv, classes)
    with atomic_dir(out_dir) as tmp:
        for cls in classes:
            real = list(shots[cls]["path"])
            synth = {method: list(pd.read_csv(files[cls])["file"])[:per_row] for method, files in manifests.items()}
            write_sample_grid(tmp / f"{cls}.png", real=real, synth=synth)


# --- gap metrics ----------------------------------------------------------------------------------------

def image_set(which: str, classes: list[str], *, table_csv: str | None = None, split_csv: str | None = None,
              synth_indexes: list[str] | None = None) -> pd.DataFrame:
    """(path, class) of an image set: the dataset's evaluation images ('test'), a run's shots ('shots') or
    a synthetic set ('synth', every image its manifests list)."""
    if which == "test":
        table = pd.read_csv(table_csv)
        return datasets.split_rows(table, datasets.eval_split(table), classes)[["path", "class"]]
    if which == "shots":
        rows = pd.read_csv(split_csv)
        return rows[rows["class"].isin(classes)][["path", "class"]]
    if which == "synth":
        manifests = class_files(synth_indexes, "manifest")
        frames = [pd.read_csv(manifests[c]).rename(columns={"file": "path"}).assign(**{"class": c})
                  for c in classes if c in manifests]
        return pd.concat(frames, ignore_index=True)[["path", "class"]]
    raise ValueError(f"unknown image set {which!r}; expected test, shots or synth")


def embed(rows: pd.DataFrame, out: str, *, features: str, models: dict, device: str = "auto",
          batch_size: int = 64) -> None:
    """Embeddings of an image set in the `features` space (one file per set, reused by every metric)."""
    extractor = feature_extractor(features, models, pick_device(device), batch_size)
    emb = extractor.embed_images(list(rows["path"]))
    if getattr(extractor, "predicted", None) is not None:  # a classifier's features: keep its verdicts
        rows = rows.assign(predicted=extractor.predicted)
    embeddings.write_embeddings(out, rows, emb, features)


def embed_prompts(classes: list[str], out: str, *, models: dict, names: dict | None = None, prompt_prefix: str = "",
                  device: str = "auto") -> None:
    """CLIP text embeddings of the class prompts (rows: prompt, class), for the CLIP score."""
    prompts = [prompt_of(c, names, prompt_prefix) for c in classes]
    extractor = feature_extractor("clip", models, pick_device(device))
    embeddings.write_embeddings(out, pd.DataFrame({"path": prompts, "class": classes}),
                                extractor.embed_texts(prompts), "clip")


def gap_metrics(test: str, shots: str, synth: str, synth_clip: str | None, prompts: str | None, classes: list[str],
                out_json: str, out_csv: str, *, k: int = 5, tags: dict | None = None) -> dict:
    """Every gap metric of one synthetic set, per class (CSV) and summarised (JSON). The CLIP score reads
    CLIP embeddings (`synth_clip`, `prompts`) whatever space the other metrics are computed in; without
    them it is left out (NaN)."""
    frames, emb = {}, {}
    for name, path in (("test", test), ("shots", shots), ("synth", synth)):
        frames[name], emb[name] = embeddings.read_embeddings(path)
    clip_emb, text = None, None
    if synth_clip and prompts:
        clip_rows, clip_emb = embeddings.read_embeddings(synth_clip)
        if list(clip_rows["path"]) != list(frames["synth"]["path"]):
            raise ValueError(f"{synth_clip}: not the images of {synth}")
        prompt_rows, prompt_emb = embeddings.read_embeddings(prompts)
        text = dict(zip(prompt_rows["class"], prompt_emb, strict=True))
    per_class, summary = gap.dataset_gap(frames["test"], frames["shots"], frames["synth"], emb, text, classes, k,
                                         synth_clip=clip_emb)
    features = embeddings.features_of(synth)
    write_csv(out_csv, per_class.assign(features=features))
    result = {"summary": summary, "features": features, "tags": tags or {}}
    write_json(out_json, result)
    return result


def tsne(test: str, shots: str, synth: dict[str, str], cls: str, out_png: str, *, seed: int = 0,
         perplexity: float = 30.0, title: str = "") -> None:
    """t-SNE of one class: real shots, real test images and each labelled synthetic set."""
    groups = {}
    for label, path in (("real test", test), ("real shots", shots), *synth.items()):
        rows, emb = embeddings.read_embeddings(path)
        groups[label] = emb[(rows["class"] == cls).to_numpy()]
    write_tsne_plot(out_png, groups, title or cls, seed, perplexity)


def train_judge(table_csv: str, classes: list[str], out: str, *, epochs: int = 30, image_size: int = 32,
                device: str = "auto") -> None:
    """The dataset's judge (a SmallCNN on all its real training images; test accuracy in the JSON)."""
    from .cnn import train_judge as fit

    cfg = ClassifierConfig(backend="cnn", image_size=image_size, epochs=epochs, warmup_epochs=1, batch_size=64,
                           lr=1e-3, weight_decay=1e-4, augment="affine", mix_prob=0.0, seed=0)
    fit(pd.read_csv(table_csv), classes, out, cfg, device, image_size)
