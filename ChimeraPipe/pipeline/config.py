"""The validated workflow config, with the questions the rules ask of it answered in one place.

The schema (workflow/schemas/config.schema.yaml) describes and validates the keys; the defaults are the
settings dataclasses' (pipeline/settings.py); this class applies them. Torch-free: the Snakefile builds it
while it plans.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

from .. import datasets
from ..classify.recipes import check_settings as check_classifier_settings
from ..core.hashing import settings_digest
from ..core.names import FIXED_TAG, HEAD_TAG, REAL_TAG, alpha_tag, eval_tag, tag_alpha
from ..datasets.demo import demo_classes
from ..metrics.features import EXTRACTORS
from ..models import specs
from ..models.staging import MANIFEST
from . import parts, presets
from .settings import (
    ClassifierConfig,
    CropSettings,
    DatasetSettings,
    DetectSettings,
    GenerationSettings,
    LongtailSettings,
    LoraTrainConfig,
    MetricsSettings,
    ModelSettings,
    PretrainSettings,
    RunSettings,
    canonical,
    settings_dataclass,
)


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


class ConfigError(ValueError):
    pass


def classify_workers(config: dict, threads: int) -> int:
    """The classifier job's DataLoader workers: `classify.num_workers` where the config sets it, else the job's
    threads but one (the main process steps the model). Not a rule param: the views and so the classifier do
    not depend on it (classify.data.SeededOrder), so changing it, or the threads, re-runs nothing."""
    workers = _settings(ClassifierConfig, dict(config.get("classify") or {}), "classify").num_workers
    from ..core.runtime import loader_workers  # here: the Snakefile imports this module and must stay torch-free

    return loader_workers(threads) if workers is None else workers


def _settings(cls, section: dict, name: str):
    try:
        return settings_dataclass(cls, section, name)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None


def _canonical(cls, section: dict, name: str) -> dict:
    try:
        return canonical(cls, section, name)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None


# The config's sections besides the top-level keys of RunSettings.
SECTIONS = ("models", "datasets", "method_overrides", "detect", "crops", "train", "generate", "classify",
            "pretrain", "metrics")


class WorkflowConfig:
    def __init__(self, config: dict):
        self.raw = config
        top = {k: v for k, v in config.items() if k not in SECTIONS}
        self.run = _settings(RunSettings, top, "config")
        self.results = self.run.results.rstrip("/")
        self.device = self.run.device
        self.shots = self.run.shots
        self.seeds = list(self.run.seeds)
        self.methods = list(self.run.methods)
        self.classes_per_job = self.run.classes_per_job
        if "datasets" not in config or not config["datasets"]:
            raise ConfigError("datasets: the config names no dataset")
        self.datasets = list(config["datasets"])
        self.models = _settings(ModelSettings, dict(config.get("models", {})), "models")
        for kind in specs.MODEL_KINDS:
            spec = self.model_spec(kind)
            if not specs.is_built_by_workflow(kind, spec):
                try:
                    specs.resolve_model(kind, spec, self.built_models_dir)
                except specs.ModelSpecError as err:
                    raise ConfigError(str(err)) from None
        for name in self.datasets:
            self.dataset(name)
        for name in self.methods + [m for d in self.datasets for m in (self.dataset(d).methods or [])]:
            self.method(name)  # unknown methods and misspelt train settings fail now, naming the key
        for name in self.datasets:
            self.alphas(name), self.volumes(name), self.longtail(name)
        for section in ("generate", "classify", "crops", "detect", "metrics", "pretrain"):
            getattr(self, f"{section}_settings")()

    @property
    def built_models_dir(self) -> str:
        """Where the models the workflow builds (tiny, digits-base) live: <results>/models."""
        return f"{self.results}/models"

    @property
    def models_dir(self) -> str:
        """Staged hub models and their lock file: `models_dir`, else <results>/models."""
        return str(Path(self.run.models_dir).expanduser()) if self.run.models_dir else self.built_models_dir

    def model_spec(self, kind: str) -> str:
        return getattr(self.models, kind)

    def model_specs(self) -> dict[str, str]:
        return {kind: self.model_spec(kind) for kind in specs.MODEL_KINDS}

    @functools.cache
    def hub_models(self) -> dict[str, str]:
        """kind -> spec of the models fetch_models stages from the hub (cached: every job's inputs ask; treat
        as read-only)."""
        return {kind: spec for kind, spec in self.model_specs().items() if specs.hub_spec(kind, spec)}

    def staged_folder(self, kind: str) -> str:
        return str(specs.staged_folder(specs.hub_spec(kind, self.model_spec(kind))[0], self.models_dir))

    def staged_manifest(self, kind: str) -> str:
        """The manifest fetch_models writes for a hub model: jobs that load it wait for it."""
        return f"{self.staged_folder(kind)}/{MANIFEST}"

    def model_location(self, kind: str) -> str:
        """Where jobs load a model from: a hub model's staged folder, a built model's folder, else the spec (a
        local folder or a SAM .pth file)."""
        spec = self.model_spec(kind)
        if kind in self.hub_models():
            return self.staged_folder(kind)
        if specs.is_built_by_workflow(kind, spec):
            return f"{self.built_models_dir}/{specs.built_model_name(kind, spec)}"
        return str(Path(spec).expanduser())

    # --- datasets ---------------------------------------------------------------------------------------

    @functools.cache
    def dataset(self, name: str) -> DatasetSettings:
        """The dataset's settings (defaults filled in; treat as read-only)."""
        if name not in self.raw.get("datasets", {}):
            raise ConfigError(f"datasets: no dataset named {name!r}")
        return _settings(DatasetSettings, self.raw["datasets"][name], f"datasets.{name}")

    def dataset_root(self, name: str) -> str:
        """The dataset's folder; a relative root lies under the config's `data_root` when one is set (the
        generated demo dataset's root is the workflow's own output and stays as written)."""
        root = Path(self.dataset(name).root).expanduser()
        if not root.is_absolute() and self.run.data_root and not self.is_demo(name):
            root = Path(self.run.data_root).expanduser() / root
        return str(root)

    def decoded_dir(self, name: str) -> str:
        """Where dataset_table decodes the images of a kind stored as arrays (CIFAR-10, scikit-learn's digits)."""
        return f"{self.results}/{name}/decoded"

    def is_demo(self, name: str) -> bool:
        return self.dataset(name).demo

    def dataset_kind(self, name: str) -> str:
        return self.dataset(name).kind

    @functools.cache
    def _class_table(self, name: str) -> dict[str, str]:
        """Class id -> display name, in label order, from the dataset's metadata (no image decoded)."""
        if self.is_demo(name):  # made by the workflow: the classes are known before the files exist
            return {c: c for c in demo_classes(self.dataset_kind(name))}
        try:
            pairs = datasets.dataset_classes(self.dataset_kind(name), self.dataset_root(name),
                                             self.dataset(name).class_names)
        except datasets.DatasetLayoutError as err:
            raise ConfigError(f"datasets.{name}: {err}") from None
        return dict(pairs)

    @functools.cache
    def classes(self, name: str) -> list[str]:
        """Class ids (path-safe) of the dataset, or the subset listed in `classes` (ids or display names)."""
        table = self._class_table(name)
        wanted = self.dataset(name).classes
        if not wanted:
            return list(table)
        by_name = {display: cid for cid, display in table.items()}
        unknown = [c for c in wanted if c not in table and c not in by_name]
        if unknown:
            raise ConfigError(f"datasets.{name}.classes: {unknown} are not classes of the dataset")
        return [c if c in table else by_name[c] for c in wanted]

    def class_names(self, name: str, classes: list[str] | None = None) -> dict[str, str]:
        """Display name (prompts, text head, report) of each class id, for `classes` or all."""
        table = self._class_table(name)
        return {c: table[c] for c in (classes if classes is not None else self.classes(name))}

    def _kind_default(self, name: str, key: str) -> str:
        """A dataset setting as set, else its kind's default (the anchors' value)."""
        value = getattr(self.dataset(name), key)
        return value if value is not None else getattr(datasets.reader(self.dataset_kind(name)), key)

    def prompt_prefix(self, name: str) -> str:
        """The dataset's domain word in 'a {prefix}photo of a {class}'."""
        return self._kind_default(name, "prompt_prefix")

    def detect_noun(self, name: str) -> str:
        return self._kind_default(name, "detect_noun")

    @functools.cache
    def parts(self, name: str) -> dict[str, list[str]]:
        """Part name -> classes: each per-class stage runs one job per part (see ChimeraPipe.pipeline.parts)."""
        return parts.partition(self.synth_classes(name), self.classes_per_job)

    def part_classes(self, name: str, part: str) -> list[str]:
        try:
            return self.parts(name)[part]
        except KeyError:
            raise ConfigError(f"dataset {name!r} has no class part {part!r} "
                              f"(parts: {', '.join(self.parts(name))})") from None

    def runtime(self, per_class: int, overhead: int = 10) -> int:
        """Minutes a per-part job asks for: per-class minutes x classes_per_job, plus loading models."""
        return per_class * self.classes_per_job + overhead

    def has_ground_truth_boxes(self, name: str) -> bool:
        """The demo shapes ship boxes; other datasets opt in with `box_quality: true` (needs the annotations file)."""
        setting = self.dataset(name).box_quality
        if setting is not None:
            return setting
        return self.is_demo(name) and self.dataset_kind(name) == "imagefolder"

    # --- methods ----------------------------------------------------------------------------------------

    @functools.cache
    def method(self, name: str) -> dict:
        """The method's settings (cached: rules ask for them once per job; treat the result as read-only):
        the preset, then the global `train:`, then the method's `method_overrides` entry."""
        overrides = self.raw.get("method_overrides", {}).get(name)
        try:
            settings = presets.method_settings(name, overrides, self.raw.get("train", {}), self.run.lora_rank)
        except KeyError as err:
            raise ConfigError(f"methods: {err.args[0]}") from None
        if settings["kind"] == "lora":
            settings["train"] = _canonical(LoraTrainConfig, settings["train"], f"train (method {name})")
        return settings

    def train_settings(self, method: str, run_seed: int) -> dict:
        """A LoRA method's train settings for one run: the LoRA's seed is the run's seed (plus `train.seed`),
        so seeds vary the LoRA init and batches as they vary the shots, generation and classifier."""
        settings = dict(self.method(method)["train"])
        settings["seed"] = settings["seed"] + int(run_seed)
        return settings

    # --- stage sections ---------------------------------------------------------------------------------

    def section(self, key: str) -> dict:
        return dict(self.raw.get(key, {}))

    @functools.cache
    def generate_settings(self) -> dict:
        """The generate section in full (generation size = crops.resolution): the generate rule's params."""
        section = {**self.section("generate"), "resolution": self.crops_settings()["resolution"]}
        return _canonical(GenerationSettings, section, "generate")

    @functools.cache
    def classify_settings(self, dataset: str | None = None) -> dict:
        """The classify section in full, without the seed (each run's seed is its own), checked against its
        backend now (not hours into a job). A long-tail dataset's classifier always trains on its real
        images too (the head has no synthetic ones)."""
        settings = _canonical(ClassifierConfig, self.section("classify"), "classify")
        try:
            check_classifier_settings(settings_dataclass(ClassifierConfig, settings, "classify"))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        settings.pop("seed")
        settings.pop("num_workers")   # not a param: the views do not depend on the workers (classify_workers)
        if dataset is not None and self.longtail(dataset) is not None:
            settings["with_real"] = True
        return settings

    @functools.cache
    def crops_settings(self) -> dict:
        return _canonical(CropSettings, self.section("crops"), "crops")

    @functools.cache
    def detect_settings(self) -> dict:
        return _canonical(DetectSettings, self.section("detect"), "detect")

    @functools.cache
    def pretrain_settings(self) -> dict:
        return _canonical(PretrainSettings, self.section("pretrain"), "pretrain")

    @functools.cache
    def metrics_settings(self) -> dict:
        settings = _canonical(MetricsSettings, self.section("metrics"), "metrics")
        if settings["features"] not in EXTRACTORS:
            raise ConfigError(f"metrics.features: unknown feature extractor {settings['features']!r}; "
                              f"known: {sorted(EXTRACTORS)}")
        return settings

    def detect_backend(self, dataset: str) -> str:
        return self.dataset(dataset).detect_backend or self.detect_settings()["backend"]

    def views_tag(self, method: str, dataset: str) -> str:
        """The view cache a LoRA method trains on: 'box-<detect backend>' for box-constrained crops
        (semantic boosting), else the crop mode ('random', 'center'), which needs no detector."""
        crop = presets.option(self.method(method), "crop")
        return f"box-{self.detect_backend(dataset)}" if crop == "box" else crop

    # --- the config as applied ----------------------------------------------------------------------------

    # Where things lie, not what they are: left out of the effective config (a moved folder is the same run).
    LOCATIONS = ("results", "data_root", "root")

    def effective(self) -> dict:
        """The config as this class applies it: every section in canonical form (defaults filled in, numbers
        typed, sweeps sorted), each dataset's settings, methods and tags, each method's settings; locations
        left out. Key order, 1 vs 1.0 and spelt-out defaults do not change it."""
        run = {k: v for k, v in _canonical(RunSettings, {k: v for k, v in self.raw.items() if k not in SECTIONS},
                                           "config").items() if k not in self.LOCATIONS}
        run.update(alpha=sorted({float(a) for a in _as_list(self.run.alpha)}),
                   num_images=sorted({int(n) for n in _as_list(self.run.num_images)}))
        methods = sorted({m for d in self.datasets for m in self.methods_for(d)})
        datasets_ = {}
        for name in self.datasets:
            settings = _canonical(DatasetSettings, self.raw["datasets"][name], f"datasets.{name}")
            settings = {k: v for k, v in settings.items() if k not in self.LOCATIONS}
            settings.update(methods=self.methods_for(name), alpha=self.alphas(name), num_images=self.volumes(name),
                            longtail=self.longtail(name),
                            tags={m: self.eval_tags(m, name) for m in self.methods_for(name)})
            datasets_[name] = settings
        return {"run": run, "models": self.model_specs(), "datasets": datasets_,
                "methods": {m: self._applied_method(m) for m in methods},
                "generate": self.generate_settings(), "classify": self.classify_settings(),
                "crops": self.crops_settings(), "detect": self.detect_settings(),
                "metrics": self.metrics_settings(), "pretrain": self.pretrain_settings()}

    def _applied_method(self, name: str) -> dict:
        """A method's settings with its numbers typed (train is canonical already; alpha and strength too)."""
        settings = dict(self.method(name))
        if settings.get("alpha") is not None:
            settings["alpha"] = sorted({float(a) for a in _as_list(settings["alpha"])})
        if settings.get("strength") is not None:
            settings["strength"] = float(settings["strength"])
        return settings

    def digest(self) -> str:
        """A digest of the effective config: equal for configs that run the same thing."""
        return settings_digest(self.effective())

    # --- sweeps and tags --------------------------------------------------------------------------------
    # A method's synthetic set is generated once per generation tag ('alpha0.5' for Dirichlet mixing,
    # FIXED_TAG otherwise) at the largest volume; each classifier trains on the first N images per class
    # of it (tag 'alpha0.5_n100'), so a smaller volume is a prefix of the larger one.

    def methods_for(self, dataset: str) -> list[str]:
        return list(self.dataset(dataset).methods or self.methods)

    def _sweep(self, dataset: str, key: str):
        value = getattr(self.dataset(dataset), key)
        return value if value is not None else getattr(self.run, key)

    @functools.cache
    def alphas(self, dataset: str) -> list[float]:
        values = sorted({float(a) for a in _as_list(self._sweep(dataset, "alpha"))})
        if not values or any(not a > 0 for a in values):
            raise ConfigError(f"alpha: Dirichlet concentrations must be positive numbers, got {values}")
        return values

    @functools.cache
    def volumes(self, dataset: str) -> list[int]:
        values = sorted({int(n) for n in _as_list(self._sweep(dataset, "num_images"))})
        if not values or values[0] < 1:
            raise ConfigError(f"num_images: synthetic images per class must be at least 1, got {values}")
        return values

    def num_images(self, dataset: str) -> int:
        """Images generated per class: the largest volume (smaller ones are its prefixes)."""
        return self.volumes(dataset)[-1]

    def synth_tags(self, method: str, dataset: str) -> list[str]:
        """Generation tags of a method's synthetic sets: one per alpha for Dirichlet mixing only."""
        settings = self.method(method)
        if settings["kind"] == "real":
            return []
        if presets.option(settings, "mixing") == "dirichlet":
            own = presets.option(settings, "alpha")   # a method's own alpha (list) in method_overrides
            alphas = sorted({float(a) for a in _as_list(own)}) if own is not None else self.alphas(dataset)
            return [alpha_tag(a) for a in alphas]
        return [FIXED_TAG]

    def regime_tags(self, method: str) -> list[str]:
        """Synthetic sets made only for the regime metrics: a multi-head LoRA method's images through one head
        alone (`metrics.head_images` per class), never a classifier's training set."""
        settings = self.method(method)
        if settings["kind"] != "lora" or settings["train"]["share"] == "both" or not self.metrics_settings()[
                "head_images"]:
            return []
        return [HEAD_TAG]

    def generation_method(self, method: str, gen: str) -> dict:
        """The method's settings as its generation tag makes them: one head per image for the one-head set."""
        settings = self.method(method)
        return {**settings, "mixing": "single"} if gen == HEAD_TAG else settings

    def generation_images(self, dataset: str, gen: str) -> int:
        """Images per class of a synthetic set: the largest volume, or metrics.head_images for a one-head set."""
        return self.metrics_settings()["head_images"] if gen == HEAD_TAG else self.num_images(dataset)

    def eval_tags(self, method: str, dataset: str) -> list[str]:
        """Tags of a method's classifiers: 'real', or '<generation tag>_n<volume>' for each volume."""
        if self.method(method)["kind"] == "real":
            return [REAL_TAG]
        return [eval_tag(gen, n) for gen in self.synth_tags(method, dataset) for n in self.volumes(dataset)]

    def alpha_of(self, method: str, gen: str) -> float | None:
        """alpha matters only to Dirichlet mixing, read back from the generation tag; other methods must not
        re-run when it changes."""
        if presets.option(self.method(method), "mixing") != "dirichlet" or gen == HEAD_TAG:
            return None
        alpha = tag_alpha(gen)
        if alpha is None:
            raise ConfigError(f"{method}: generation tag {gen!r} names no alpha")
        return alpha

    # --- long-tail --------------------------------------------------------------------------------------

    @functools.cache
    def longtail(self, dataset: str) -> dict | None:
        section = self.dataset(dataset).longtail
        if section is None:
            return None
        settings = _canonical(LongtailSettings, section, f"datasets.{dataset}.longtail")
        tail = settings["tail"]
        if isinstance(tail, float) and not 0 < tail <= 1:
            raise ConfigError(f"datasets.{dataset}.longtail.tail: a fraction in (0, 1], got {tail}")
        return settings

    @functools.cache
    def tail_classes(self, dataset: str) -> list[str]:
        """The tail: the listed classes (ids or display names), or the last `tail` share of the class list
        (the head keeps floor(n * (1 - tail)) classes)."""
        settings, classes = self.longtail(dataset), self.classes(dataset)
        if settings is None:
            return []
        tail = settings["tail"]
        if isinstance(tail, float):
            return classes[math.floor(len(classes) * (1 - tail)):]
        by_name = {display: cid for cid, display in self.class_names(dataset).items()}
        unknown = [c for c in tail if c not in classes and c not in by_name]
        if unknown:
            raise ConfigError(f"datasets.{dataset}.longtail.tail: {unknown} are not classes of the dataset")
        wanted = {by_name.get(c, c) for c in tail}
        return [c for c in classes if c in wanted]

    def class_groups(self, dataset: str) -> dict[str, list[str]]:
        """head/tail class lists of a long-tail dataset (reported apart); {} otherwise."""
        if self.longtail(dataset) is None:
            return {}
        tail = set(self.tail_classes(dataset))
        return {"head": [c for c in self.classes(dataset) if c not in tail],
                "tail": [c for c in self.classes(dataset) if c in tail]}

    def tsne_class(self, dataset: str) -> str:
        """The class of the dataset's t-SNE plot: its `tsne_class` (id or display name), else the first
        class that has synthetic images."""
        wanted, classes = self.dataset(dataset).tsne_class, self.synth_classes(dataset)
        if wanted is None:
            return classes[0]
        by_name = {display: cid for cid, display in self.class_names(dataset).items()}
        cls = by_name.get(wanted, wanted)
        if cls not in classes:
            raise ConfigError(f"datasets.{dataset}.tsne_class: {wanted!r} is not a class with synthetic images")
        return cls

    def synth_classes(self, dataset: str) -> list[str]:
        """Classes that get adapters and synthetic images: all, or the tail of a long-tail dataset."""
        return self.tail_classes(dataset) if self.longtail(dataset) is not None else self.classes(dataset)
