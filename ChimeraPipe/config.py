"""The validated workflow config, with the questions the rules ask of it answered in one place."""
from __future__ import annotations

import functools
import math
from pathlib import Path

from . import data, datasets, models, parts, presets
from .settings import (
    ClassifierConfig,
    CropSettings,
    DetectSettings,
    GenerationSettings,
    LongtailSettings,
    LoraTrainConfig,
    MetricsSettings,
    canonical,
)

FIXED_TAG = "fixed"   # the synthetic set of a method without a mixing dial (no alpha)


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def alpha_tag(alpha: float) -> str:
    """'alpha0.5': short where that names the value exactly, else the float's full repr."""
    short = f"{alpha:g}"
    return f"alpha{short}" if float(short) == alpha else f"alpha{alpha!r}"


def split_eval_tag(tag: str) -> tuple[str, int | None]:
    """A classifier's tag -> (its synthetic set's generation tag, the volume per class): 'alpha1_n500' ->
    ('alpha1', 500); 'real' -> ('real', None)."""
    gen, sep, volume = tag.rpartition("_n")
    if not sep or not volume.isdigit():
        return tag, None
    return gen, int(volume)


class ConfigError(ValueError):
    pass


class WorkflowConfig:
    def __init__(self, config: dict):
        self.raw = config
        self.results = str(config.get("results", "results")).rstrip("/")
        self.shots = int(config.get("shots", 4))
        self.seeds = list(config.get("seeds", [0]))
        self.methods = list(config.get("methods", ["real", "chimera"]))
        self.datasets = list(config["datasets"])
        self.classes_per_job = int(config.get("classes_per_job", 1))
        for kind in models.MODEL_KINDS:
            spec = self.model_spec(kind)
            if not models.is_built_by_workflow(kind, spec):
                try:
                    models.resolve_model(kind, spec, self.models_dir)
                except models.ModelSpecError as err:
                    raise ConfigError(str(err)) from None
        for name in self.methods + [m for d in self.datasets for m in self.dataset(d).get("methods", [])]:
            self.method(name)  # unknown methods and misspelt train settings fail now, naming the key
        for name in self.datasets:
            self.alphas(name), self.volumes(name), self.longtail(name)
        for section in ("generate", "classify", "crops", "detect", "metrics", "pretrain"):
            getattr(self, f"{section}_settings")()

    @property
    def models_dir(self) -> str:
        return f"{self.results}/models"

    def model_spec(self, kind: str) -> str:
        return self.raw.get("models", {}).get(kind, "tiny")

    def model_specs(self) -> dict[str, str]:
        return {kind: self.model_spec(kind) for kind in models.MODEL_KINDS}

    def dataset(self, name: str) -> dict:
        if name not in self.raw["datasets"]:
            raise ConfigError(f"datasets: no dataset named {name!r}")
        return self.raw["datasets"][name]

    def dataset_root(self, name: str) -> str:
        """The dataset's folder; a relative root lies under the config's `data_root` when one is set (the
        generated demo dataset's root is the workflow's own output and stays as written)."""
        root = Path(self.dataset(name)["root"]).expanduser()
        if not root.is_absolute() and self.raw.get("data_root") and not self.is_demo(name):
            root = Path(self.raw["data_root"]).expanduser() / root
        return str(root)

    def is_demo(self, name: str) -> bool:
        return bool(self.dataset(name).get("demo", False))

    def dataset_kind(self, name: str) -> str:
        return self.dataset(name).get("kind", "imagefolder")

    @functools.cache
    def _class_table(self, name: str) -> dict[str, str]:
        """Class id -> display name, in label order, from the dataset's metadata (no image decoded)."""
        if self.is_demo(name):  # made by the workflow: the classes are known before the files exist
            return {c: c for c in data.demo_classes(self.dataset_kind(name))}
        try:
            pairs = datasets.dataset_classes(self.dataset_kind(name), self.dataset_root(name),
                                             self.dataset(name).get("class_names", "baseline"))
        except datasets.DatasetLayoutError as err:
            raise ConfigError(f"datasets.{name}: {err}") from None
        return dict(pairs)

    @functools.cache
    def classes(self, name: str) -> list[str]:
        """Class ids (path-safe) of the dataset, or the subset listed in `classes` (ids or display names)."""
        table = self._class_table(name)
        wanted = self.dataset(name).get("classes")
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
        return self.dataset(name).get(key, getattr(datasets.reader(self.dataset_kind(name)), key))

    def prompt_prefix(self, name: str) -> str:
        """The dataset's domain word in 'a {prefix}photo of a {class}'."""
        return self._kind_default(name, "prompt_prefix")

    def detect_noun(self, name: str) -> str:
        return self._kind_default(name, "detect_noun")

    @functools.cache
    def parts(self, name: str) -> dict[str, list[str]]:
        """Part name -> classes: each per-class stage runs one job per part (see ChimeraPipe.parts)."""
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
        """The demo ships boxes; other datasets opt in with `box_quality: true` (needs the annotations file)."""
        default = self.is_demo(name) and self.dataset_kind(name) == "imagefolder"  # the shapes ship boxes.csv
        return bool(self.dataset(name).get("box_quality", default))

    @functools.cache
    def method(self, name: str) -> dict:
        """The method's settings (cached: rules ask for them once per job; treat the result as read-only)."""
        overrides = self.raw.get("method_overrides", {}).get(name)
        try:
            settings = presets.method_settings(name, overrides, self.raw.get("train", {}),
                                               int(self.raw.get("lora_rank", presets.DEFAULT_LORA_RANK)))
        except KeyError as err:
            raise ConfigError(f"methods: {err.args[0]}") from None
        if settings["kind"] == "lora":
            settings["train"] = self._canonical(LoraTrainConfig, settings["train"], f"train (method {name})")
        return settings

    def train_settings(self, method: str, run_seed: int) -> dict:
        """A LoRA method's train settings for one run: the LoRA's seed is the run's seed (plus `train.seed`),
        so seeds vary the LoRA init and batches as they vary the shots, generation and classifier."""
        settings = dict(self.method(method)["train"])
        settings["seed"] = settings["seed"] + int(run_seed)
        return settings

    @staticmethod
    def _canonical(cls, section: dict, name: str) -> dict:
        try:
            return canonical(cls, section, name)
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None

    @functools.cache
    def generate_settings(self) -> dict:
        """The generate section in full (generation size = crops.resolution): the generate rule's params."""
        section = {**self.section("generate"), "resolution": self.crops_settings()["resolution"]}
        return self._canonical(GenerationSettings, section, "generate")

    @functools.cache
    def classify_settings(self, dataset: str | None = None) -> dict:
        """The classify section in full, without the seed (each run's seed is its own). A long-tail
        dataset's classifier always trains on its real images too (the head has no synthetic ones)."""
        settings = self._canonical(ClassifierConfig, self.section("classify"), "classify")
        settings.pop("seed")
        if dataset is not None and self.longtail(dataset) is not None:
            settings["with_real"] = True
        return settings

    @functools.cache
    def crops_settings(self) -> dict:
        return self._canonical(CropSettings, self.section("crops"), "crops")

    @functools.cache
    def detect_settings(self) -> dict:
        return self._canonical(DetectSettings, self.section("detect"), "detect")

    @functools.cache
    def pretrain_settings(self) -> dict:
        from .settings import PretrainSettings

        return self._canonical(PretrainSettings, self.section("pretrain"), "pretrain")

    @functools.cache
    def metrics_settings(self) -> dict:
        settings = self._canonical(MetricsSettings, self.section("metrics"), "metrics")
        from .metrics.features import EXTRACTORS

        if settings["features"] not in EXTRACTORS:
            raise ConfigError(f"metrics.features: unknown feature extractor {settings['features']!r}; "
                              f"known: {sorted(EXTRACTORS)}")
        return settings

    def detect_backend(self, dataset: str) -> str:
        return self.dataset(dataset).get("detect_backend") or self.detect_settings()["backend"]

    def views_tag(self, method: str, dataset: str) -> str:
        """The view cache a LoRA method trains on: 'box-<detect backend>' for box-constrained crops
        (semantic boosting), else the crop mode ('random', 'center'), which needs no detector."""
        crop = self.method(method).get("crop", "box")
        return f"box-{self.detect_backend(dataset)}" if crop == "box" else crop

    # --- methods, sweeps and tags -------------------------------------------------------------------
    # A method's synthetic set is generated once per generation tag ('alpha0.5' for Dirichlet mixing,
    # FIXED_TAG otherwise) at the largest volume; each classifier trains on the first N images per class
    # of it (tag 'alpha0.5_n100'), so a smaller volume is a prefix of the larger one.

    def methods_for(self, dataset: str) -> list[str]:
        return list(self.dataset(dataset).get("methods", self.methods))

    def _setting(self, dataset: str, key: str, default):
        return self.dataset(dataset).get(key, self.raw.get(key, default))

    @functools.cache
    def alphas(self, dataset: str) -> list[float]:
        values = sorted({float(a) for a in _as_list(self._setting(dataset, "alpha", 1.0))})
        if not values or any(not a > 0 for a in values):
            raise ConfigError(f"alpha: Dirichlet concentrations must be positive numbers, got {values}")
        return values

    @functools.cache
    def volumes(self, dataset: str) -> list[int]:
        values = sorted({int(n) for n in _as_list(self._setting(dataset, "num_images", 500))})
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
        if settings.get("mixing") == "dirichlet":
            own = settings.get("alpha")   # a method's own alpha (list) in method_overrides
            alphas = sorted({float(a) for a in _as_list(own)}) if own is not None else self.alphas(dataset)
            return [alpha_tag(a) for a in alphas]
        return [FIXED_TAG]

    def eval_tags(self, method: str, dataset: str) -> list[str]:
        """Tags of a method's classifiers: 'real', or '<generation tag>_n<volume>' for each volume."""
        if self.method(method)["kind"] == "real":
            return ["real"]
        return [f"{gen}_n{n}" for gen in self.synth_tags(method, dataset) for n in self.volumes(dataset)]

    def alpha_of(self, method: str, gen: str) -> float | None:
        """alpha matters only to Dirichlet mixing, read back from the generation tag; other methods must not
        re-run when it changes."""
        if self.method(method).get("mixing") != "dirichlet":
            return None
        if not gen.startswith("alpha"):
            raise ConfigError(f"{method}: generation tag {gen!r} names no alpha")
        return float(gen.removeprefix("alpha"))

    # --- long-tail --------------------------------------------------------------------------------------

    @functools.cache
    def longtail(self, dataset: str) -> dict | None:
        section = self.dataset(dataset).get("longtail")
        if section is None:
            return None
        settings = self._canonical(LongtailSettings, section, f"datasets.{dataset}.longtail")
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
        wanted, classes = self.dataset(dataset).get("tsne_class"), self.synth_classes(dataset)
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

    def section(self, key: str) -> dict:
        return dict(self.raw.get(key, {}))
