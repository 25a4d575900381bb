"""Every stage's settings: keys and defaults, stated once, in these dataclasses.

Torch-free, so the Snakefile can check a config's sections while it plans. The schema
(workflow/schemas/config.schema.yaml) lists the same keys with their types and leaves the defaults
to these classes (a test keeps the two in step); `canonical` turns a config section into the full,
ordered, typed mapping that rules use as `params`, so key order, `1` vs `1.0`, or leaving out a key
equal to its default never re-runs a job. The stages below this package take these objects as they are
(they read fields, never defaults of their own).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from ..datasets import DEFAULT_NAMING, DEFAULT_ON_MISSING
from .presets import DEFAULT_LORA_RANK


@dataclass
class RunSettings:
    """The config's top-level keys (the sections - models, datasets, method_overrides, detect, crops, train,
    generate, classify, pretrain, metrics - have their own classes or readers)."""
    results: str = "results"              # every output goes under it
    device: str = "auto"                  # auto (cuda when available), cpu, cuda[:N]
    data_root: str | None = None          # relative dataset roots lie under it
    models_dir: str | None = None         # staged hub models and their lock; None: <results>/models (may be shared)
    shots: int = 4                        # K real images per class = LoRA heads
    seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = ("real", "chimera")
    alpha: float | list[float] = 1.0      # Dirichlet concentration, or a sweep
    num_images: int | list[int] = 500     # synthetic images per class, or a volume sweep
    lora_rank: int = DEFAULT_LORA_RANK    # ChimeraLoRA's ablation family
    classes_per_job: int = 1              # classes of one detect / crops / train / generate job (a part)


@dataclass
class ModelSettings:
    """`models:`, one spec per kind: `tiny` (random weights, built offline), a model the workflow pretrains
    (`digits-base`), a local folder, or a hub id (ChimeraPipe.models.specs)."""
    diffusion: str = "tiny"
    clip: str = "tiny"
    grounding_dino: str = "tiny"
    sam: str = "tiny"


@dataclass
class DatasetSettings:
    """One entry of `datasets:`; None means "the default from elsewhere", said per key."""
    root: str                                   # the dataset's folder (relative: under data_root)
    kind: str = "imagefolder"                   # layout and official split (ChimeraPipe.datasets.KINDS)
    demo: bool = False                          # made by the workflow (rule demo_data)
    classes: list[str] | None = None            # a subset (ids or display names); None: all
    class_names: str = DEFAULT_NAMING           # baseline (the baselines' spelling) or coop
    shots_file: str | None = None               # CSV (class, path) of the shots instead of the seeded draw
    on_missing: str = DEFAULT_ON_MISSING        # a split entry without its image: error or skip
    prompt_prefix: str | None = None            # None: the kind's (the anchors')
    detect_noun: str | None = None              # None: the kind's
    detect_backend: str | None = None           # None: detect.backend
    box_quality: bool | None = None             # None: on for the demo shapes (they ship boxes.csv)
    methods: list[str] | None = None            # None: the run's methods
    alpha: float | list[float] | None = None    # None: the run's alpha
    num_images: int | list[int] | None = None   # None: the run's num_images
    tsne_class: str | None = None               # None: the first class with synthetic images
    longtail: dict | None = None                # LongtailSettings' keys; None: a few-shot dataset
    urls: dict[str, str] | None = None          # fetch: archive file name -> URL replacing the official one


@dataclass
class LoraTrainConfig:
    share: str = "A"                     # A (ChimeraLoRA), B (ablation), none (LoFT), both (DataDream)
    rank: int = 16
    lora_alpha: float | None = None      # None = rank (scale 1), as both anchors
    steps: int = 600
    batch_per_image: int = 1
    lr_a: float = 1e-4
    lr_b: float = 1e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 10
    grad_clip: float = 1.0
    targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    text_encoder_lora: bool = False      # DataDream trains q/k/v/out_proj of the text encoder too
    checkpoint_every: int = 100
    seed: int = 0
    precision: str = "auto"              # auto: bf16 autocast on GPU with bf16, fp16 + loss scaling otherwise
    gradient_checkpointing: bool = False
    classes_per_step: int | None = None  # classes of a job trained together in one model; None: all of the job's


@dataclass
class ClassifierConfig:
    backend: str = "clip"             # clip (LoRA on a pretrained CLIP, the paper's) or cnn (SmallCNN from scratch)
    image_size: int = 32              # cnn: input side in pixels
    rank: int = 16
    lora_alpha: float = 32.0
    dropout: float = 0.1
    epochs: int = 60
    warmup_epochs: int = 6
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-4
    min_lr: float = 1e-8
    with_real: bool = False           # synthetic only, as the paper and LoFT; true: DataDream's real+synthetic mix
    real_weight: float | None = 0.8   # loss weight of the real images when mixed; None: one mean over all
    augment: str = "anchor"           # clip: anchor (the anchors' strong list) or simple; cnn: affine or none
    crop_first: bool = True           # anchor: crop before RandAugment, JPEG decoded at reduced scale (>= 4x faster)
    mix_prob: float = 0.2             # share of batches given CutMix or MixUp (LoFT's IS_MIX_AUG)
    lora_init: str = "kaiming"        # loralib's kaiming-uniform A (a = sqrt(5)); or gaussian
    select: str = "last"              # last epoch, or the epoch best on the dataset's val split (never test)
    num_workers: int | None = None    # DataLoader workers; None: the classify job's threads - 1, else 0 (results same)
    seed: int = 0
    precision: str = "auto"           # autocast on GPU: bf16, or fp16 with loss scaling


@dataclass
class GenerationSettings:
    """Everything of the generate section; `generate.pixel_fingerprint` says which of it changes pixels."""
    guidance_scale: float = 2.0
    steps: int = 50
    batch_size: int = 8
    precision: str = "auto"
    resolution: int = 512
    clip_filter_max_factor: float = 4.0   # CLIP-filtered methods make at most this many candidates per image
    format: str = "jpeg"                  # how the images are stored: jpeg (default, BENCHMARKS.md), png, webp
    quality: int = 95                     # jpeg / webp quality
    shard_size: int = 256                 # images per tar shard: a few files per class set, not one per image


@dataclass
class DetectSettings:
    backend: str = "grounded_sam"         # grounded_sam, annotations (the dataset's boxes file), full (whole image)
    box_threshold: float = 0.3
    text_threshold: float = 0.25
    max_side: int = 1333                  # Grounding-DINO's input cap (its processor's longest edge)
    annotations_file: str = "boxes.csv"


@dataclass
class CropSettings:
    views_per_image: int = 64
    resolution: int = 512
    scale_range: tuple[float, float] = (0.8, 1.0)   # crop side / the image's shorter side (grown to the box)
    translate: float = 1.0
    flip_prob: float = 0.0   # no mirrored training views: the paper's jitter is scaling/translation, and
                             # DataDream and LoFT never flip theirs (an option, e.g. for symmetric objects)


@dataclass
class MetricsSettings:
    """The gap metrics between synthetic and real images (docs/metrics.md)."""
    features: str = "clip"                # the image embedding the metrics are computed in
    k: int = 5                            # neighbours of precision/recall/density/coverage (Naeem et al. 2020)
    tsne_perplexity: float = 30.0         # capped below a third of the points
    batch_size: int = 64
    judge_epochs: int = 30                # features: judge - the CNN trained on the dataset's real train images
    clip_score: bool = True               # needs a real CLIP (off where the CLIP is random, e.g. config/mini.yaml)
    head_images: int = 0                  # per class, images made through one LoRA head alone (the regime probe)
    pixel_size: int = 0                   # side of the grey thumbnails of pixel-space regime metrics; 0: off


@dataclass
class LongtailSettings:
    """A dataset's long-tail split: head classes keep up to `head_max` real training images, tail classes
    keep the run's K shots and get the methods' synthetic images."""
    tail: float | list[str] = 0.5         # a fraction (the last share of the class list) or the tail classes
    head_max: int = 500


@dataclass
class PretrainSettings:
    """The laptop-scale base (rendered digits -> a tiny SD-layout pipeline): sizes and schedule."""
    image_size: int = 16                  # the source images and the base's generation size
    pool: int = 12000                     # rendered training images (drawn once, seeded)
    vae_steps: int = 800
    unet_steps: int = 3000
    batch_size: int = 64
    vae_lr: float = 1e-3
    lr: float = 1e-3                      # UNet and text encoder, warm-up then cosine
    unet_channels: tuple[int, int] = (64, 128)
    text_width: int = 64
    max_tokens: int = 16                  # the prompts are 7 tokens: a 16-token context instead of CLIP's 77
    empty_prompt_prob: float = 0.1        # classifier-free guidance needs the unconditional branch
    check_images: int = 6000              # rendered digits the base's check judge trains on
    check_samples: int = 20               # samples per digit the check judges
    check_guidance: float = 5.0
    seed: int = 0


def _coerce(value, hint):
    """1 -> 1.0 for float settings, lists -> tuples for tuple settings; anything else as given."""
    args = typing.get_args(hint)
    if value is None:
        return None
    if typing.get_origin(hint) is tuple and isinstance(value, list | tuple):
        return tuple(float(v) if args[0] is float and isinstance(v, int) else v for v in value)
    if hint is float or (float in args and int not in args):
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return value


def settings_dataclass(cls, settings: dict, section: str):
    """Build a settings dataclass, naming the config section of any unknown key."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{section}: unknown setting(s) {unknown}; known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k]) for k, v in settings.items()})


def canonical(cls, settings: dict, section: str) -> dict:
    """The full settings as a plain dict in field order, defaults filled in, numbers typed by field."""
    values = dataclasses.asdict(settings_dataclass(cls, settings, section))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def judge_settings(epochs: int, image_size: int) -> ClassifierConfig:
    """The dataset judge (metrics.features: judge): the CNN backend on every real training image, with small
    affine augmentation, `metrics.judge_epochs` epochs."""
    return ClassifierConfig(backend="cnn", image_size=image_size, epochs=epochs, warmup_epochs=1,
                            batch_size=64, lr=1e-3, weight_decay=1e-4, augment="affine", mix_prob=0.0, seed=0)


def source_judge_settings(pretrain: PretrainSettings) -> ClassifierConfig:
    """The pretrained base's check judge: the CNN backend on rendered digits (already tensors, no
    augmentation), 4 epochs at a constant 2e-3."""
    return ClassifierConfig(backend="cnn", image_size=pretrain.image_size, epochs=4, warmup_epochs=0,
                            batch_size=128, lr=2e-3, min_lr=2e-3, weight_decay=1e-4, augment="none",
                            mix_prob=0.0, seed=pretrain.seed)
