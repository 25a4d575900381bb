"""The preflight: what a run needs, checked before any job is submitted, and what the run will cost.

`run_preflight(config)` checks every dataset (all of them, each with what is missing and the layout its
reader expects), every model (random-weight `tiny` ones flagged; hub models staged and verified against
their manifest and the lock), the device, and the free space of the results filesystem; it estimates the
work from the config alone (synthetic images, LoRA trainings and optimizer steps, classifier trainings and
epochs, jobs per rule, files and bytes, GPU-hours where a GPU suite measured rates). `format_report` prints
it; `exit_code` is 1 when anything blocks the run. Nothing is written and no image is decoded. Rule
`preflight` (rules/preflight.smk, `make preflight`) runs it.
"""
from __future__ import annotations

import inspect
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import datasets
from ..core.names import REAL_TAG, split_eval_tag
from ..metrics.features import EXTRACTORS
from ..models import specs, staged
from .config import ConfigError, WorkflowConfig
from .presets import option

BLOCKER, WARNING, NOTE, OK = "blocker", "warning", "note", "ok"
LEVELS = (BLOCKER, WARNING, NOTE, OK)
MARK = {BLOCKER: "[BLOCKER]", WARNING: "[WARNING]", NOTE: "[note]", OK: "[ok]"}

# The box backends whose boxes and crops box_quality compares (rules/common.smk QUALITY_BACKENDS).
QUALITY_BACKENDS = ("grounded_sam", "annotations", "full")

# GPU memory a GPU job needs with Stable Diffusion 2.1 at 512 px: an assumption, not a measurement. The largest
# is LoRA training on a batch of K = 4 views (fp32 weights, bf16/fp16 autocast, AdamW on the LoRA only):
# diffusers' LoRA guide trains SD at 512 px on 11-16 GiB cards (T4, RTX 2080 Ti) at batch 1, and a batch of 4
# adds activations, so 10-20 GiB; we take the upper end. Generation (batch 16) and the ViT-B/16 classifier
# (batch 256) are assumed to need less. Activations grow with the pixel count at other resolutions.
GPU_MEMORY_GIB = 20.0
GPU_MEMORY_RESOLUTION = 512

# Rates measured by the GPU suite (bench/gpu_suite.py), relative to the repository root. Shape:
#   {"gpu": "<torch.cuda.get_device_name()>", "gpu_memory_gib": 79.1,
#    "stages": {"train":    {"per_s": <LoRA optimizer steps / s>, "resolution": 512},
#               "generate": {"per_s": <images / s>, "resolution": 512, "steps": 50},
#               "classify": {"per_s": <classifier training images / s>}}}
# A stage's rate is used only at its resolution; generation scales with the denoising steps.
GPU_SUITE = "bench/results/gpu_suite.json"
RATE_STAGES = ("train", "generate", "classify")


@dataclass
class Finding:
    topic: str                      # datasets, models, device, storage, rates
    subject: str
    level: str                      # blocker, warning, note, ok
    message: str
    details: list[str] = field(default_factory=list)


@dataclass
class Work:
    """The run's work, from the config alone, over the datasets whose classes could be read (`counted`)."""
    counted: list[str] = field(default_factory=list)
    not_counted: list[str] = field(default_factory=list)
    images: Counter = field(default_factory=Counter)       # method -> synthetic images kept
    made: Counter = field(default_factory=Counter)         # method -> images made (CLIP filter: at most this)
    adapters: Counter = field(default_factory=Counter)     # method -> LoRA trainings (one adapter per class)
    steps: Counter = field(default_factory=Counter)        # method -> LoRA optimizer steps
    classifiers: Counter = field(default_factory=Counter)  # method -> classifier trainings
    epochs: Counter = field(default_factory=Counter)       # method -> classifier epochs
    seen: Counter = field(default_factory=Counter)         # method -> classifier training images x epochs
    jobs: Counter = field(default_factory=Counter)         # rule -> jobs
    files: Counter = field(default_factory=Counter)        # what -> files written
    bytes: Counter = field(default_factory=Counter)        # what -> bytes written (what is estimated)


@dataclass
class Preflight:
    config: WorkflowConfig
    findings: list[Finding]
    work: Work
    gpu_hours: dict[str, float] | None
    sources: list[str] = field(default_factory=list)        # the config files, for the heading

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.level == BLOCKER]


# --- datasets ---------------------------------------------------------------------------------------------

def _decodes(kind: str) -> bool:
    """Kinds stored as arrays (CIFAR-10, scikit-learn's digits): dataset_table decodes their images once."""
    return "decoded_dir" in inspect.signature(datasets.reader(kind).table).parameters


def _top(path: str, root: Path) -> str:
    """The first folder of a path under root (e.g. 'images/'), or its parent folder outside root."""
    path = Path(path)
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    return f"{rel.parts[0]}/" if len(rel.parts) > 1 else f"{path.parent}/"


def _missing_by_folder(missing: list[str], listed: list[str], root: Path, show: int = 8) -> list[str]:
    """Missing images per top folder under root: how many of its listed images are missing, and which of
    their folders do not exist (a download not extracted shows as one line)."""
    listed_in = Counter(_top(p, root) for p in listed)
    missing_in = Counter(_top(p, root) for p in missing)
    lines = []
    for top, count in missing_in.most_common():
        folders = {str(Path(p).parent) for p in missing if _top(p, root) == top}
        absent = sum(not Path(f).is_dir() for f in folders)
        where = root / top if not Path(top).is_absolute() else Path(top)
        if not where.is_dir():
            state = " (the folder does not exist)"
        elif absent and len(folders) > 1:
            state = (f"; none of the {len(folders):,} folders they lie in exists" if absent == len(folders)
                     else f"; {absent:,} of the {len(folders):,} folders they lie in do not exist")
        else:
            state = ""
        lines.append(f"{top}: {count:,} of {listed_in[top]:,} listed images missing{state}")
    return lines[:show] + ([f"... and {len(lines) - show} more folders"] if len(lines) > show else [])


def check_dataset(cfg: WorkflowConfig, name: str) -> list[Finding]:
    """Is the dataset there and complete: its layout (the reader's), every split entry's image file, enough
    training images per class for the shots, the files its settings name. Every problem, not the first."""
    kind, root = cfg.dataset_kind(name), Path(cfg.dataset_root(name))
    settings = cfg.dataset(name)
    if cfg.is_demo(name):
        return [Finding("datasets", name, OK, f"made by the workflow (rule demo_data) at {root}: "
                                              f"{len(cfg.classes(name))} classes")]
    try:
        classes = cfg.classes(name)
    except ConfigError as err:
        return [Finding("datasets", name, BLOCKER, str(err).removeprefix(f"datasets.{name}: "))]
    findings = []
    if settings.shots_file and not Path(settings.shots_file).is_file():
        findings.append(Finding("datasets", name, BLOCKER, f"shots_file {settings.shots_file} does not exist"))
    needs_boxes = cfg.detect_backend(name) == "annotations" or cfg.has_ground_truth_boxes(name)
    boxes_file = root / cfg.detect_settings()["annotations_file"]
    if needs_boxes and not boxes_file.is_file():
        findings.append(Finding("datasets", name, BLOCKER, f"{boxes_file} is missing (box annotations: "
                                                           "detect.backend annotations or box_quality need it)"))
    decoded = Path(cfg.decoded_dir(name))
    if _decodes(kind) and not (decoded / "DONE").is_file():
        findings.append(Finding("datasets", name, OK, f"{kind} at {root}: {len(classes)} classes; the images are "
                                                      f"decoded by the dataset_table job (metadata checked only)"))
        return findings
    try:
        table = datasets.dataset_table(kind, root, settings.class_names, decoded_dir=decoded, on_missing="skip")
    except datasets.DatasetLayoutError as err:
        return findings + [Finding("datasets", name, BLOCKER, str(err))]
    missing = table.attrs.get("skipped", [])
    skip = settings.on_missing == "skip"
    if missing:
        listed = list(table["path"]) + missing
        what = "left out (on_missing: skip)" if skip else "missing"
        findings.append(Finding("datasets", name, WARNING if skip else BLOCKER,
                                f"{len(missing):,} of {len(listed):,} images of the split are {what} under {root}; "
                                f"expected layout: {datasets.reader(kind).layout.expected}",
                                _missing_by_folder(missing, listed, root) + [f"e.g. {p}" for p in missing[:2]]))
    train = table[(table["split"] == "train") & table["class"].isin(classes)].groupby("class").size()
    short = [f"{c} ({int(train.get(c, 0))})" for c in classes if train.get(c, 0) < cfg.shots]
    if short and not settings.shots_file and (skip or not missing):  # else the missing images say it
        findings.append(Finding("datasets", name, BLOCKER, f"{len(short)} classes have fewer training images than "
                                                           f"shots = {cfg.shots}",
                                [", ".join(short[:10]) + (" ..." if len(short) > 10 else "")]))
    if not any(f.level == BLOCKER for f in findings):
        splits = table.groupby("split").size()
        counts = " / ".join(f"{s} {int(splits.get(s, 0)):,}" for s in ("train", "val", "test"))
        findings.append(Finding("datasets", name, OK, f"{kind} at {root}: {len(classes)} classes, "
                                                      f"{len(table):,} images ({counts})"))
    return findings


# --- models -----------------------------------------------------------------------------------------------

def check_models(cfg: WorkflowConfig, verify: bool = True) -> list[Finding]:
    """Each model kind the run loads: tiny (random weights: a note on demo data, a loud warning on real
    data), built by the workflow, a local path, or a hub model staged and verified (sizes and SHA-256)."""
    all_demo = all(cfg.is_demo(d) for d in cfg.datasets)
    findings = []
    for kind, spec in cfg.model_specs().items():
        if spec == "tiny":
            if all_demo:
                findings.append(Finding("models", kind, NOTE, "tiny: random weights, built by the workflow "
                                                             "(fine for the demo data; its images are noise)"))
            else:
                findings.append(Finding("models", kind, WARNING,
                                        f"!!! models.{kind} is tiny: RANDOM WEIGHTS on real datasets - images will "
                                        f"be noise and the numbers mean nothing; name the real model in models.{kind}"
                                        f" (e.g. {specs.REAL_DEFAULTS[kind]}) !!!"))
        elif specs.is_built_by_workflow(kind, spec):
            findings.append(Finding("models", kind, OK, f"{spec}: pretrained by the workflow (rule pretrain_base)"))
        elif Path(spec).expanduser().exists():
            findings.append(Finding("models", kind, OK, f"local {'folder' if Path(spec).is_dir() else 'file'} "
                                                        f"{spec}"))
        else:
            model = staged.staged_model(kind, spec, cfg.models_dir)
            if verify:
                staged.verify(model)
            if model.ok:
                findings.append(Finding("models", kind, OK, f"{spec}: staged at {model.folder} (revision "
                                                            f"{model.revision}, {len(model.files)} files, "
                                                            f"{_size(model.size)}), sizes and SHA-256 verified"))
            else:
                findings.append(Finding("models", kind, BLOCKER, f"{spec}: {model.problems[0]}", model.problems[1:]))
    return findings


# --- the work ---------------------------------------------------------------------------------------------

def _synthetic_sets(cfg: WorkflowConfig, dataset: str) -> list[tuple[str, str]]:
    """Every synthetic set of the dataset: the classifiers' and the regime metrics' one-head sets."""
    return [(m, gen) for m in cfg.methods_for(dataset) if cfg.method(m)["kind"] != "real"
            for gen in cfg.synth_tags(m, dataset) + cfg.regime_tags(m)]


def _classifier_images(cfg: WorkflowConfig, dataset: str, tag: str) -> int:
    """Images one classifier trains on: N per class of the synthetic set, plus (or only) the real ones; a
    long-tail dataset's head classes count head_max each (at most that many real images)."""
    gen, volume = split_eval_tag(tag)
    longtail = cfg.longtail(dataset)
    if longtail is not None:
        groups = cfg.class_groups(dataset)
        real = len(groups["head"]) * longtail["head_max"] + len(groups["tail"]) * cfg.shots
    else:
        real = len(cfg.classes(dataset)) * cfg.shots
    if gen == REAL_TAG:
        return real
    synthetic = len(cfg.synth_classes(dataset)) * volume
    return synthetic + (real if cfg.classify_settings(dataset)["with_real"] else 0)


def estimate_work(cfg: WorkflowConfig) -> Work:
    """Work, jobs, files and bytes of the whole run (nothing already done is subtracted)."""
    from ..boxes.views import view_cache_bytes
    from ..diffusion.clip_filter import max_candidates
    from ..diffusion.generate import class_set_footprint

    work = Work()
    generation, classify = cfg.generate_settings(), cfg.classify_settings()
    features = cfg.metrics_settings()["features"]
    clip_score = cfg.metrics_settings()["clip_score"]
    needs = set()   # model kinds some job loads
    demo_roots = set()
    for d in cfg.datasets:
        try:
            parts = len(cfg.parts(d))
        except ConfigError:
            work.not_counted.append(d)
            continue
        work.counted.append(d)
        if cfg.is_demo(d):
            demo_roots.add(cfg.dataset_root(d))
        sets, lora = _synthetic_sets(cfg, d), [m for m in cfg.methods_for(d) if cfg.method(m)["kind"] == "lora"]
        views = {cfg.views_tag(m, d) for m in lora}
        if cfg.has_ground_truth_boxes(d):
            views |= {f"box-{b}" for b in QUALITY_BACKENDS}
        backends = {v.removeprefix("box-") if v.startswith("box-") else "full" for v in views}
        evals = [(m, tag) for m in cfg.methods_for(d) for tag in cfg.eval_tags(m, d)]
        synth_classes = len(cfg.synth_classes(d))
        seeds = len(cfg.seeds)
        work.jobs.update({"dataset_table": 1, "split": seeds, "detect": seeds * len(backends) * parts,
                          "crops": seeds * len(views) * parts, "train": seeds * len(lora) * parts,
                          "generate": seeds * len(sets) * parts, "classify": seeds * len(evals),
                          "evaluate": seeds * len(evals), "lora_spread": seeds * len(lora)})
        if cfg.longtail(d) is not None:
            work.jobs["longtail_train"] += seeds
        if cfg.has_ground_truth_boxes(d):
            work.jobs["box_quality"] += seeds
        if sets:
            work.jobs.update({"embed_test": 1, "embed_shots": seeds, "gap_metrics": seeds * len(sets),
                              "embed_synth": seeds * len(sets) * (1 + (clip_score and features != "clip")),
                              "tsne": seeds, "sample_grid": seeds})
            if clip_score:
                work.jobs["embed_prompts"] += 1
                needs.add("clip")
            if EXTRACTORS[features].model_kind == "judge":
                work.jobs["train_judge"] += 1
            else:
                needs.add(EXTRACTORS[features].model_kind)
        if views or sets:
            needs.add("diffusion")
        if "grounded_sam" in backends:
            needs.update({"grounding_dino", "sam"})
        if evals and classify["backend"] == "clip":
            needs.add("clip")
        for m, gen in sets:
            filtered, count = option(cfg.method(m), "clip_filter"), cfg.generation_images(d, gen)
            needs.update({"clip"} if filtered else set())
            made = max_candidates(count, generation["clip_filter_max_factor"]) if filtered else count
            files, size = class_set_footprint(count, generation["resolution"], made if filtered else None,
                                              generation["format"], generation["shard_size"])
            work.images[m] += seeds * synth_classes * count
            work.made[m] += seeds * synth_classes * made
            work.files["synthetic images"] += seeds * synth_classes * files
            work.bytes["synthetic images"] += seeds * synth_classes * size
        for m in lora:
            steps = sum(cfg.train_settings(m, s)["steps"] for s in cfg.seeds)
            work.adapters[m] += seeds * synth_classes
            work.steps[m] += steps * synth_classes
            work.files["LoRA adapters (size not estimated)"] += seeds * synth_classes * 3
        for tag in views:
            per_image = 1 if tag == "center" else cfg.crops_settings()["views_per_image"]
            size = view_cache_bytes(cfg.shots, per_image, cfg.crops_settings()["resolution"],
                                    cfg.device.startswith("cuda"))
            work.files["view caches"] += seeds * synth_classes * 3
            work.bytes["view caches"] += seeds * synth_classes * size
        for m, tag in evals:
            work.classifiers[m] += seeds
            work.epochs[m] += seeds * classify["epochs"]
            work.seen[m] += seeds * classify["epochs"] * _classifier_images(cfg, d, tag)
            work.files["classifiers and evaluations (size not estimated)"] += seeds * 4
    work.jobs["demo_data"] = len(demo_roots)
    for kind in sorted(needs):
        spec = cfg.model_spec(kind)
        if spec == "tiny":
            work.jobs["build_tiny_model"] += 1
        elif specs.BUILT_SPECS.get(spec) == kind:
            work.jobs["pretrain_base"] += 1
    if cfg.hub_models():
        work.jobs["fetch_models"] += 1
    work.jobs.update({"report": 1, "all": 1})
    work.jobs = Counter({rule: n for rule, n in work.jobs.items() if n})
    work.files["logs, benchmarks, part indexes"] = 3 * sum(work.jobs.values())
    return work


# --- rates ------------------------------------------------------------------------------------------------

def read_gpu_suite(path: str | Path) -> dict | None:
    """The GPU suite's measured rates (shape: GPU_SUITE's comment), None when there is no such file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        suite = json.loads(path.read_text())
        rates = {stage: float(suite["stages"][stage]["per_s"]) for stage in suite["stages"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a GPU suite result ({err!r}); expected {{'gpu': name, 'stages': "
                         f"{{stage: {{'per_s': rate, ...}}}}}}") from None
    if not isinstance(suite.get("gpu"), str) or any(r <= 0 for r in rates.values()):
        raise ValueError(f"{path}: needs the GPU's name ('gpu') and positive rates ('per_s')")
    return suite


def gpu_hours(cfg: WorkflowConfig, work: Work, suite: dict) -> dict[str, float]:
    """Expected GPU-hours per stage from the suite's rates; a stage measured at another resolution, or not
    measured, is left out."""
    resolution = cfg.generate_settings()["resolution"]
    hours = {}
    for stage in RATE_STAGES:
        rate = suite["stages"].get(stage)
        if rate is None or (stage != "classify" and rate.get("resolution", resolution) != resolution):
            continue
        if stage == "train":
            amount = sum(work.steps.values())
        elif stage == "generate":
            amount = sum(work.made.values()) * cfg.generate_settings()["steps"] / rate.get("steps", 50)
        else:
            amount = sum(work.seen.values())
        hours[stage] = amount / float(rate["per_s"]) / 3600
    return hours


# --- storage and device -----------------------------------------------------------------------------------

def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""


def free_space(path: str | Path) -> tuple[Path, int]:
    """(the nearest existing folder, its filesystem's free bytes): the results folder may not exist yet."""
    path = Path(path).expanduser().absolute()
    while not path.exists():
        path = path.parent
    return path, shutil.disk_usage(path).free


def check_storage(cfg: WorkflowConfig, work: Work) -> Finding:
    where, free = free_space(cfg.results)
    total, files = sum(work.bytes.values()), sum(work.files.values())
    details = [f"{what}: {work.files[what]:,} files" + (f", {_size(work.bytes[what])}" if what in work.bytes else "")
               for what in work.files]
    message = f"the run writes ~{_size(total)} in {files:,} files; {_size(free)} free on the filesystem of {where}"
    level = BLOCKER if total > free else WARNING if total > 0.8 * free else OK
    if level != OK:
        message += " (not enough)" if level == BLOCKER else " (more than 80 % of it)"
    return Finding("storage", cfg.results, level, message, details)


def _gpu() -> dict | None:
    """The visible GPU's name and memory, None without one (or without torch)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gib": props.total_memory / 2**30, "count": torch.cuda.device_count()}


def check_device(cfg: WorkflowConfig, work: Work, gpu_rules: list[str] | None = None,
                 gpu: dict | None = None) -> list[Finding]:
    """The GPU visible here against what the GPU rules (resources gpu=1) need (GPU_MEMORY_GIB, assumed)."""
    real = not specs.is_built_by_workflow("diffusion", cfg.model_spec("diffusion"))
    resolution = cfg.generate_settings()["resolution"]
    need = GPU_MEMORY_GIB * (resolution / GPU_MEMORY_RESOLUTION) ** 2 if real else 1.0
    basis = (f"assumed for {cfg.model_spec('diffusion')} at {resolution} px: LoRA training at batch 4 needs "
             f"~10-20 GiB at 512 px (diffusers' LoRA guide; the upper end taken)" if real
             else "the workflow's own small models")
    jobs = sum(work.jobs.get(rule, 0) for rule in gpu_rules or [])
    rules = (f"{jobs:,} jobs of the GPU rules ({', '.join(gpu_rules)}) each request gpu=1" if gpu_rules
             else "the GPU rules request gpu=1")
    findings = []
    if gpu is None:
        level = WARNING if real and cfg.device == "cpu" else NOTE
        text = (f"no GPU visible on this machine (a login node?): {rules}; give them GPUs with >= {need:.0f} GiB "
                f"({basis})")
        if level == WARNING:
            text = f"device: cpu with {cfg.model_spec('diffusion')}: every GPU rule runs on the CPU; " + text
        findings.append(Finding("device", "gpu", level, text))
    else:
        enough = gpu["memory_gib"] >= need
        findings.append(Finding("device", "gpu", OK if enough else WARNING,
                                f"{gpu['name']} ({gpu['memory_gib']:.1f} GiB, {gpu['count']} visible): {rules}; "
                                f"they need >= {need:.0f} GiB ({basis})" + ("" if enough else ": NOT ENOUGH here")))
    return findings


def check_rates(cfg: WorkflowConfig, work: Work, suite_path: str | Path | None, gpu: dict | None
                ) -> tuple[Finding, dict[str, float] | None]:
    """Expected GPU-hours where the GPU suite measured this GPU (or, with none visible, the suite's GPU)."""
    try:
        suite = read_gpu_suite(suite_path) if suite_path else None
    except ValueError as err:
        return Finding("rates", "gpu-hours", WARNING, str(err)), None
    if suite is None:
        return Finding("rates", "gpu-hours", NOTE, f"no rate measured for this GPU (no GPU suite result at "
                                                   f"{suite_path}: bench/gpu_suite.py writes it)"), None
    if gpu is not None and gpu["name"] != suite["gpu"]:
        return Finding("rates", "gpu-hours", NOTE, f"no rate measured for this GPU ({gpu['name']}): {suite_path} "
                                                   f"measured {suite['gpu']}"), None
    hours = gpu_hours(cfg, work, suite)
    if not hours:
        return Finding("rates", "gpu-hours", NOTE, f"no rate measured at {cfg.generate_settings()['resolution']} "
                                                   f"px in {suite_path}"), None
    on = suite["gpu"] if gpu is not None else f"{suite['gpu']} (measured there; no GPU visible here)"
    parts = ", ".join(f"{stage} {h:,.1f}" for stage, h in hours.items())
    return Finding("rates", "gpu-hours", OK, f"~{sum(hours.values()):,.1f} GPU-hours on {on}: {parts}; stages "
                                             f"without a rate are not counted"), hours


# --- all of it --------------------------------------------------------------------------------------------

def run_preflight(config: dict | WorkflowConfig, *, gpu_rules: list[str] | None = None,
                  gpu_suite: str | Path | None = GPU_SUITE, verify_models: bool = True,
                  sources: list[str] = (), gpu: dict | None | bool = True) -> Preflight:
    """Every check and the estimate. `gpu`: True asks torch for the visible GPU; a dict or None stands in."""
    cfg = config if isinstance(config, WorkflowConfig) else WorkflowConfig(config)
    gpu = _gpu() if gpu is True else gpu
    findings = [f for name in cfg.datasets for f in check_dataset(cfg, name)]
    findings += check_models(cfg, verify_models)
    work = estimate_work(cfg)
    if work.not_counted:
        findings.append(Finding("storage", "estimate", NOTE, f"the estimates leave out {', '.join(work.not_counted)}"
                                                             " (classes unreadable)"))
    findings.append(check_storage(cfg, work))
    findings += check_device(cfg, work, gpu_rules, gpu)
    rates, hours = check_rates(cfg, work, gpu_suite, gpu)
    findings.append(rates)
    return Preflight(cfg, findings, work, hours, list(sources))


def exit_code(result: Preflight) -> int:
    return 1 if result.blockers else 0


def _by_method(counter: Counter, unit: str = "") -> str:
    return f"{sum(counter.values()):,}{unit}" + (" (" + ", ".join(f"{m} {n:,}" for m, n in counter.items()) + ")"
                                                  if len(counter) > 1 else "")


def format_report(result: Preflight) -> str:
    """The preflight as a readable text report (blockers first in the summary line)."""
    cfg, work = result.config, result.work
    sources = f" of {', '.join(result.sources)}" if result.sources else ""
    lines = [f"ChimeraPipe preflight{sources} (results: {cfg.results})", ""]
    loud = [f for f in result.findings if f.level == WARNING and f.message.startswith("!!!")]
    for finding in loud:
        lines += ["!" * 100, f"  {finding.message}", "!" * 100, ""]
    for topic, title in (("datasets", "Datasets"), ("models", "Models"), ("device", "Device"),
                         ("storage", "Storage"), ("rates", "GPU-hours")):
        items = [f for f in result.findings if f.topic == topic]
        if topic == "storage":
            lines += ["Work (the whole run, from the config)", *_work_lines(work), ""]
        lines.append(title)
        for f in sorted(items, key=lambda f: LEVELS.index(f.level)) if topic != "datasets" else items:
            lines.append(f"  {MARK[f.level]:10s} {f.subject}: {f.message}")
            lines += [f"             {d}" for d in f.details]
        lines.append("")
    counts = Counter(f.level for f in result.findings)
    verdict = "fix the blockers before submitting" if counts[BLOCKER] else "ready to submit"
    lines.append(f"Result: {counts[BLOCKER]} blocker(s), {counts[WARNING]} warning(s), {counts[NOTE]} note(s): "
                 f"{verdict}.")
    return "\n".join(lines) + "\n"


def _work_lines(work: Work) -> list[str]:
    jobs = ", ".join(f"{rule} {n:,}" for rule, n in sorted(work.jobs.items()))
    lines = [f"  datasets counted: {', '.join(work.counted) or 'none'}"
             + (f"; not counted (classes unreadable): {', '.join(work.not_counted)}" if work.not_counted else ""),
             f"  synthetic images kept: {_by_method(work.images)}"]
    if work.made != work.images:
        lines.append(f"  synthetic images made, at most (the CLIP filter makes candidates): {_by_method(work.made)}")
    lines += [f"  LoRA trainings (adapters): {_by_method(work.adapters)}; optimizer steps {_by_method(work.steps)}",
              f"  classifier trainings: {_by_method(work.classifiers)}; epochs {sum(work.epochs.values()):,}; "
              f"training images seen {sum(work.seen.values()):,}",
              f"  jobs: {sum(work.jobs.values()):,} ({jobs})"]
    return lines

