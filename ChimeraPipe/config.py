"""The validated workflow config, with the questions the rules ask of it answered in one place."""
from __future__ import annotations

import functools
from pathlib import Path

from . import data, datasets, models, parts, presets
from .settings import ClassifierConfig, GenerationSettings, LoraTrainConfig, canonical


class ConfigError(ValueError):
    pass


class WorkflowConfig:
    def __init__(self, config: dict):
        self.raw = config
        self.results = str(config.get("results", "results")).rstrip("/")
        self.shots = int(config.get("shots", 4))
        self.seeds = list(config.get("seeds", [0]))
        self.methods = list(config.get("methods", ["real", "chimera"]))
        self.alpha = float(config.get("alpha", 1.0))
        self.num_images = int(config.get("num_images", 500))
        self.datasets = list(config["datasets"])
        self.classes_per_job = int(config.get("classes_per_job", 1))
        for kind in models.MODEL_KINDS:
            spec = self.model_spec(kind)
            if spec != "tiny":
                try:
                    models.resolve_model(kind, spec, self.models_dir)
                except models.ModelSpecError as err:
                    raise ConfigError(str(err)) from None
        for name in self.methods:
            self.method(name)  # unknown methods and misspelt train settings fail now, naming the key
        self.generate_settings()
        self.classify_settings()

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
        if self.is_demo(name):
            return {c: c for c in data.SHAPES_CLASSES}
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
        return parts.partition(self.classes(name), self.classes_per_job)

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
        return bool(self.dataset(name).get("box_quality", self.is_demo(name)))

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

    @staticmethod
    def _canonical(cls, section: dict, name: str) -> dict:
        try:
            return canonical(cls, section, name)
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None

    @functools.cache
    def generate_settings(self) -> dict:
        """The generate section in full (generation size = crops.resolution): the generate rule's params."""
        section = {**self.section("generate"), "resolution": self.section("crops").get("resolution", 512)}
        return self._canonical(GenerationSettings, section, "generate")

    @functools.cache
    def classify_settings(self) -> dict:
        """The classify section in full, without the seed (each run's seed is its own)."""
        settings = self._canonical(ClassifierConfig, self.section("classify"), "classify")
        settings.pop("seed")
        return settings

    def detect_backend(self, dataset: str) -> str:
        return self.dataset(dataset).get("detect_backend") or self.raw.get("detect", {}).get("backend", "grounded_sam")

    def views_tag(self, method: str, dataset: str) -> str:
        """The view cache a LoRA method trains on: 'box-<detect backend>' for box-constrained crops
        (semantic boosting), else the crop mode ('random', 'center'), which needs no detector."""
        crop = self.method(method).get("crop", "box")
        return f"box-{self.detect_backend(dataset)}" if crop == "box" else crop

    def alpha_for(self, method: str) -> float | None:
        """alpha matters only to Dirichlet mixing; other methods must not re-run when it changes."""
        return self.alpha if self.method(method).get("mixing") == "dirichlet" else None

    def gen_tag(self, method: str) -> str:
        return presets.generation_tag(self.method(method), self.alpha, self.num_images)

    def section(self, key: str) -> dict:
        return dict(self.raw.get(key, {}))
