"""One plain function per workflow stage: paths and settings in, files out. Snakemake rules call these
through thin scripts; a library user can call them directly.

`models` maps a model kind to the location to load it from (a folder, or what from_pretrained takes); a hub
model's location is its staged folder (models/staging.py), checked against its manifest when the stage starts;
`settings` are a section's canonical settings (pipeline/settings.py), complete, as the rules pass them.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pandas as pd

from .. import datasets
from ..boxes import quality
from ..core import shards
from ..core.hashing import file_digest, settings_digest, stable_seed
from ..core.images import load_rgb, read_image_bytes
from ..core.io import atomic_dir, write_csv, write_json, write_text
from ..core.names import HEAD_TAG, class_prompt
from ..core.provenance import git_commit, hardware, package_version
from ..core.runtime import pick_device
from ..datasets.demo import read_annotations
from ..metrics import embeddings
from ..metrics.features import EXTRACTORS, feature_extractor
from ..metrics.pixels import grey_thumbnails
from ..models.specs import BUILT_SPECS
from ..models.staged import describe_model
from ..models.staging import is_staged, model_identity, verify_staged
from .parts import PartIndexError, class_files, run_class_groups, run_classes, write_index
from .presets import option
from .settings import (
    ClassifierConfig,
    GenerationSettings,
    LoraTrainConfig,
    PretrainSettings,
    judge_settings,
    settings_dataclass,
    source_judge_settings,
)

# Modules that load torch, diffusers, torchvision, matplotlib or scipy are imported inside the stage that uses
# them (the ones above load none): a rule's job then loads only what its own stage needs, and the light jobs
# (splits, tables, metrics, the report) start in a fraction of a second instead of the seconds torch and
# torchvision take (tests/test_runtime.py).

log = logging.getLogger(__name__)


def checked_models(models: dict | None) -> dict:
    """`models` as given, after the job-start check of every location that is a staged hub folder (sizes, and
    SHA-256 of files changed since their last check): a missing or changed file stops the job, naming it."""
    for location in (models or {}).values():
        if isinstance(location, str | Path) and is_staged(location):
            verify_staged(location, full=False)
    return models


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


def dataset_table(kind: str, root: str, out_csv: str, *, naming: str = datasets.DEFAULT_NAMING,
                  on_missing: str = datasets.DEFAULT_ON_MISSING, decoded_dir: str | None = None) -> None:
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


def _detector(backend: str, root: str, models: dict, settings: dict, noun: str, device: str):
    """A function paths, class -> boxes for the backend; models are loaded once per job."""
    from ..boxes import detect

    if backend == "full":
        return lambda paths, _: detect.full_boxes(paths)
    if backend == "annotations":
        annotations, source = read_annotations(root, settings["annotations_file"])
        return lambda paths, _: detect.annotation_boxes(paths, annotations, source)
    if backend == "grounded_sam":
        detector = detect.GroundedSam(models["grounding_dino"], models["sam"], pick_device(device),
                                      settings["box_threshold"], settings["text_threshold"])
        return lambda paths, cls: detect.grounded_sam_boxes(paths, detect.grounding_prompt(cls, noun), detector,
                                                            max_side=settings["max_side"])
    raise ValueError(f"detect.backend: unknown backend {backend!r}; expected one of {detect.BACKENDS}")


def detect_part(split_csv: str, classes: list[str], backend: str, out_csv: str, out_preview: str, *,
                root: str, models: dict, settings: dict, device: str = "auto", names: dict | None = None) -> None:
    """Boxes of the part's reference images: one CSV (a `class` column first) and a preview, a row per class.
    `settings`: the detect section and the dataset's Grounding-DINO `noun`."""
    from ..report import write_image_grid

    shots = shots_by_class(split_csv, classes)
    boxes_of = _detector(backend, root, checked_models(models), settings, settings["noun"], device)
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


def crops_part(split_csv: str, boxes_csv: str, classes: list[str], out_index: str, *, models: dict,
               settings: dict, seed: int, device: str = "auto") -> None:
    """View caches (+ previews) of the part's classes, `<class>/views.safetensors`, and the part index.
    `settings`: the crops section and the `mode`: box (box-constrained), random (DataDream's square) or
    center (LoFT's one centre crop)."""
    from diffusers import AutoencoderKL

    from ..boxes.views import build_view_cache

    mode, models = settings["mode"], checked_models(models)
    boxes, root, shots = pd.read_csv(boxes_csv), class_folders(out_index), shots_by_class(split_csv, classes)
    device = pick_device(device)
    vae = AutoencoderKL.from_pretrained(models["diffusion"], subfolder="vae").to(device).eval()
    jitter = {"scale_range": tuple(settings["scale_range"]), "translate": settings["translate"],
              "flip_prob": settings["flip_prob"], "mode": mode}
    views_per_image = 1 if mode == "center" else settings["views_per_image"]  # LoFT: one fixed view

    def inputs(cls):
        return {"settings": settings, "seed": seed, "vae": model_identity(models["diffusion"]), "device": device,
                "shots": shots[cls]["path"].tolist(), "boxes": boxes[boxes["class"] == cls].to_dict("records")}

    def outputs(cls):
        return {"views": str(root / cls / "views.safetensors"), "preview": str(root / cls / "preview.png")}

    def work(cls):
        files = outputs(cls)
        build_view_cache(shots[cls], boxes[boxes["class"] == cls], vae, files["views"], files["preview"],
                         views_per_image, settings["resolution"], stable_seed(seed, cls), device, **jitter)

    write_index(out_index, run_classes(classes, lambda c: root / c, inputs, outputs, work, "crops"))


def train_part(views_index: str, classes: list[str], out_index: str, *, models: dict, train_settings: dict,
               prompt_prefix: str = "", device: str = "auto", names: dict | None = None) -> None:
    """One adapter per class of the part, `<class>/adapter.safetensors` (+ .json), and the part index; the classes
    not done yet train together, `classes_per_step` at a time, each group resuming from its own checkpoint."""
    from ..diffusion.train import ClassJob, train_loras

    cfg = settings_dataclass(LoraTrainConfig, train_settings, "train")
    diffusion = checked_models(models)["diffusion"]
    views, root = class_files([views_index], "views"), class_folders(out_index)
    missing = [c for c in classes if c not in views]
    if missing:
        raise PartIndexError(f"{views_index}: no view cache for classes {missing}")

    def inputs(cls):
        return {"train": train_settings, "prompt": prompt_of(cls, names, prompt_prefix),
                "diffusion": model_identity(diffusion),
                "views": file_digest(views[cls])}

    def outputs(cls):
        return {"adapter": str(root / cls / "adapter.safetensors"), "description": str(root / cls / "adapter.json")}

    def work(group):
        jobs = [ClassJob(views[cls], prompt_of(cls, names, prompt_prefix), outputs(cls)["adapter"]) for cls in group]
        checkpoint = root / ".checkpoints" / f"{settings_digest(group)}.safetensors"
        train_loras(diffusion, jobs, cfg, pick_device(device), base_model=diffusion, checkpoint_path=checkpoint)

    entries = run_class_groups(classes, lambda c: root / c, inputs, outputs, work, cfg.classes_per_step, "train")
    with contextlib.suppress(OSError):  # each group removed its checkpoint; other parts' jobs may still hold theirs
        (root / ".checkpoints").rmdir()
    write_index(out_index, entries)


def generate_part(adapter_index: str | None, classes: list[str], out_index: str, *, models: dict, method: dict,
                  alpha: float | None, num_images: int, settings: dict, seed: int, prompt_prefix: str = "",
                  device: str = "auto", split_csv: str | None = None, all_classes: list[str] | None = None,
                  names: dict | None = None) -> None:
    """Synthetic images per class of the part, a few tar shards in `<class>/images/` + `<class>/manifest.csv`, and
    the part index.

    Real guidance (method `guidance: real`) starts from the class's shots in `split_csv`; the CLIP filter
    (`clip_filter: true`) judges each image against the prompts of `all_classes` (the whole dataset)."""
    from ..diffusion.clip_filter import ClipFilter
    from ..diffusion.generate import RealGuidance, generate_class

    diffusion, root = checked_models(models)["diffusion"], class_folders(out_index)
    generation = settings_dataclass(GenerationSettings, settings, "generate")
    device = pick_device(device)
    adapters = class_files([adapter_index], "adapter") if adapter_index else {}
    if adapter_index and (missing := [c for c in classes if c not in adapters]):
        raise PartIndexError(f"{adapter_index}: no adapter for classes {missing}")
    real = option(method, "guidance") == "real"
    if (real or option(method, "clip_filter")) and not (split_csv and all_classes):
        raise ValueError("real guidance and the CLIP filter need the split file and the dataset's class list")
    shots = shots_by_class(split_csv, classes) if real else {}
    clip_filter = None
    if option(method, "clip_filter"):
        prompts = [prompt_of(c, names, prompt_prefix) for c in all_classes]
        clip_filter = ClipFilter(models["clip"], prompts, device, generation.clip_filter_max_factor)

    def guidance(cls):
        if not real:
            return None
        return RealGuidance(tuple(shots[cls]["path"]), float(option(method, "strength")))

    def inputs(cls):
        return {"method": method, "alpha": alpha, "num_images": num_images, "settings": settings, "seed": seed,
                "prompt": prompt_of(cls, names, prompt_prefix), "diffusion": model_identity(diffusion),
                "adapter": file_digest(adapters[cls]) if cls in adapters else None,
                "shots": list(shots[cls]["path"]) if real else None,
                "filter": clip_filter.fingerprint() if clip_filter else None}

    def outputs(cls):
        return {"manifest": str(root / cls / "manifest.csv")}

    def work(cls):
        generate_class(diffusion, adapters.get(cls), prompt_of(cls, names, prompt_prefix), root / cls / "images",
                       outputs(cls)["manifest"], num_images, alpha, option(method, "mixing"),
                       stable_seed(seed, cls, "generate"), generation, device, class_name=cls,
                       real_guidance=guidance(cls), clip_filter=clip_filter,
                       class_index=all_classes.index(cls) if clip_filter else 0)

    write_index(out_index, run_classes(classes, lambda c: root / c, inputs, outputs, work, "generate"),
                hardware={"device": device, **hardware()})


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
    frames = []
    for manifest in manifests:
        frame = pd.read_csv(manifest)
        if per_class is not None:
            if len(frame) < per_class:
                raise ValueError(f"{manifest}: {len(frame)} images, fewer than the {per_class} asked for")
            frame = frame.head(per_class)
        frames.append(pd.DataFrame({"path": frame["file"], "label": frame["class"].map(label), "real": False}))
    if with_real or not manifests:
        real = pd.read_csv(split_csv)
        frames.append(pd.DataFrame({"path": real["path"], "label": real["class"].map(label), "real": True}))
    return pd.concat(frames, ignore_index=True)


def classify(split_csv: str, synth_indexes: list[str], classes: list[str], out_classifier: str, *, models: dict,
             settings: dict, prompt_prefix: str = "", seed: int = 0, device: str = "auto",
             table_csv: str | None = None, names: dict | None = None, num_images: int | None = None,
             num_workers: int = 0) -> None:
    """Train the classifier of one method on the first `num_images` synthetic images per class (all when
    None); with `select: val` the dataset's val split (from the table) picks the epoch. The text head reads
    the classes' display names. Resumes from its last finished epoch. `num_workers` DataLoader workers
    (config.classify_workers) decode and augment; the result does not depend on how many."""
    from ..classify.backends import make_backend
    from ..classify.loop import train_classifier

    cfg = settings_dataclass(ClassifierConfig, {**settings, "seed": seed, "num_workers": num_workers}, "classify")
    models = checked_models(models)
    manifests = list(class_files(synth_indexes, "manifest").values())
    table = classifier_table(split_csv, manifests, classes, cfg.with_real, num_images)
    val = None
    if cfg.select == "val":
        val = datasets.split_rows(pd.read_csv(table_csv), "val", classes) if table_csv else pd.DataFrame()
        if val.empty:
            raise datasets.DatasetLayoutError(f"{table_csv}: the dataset has no val split for classify.select = val")
    device = pick_device(device)
    prompts = [prompt_of(c, names, prompt_prefix) for c in classes]
    inputs = settings_digest([file_digest(p) for p in [split_csv, *synth_indexes]])
    train_classifier(lambda: make_backend(cfg, classes, prompts, models.get("clip"), device), table, cfg,
                     out_classifier, device, val=val, inputs_digest=inputs)


def evaluate(classifier: str, table_csv: str, classes: list[str], out_json: str, out_predictions: str,
             tags: dict | None = None, device: str = "auto", groups: dict[str, list[str]] | None = None,
             num_workers: int = 0) -> None:
    """Accuracy on the dataset's test split (its val split where it has no test split, e.g. ISIC without
    the Test part; `eval_split` in the result says which); `groups` (e.g. a long-tail dataset's head and
    tail classes) are also scored apart."""
    from ..classify.evaluate import evaluate_classifier

    try:
        rows, which = datasets.eval_rows(pd.read_csv(table_csv), classes)
    except datasets.DatasetLayoutError as err:
        raise datasets.DatasetLayoutError(f"{table_csv}: {err}") from None
    evaluate_classifier(classifier, rows, classes, out_json, out_predictions, pick_device(device),
                        tags={**(tags or {}), "eval_split": which}, groups=groups, num_workers=num_workers)


def provenance(run: dict, *, results: str | None = None, classifier_jsons: list[str] = (),
               synth_indexes: list[str] = ()) -> dict:
    """What produced a run's results, for its report. `run`: the config's model specs (`models`), `models_dir`,
    the effective config's digest (`config_digest`), `seeds` and the `pretrain` settings; the classifier
    descriptions and generation part indexes say where their jobs ran; `results`' benchmark files how long
    each stage took."""
    from ..report.provenance import job_hardware
    from ..report.stage_times import stage_summary, stage_times

    models = []
    for kind, spec in run["models"].items():
        model = describe_model(kind, spec, run["models_dir"])
        if BUILT_SPECS.get(spec) == kind:
            model["settings_digest"] = settings_digest(run["pretrain"])
        models.append(model)
    times = stage_summary(stage_times(results)) if results else None
    return {"models": models, "code": {"version": package_version(), "commit": git_commit()},
            "config_digest": run["config_digest"], "seeds": list(run["seeds"]),
            "hardware": job_hardware({"classify": list(classifier_jsons), "generate": list(synth_indexes)}),
            "stage_times": [] if times is None else times.to_dict("records")}


def report(eval_jsons: list[str], out_dir: str, *, gap_jsons: list[str] = (), tsne_pngs: list[str] = (),
           grid_dirs: list[str] = (), box_quality_csvs: list[str] = (), base_dirs: list[str] = (),
           judge_jsons: list[str] = (), spread_jsons: list[str] = (), provenance: dict | None = None) -> None:
    """Every table and figure for what the run produced: out_dir/{accuracy.*, tables/, figures/, report.md,
    report.html}, opening with `provenance` (see `provenance`) and its provenance.json when given."""
    from ..report import build_report

    build_report(list(eval_jsons), list(gap_jsons), list(tsne_pngs), list(grid_dirs), list(box_quality_csvs),
                 out_dir, base_dirs=list(base_dirs), judge_jsons=list(judge_jsons), spread_jsons=list(spread_jsons),
                 provenance=provenance)


def box_quality(root: str, annotations_file: str, boxes: dict[str, list[str]], views: dict[str, list[str]],
                out_csv: str, out_md: str) -> None:
    """`boxes`: backend -> detect part CSVs; `views`: backend -> crops part indexes."""
    truth, _ = read_annotations(root, annotations_file)
    view_caches = {backend: list(class_files(indexes, "views").values()) for backend, indexes in views.items()}
    table = quality.box_quality(boxes, view_caches, truth)
    write_csv(out_csv, table)
    write_text(out_md, "# Boxes against ground truth\n\n" + table.to_markdown(index=False, floatfmt=".3f") + "\n")


def sample_grids(split_csv: str, classes: list[str], synth_indexes: dict[str, list[str]], out_dir: str,
                 per_row: int = 8) -> None:
    """`<class>.png` per class in out_dir: the real shots, then a row of generated images per synthetic set
    (keys of `synth_indexes`: the sets' labels)."""
    from ..report import write_sample_grid

    manifests = {label: class_files(indexes, "manifest") for label, indexes in synth_indexes.items()}
    shots = shots_by_class(split_csv, classes)
    with atomic_dir(out_dir) as tmp:
        for cls in classes:
            real = list(shots[cls]["path"])
            synth = {label: list(pd.read_csv(files[cls])["file"])[:per_row] for label, files in manifests.items()}
            write_sample_grid(tmp / f"{cls}.png", real=real, synth=synth)


def export_synth(synth_indexes: list[str], out_dir: str) -> int:
    """A synthetic set as an ImageFolder of files, `<out_dir>/<class>/<index>.<ext>`: each image's stored bytes,
    as they are in its shard (no re-encoding); for tools that want a file per image. Returns the count."""
    manifests, count = class_files(synth_indexes, "manifest"), 0
    with atomic_dir(out_dir) as tmp:
        for cls, manifest in manifests.items():
            (tmp / cls).mkdir(parents=True)
            for reference in pd.read_csv(manifest)["file"]:
                member = Path(str(reference).split(shards.REF_SEP, 1)[-1]).name
                (tmp / cls / member).write_bytes(read_image_bytes(reference))
                count += 1
    log.info("exported %d images of %d classes to %s", count, len(manifests), out_dir)
    return count


# --- gap metrics ----------------------------------------------------------------------------------------

def image_set(which: str, classes: list[str], *, table_csv: str | None = None, split_csv: str | None = None,
              synth_indexes: list[str] | None = None) -> pd.DataFrame:
    """(path, class) of an image set: the dataset's evaluation images ('test'), a run's shots ('shots') or
    a synthetic set ('synth', every image its manifests list)."""
    if which == "test":
        return datasets.eval_rows(pd.read_csv(table_csv), classes)[0][["path", "class"]]
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
          batch_size: int = 64, num_workers: int = 0) -> None:
    """Embeddings of an image set in the `features` space (its extractor's model from `models`; one file per
    set, reused by every metric)."""
    location = checked_models(models)[EXTRACTORS[features].model_kind]
    extractor = feature_extractor(features, location, pick_device(device), batch_size, num_workers)
    emb = extractor.embed_images(list(rows["path"]))
    if getattr(extractor, "predicted", None) is not None:  # a classifier's features: keep its verdicts
        rows = rows.assign(predicted=extractor.predicted)
    embeddings.write_embeddings(out, rows, emb, features)


def embed_prompts(classes: list[str], out: str, *, models: dict, names: dict | None = None, prompt_prefix: str = "",
                  device: str = "auto") -> None:
    """CLIP text embeddings of the class prompts (rows: prompt, class), for the CLIP score."""
    prompts = [prompt_of(c, names, prompt_prefix) for c in classes]
    extractor = feature_extractor("clip", checked_models(models)["clip"], pick_device(device))
    embeddings.write_embeddings(out, pd.DataFrame({"path": prompts, "class": classes}),
                                extractor.embed_texts(prompts), "clip")


def gap_metrics(test: str, shots: str, synth: str, synth_clip: str | None, prompts: str | None, classes: list[str],
                out_json: str, out_csv: str, *, k: int = 5, tags: dict | None = None, pixel_size: int = 0) -> dict:
    """Every gap metric of one synthetic set, per class (CSV) and summarised (JSON). The CLIP score reads
    CLIP embeddings (`synth_clip`, `prompts`) whatever space the other metrics are computed in; without
    them it is left out (NaN). The regime metrics (nearest shot, copy rate, own shot of a one-head set)
    are computed in the features and, with `pixel_size`, on grey thumbnails of the images."""
    from ..metrics import gap

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
    pixels = {name: grey_thumbnails(list(frames[name]["path"]), pixel_size) for name in ("shots", "synth")} \
        if pixel_size else None
    per_class, summary = gap.dataset_gap(frames["test"], frames["shots"], frames["synth"], emb, text, classes, k,
                                         synth_clip=clip_emb, one_head=(tags or {}).get("synthetic") == HEAD_TAG,
                                         pixels=pixels)
    features = embeddings.features_of(synth)
    write_csv(out_csv, per_class.assign(features=features))
    result = {"summary": summary, "features": features, "tags": tags or {}}
    write_json(out_json, result)
    return result


def lora_spread(adapter_indexes: list[str], out_json: str, *, models: dict, tags: dict | None = None) -> dict:
    """How far a method's LoRA heads move the base and how much they differ (metrics.spread), over its adapters."""
    from ..metrics.spread import method_spread

    result = {**method_spread(class_files(adapter_indexes, "adapter"), models["diffusion"]), "tags": tags or {}}
    write_json(out_json, result)
    return result


def tsne(test: str, shots: str, synth: dict[str, str], cls: str, out_png: str, *, seed: int = 0,
         perplexity: float = 30.0, title: str = "") -> None:
    """t-SNE of one class: real shots, real test images and each labelled synthetic set."""
    from ..metrics.tsne import write_tsne_plot

    groups = {}
    for label, path in (("real test", test), ("real shots", shots), *synth.items()):
        rows, emb = embeddings.read_embeddings(path)
        groups[label] = emb[(rows["class"] == cls).to_numpy()]
    write_tsne_plot(out_png, groups, title or cls, seed, perplexity)


def train_judge(table_csv: str, classes: list[str], out: str, *, epochs: int, image_size: int,
                device: str = "auto") -> None:
    """The dataset's judge: the CNN on all its real training images, scored on its evaluation split (test
    accuracy in the JSON)."""
    from ..classify.judge import fit_judge

    table = pd.read_csv(table_csv)
    fit_judge(datasets.split_rows(table, "train", classes), datasets.eval_rows(table, classes)[0], classes, out,
              judge_settings(epochs, image_size), pick_device(device))


def pretrain_base(out_dir: str, settings: dict) -> dict:
    """The laptop-scale base (pretrain.*), checked by a source-domain judge."""
    from ..pretrain.base import pretrain_base as pretrain

    cfg = settings_dataclass(PretrainSettings, settings, "pretrain")
    return pretrain(out_dir, cfg, source_judge_settings(cfg))


# --- fetching (the login node's steps: the only ones that touch the network) --------------------------------

def fetch_models(specs: dict[str, str], models_dir: str) -> dict:
    """Stage every hub model of `specs` (kind -> spec) into models_dir and write its lock file."""
    from ..models.staging import fetch_models as stage_all

    return stage_all(dict(specs), models_dir)


def fetch_dataset(kind: str, root: str, out_json: str, *, name: str, urls: dict | None = None) -> None:
    """Fetch a dataset into its root; the stamp (written last) records every download with its checksums."""
    from ..datasets.fetch import fetch_dataset as fetch

    records = fetch(kind, root, urls)
    datasets.dataset_classes(kind, root)   # the reader finds its layout
    write_json(out_json, {"dataset": name, "kind": kind, "root": str(root), "downloads": records})
