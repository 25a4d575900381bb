# Glue between config and paths; all logic lives in the ChimeraPipe package.
from pathlib import Path
from types import SimpleNamespace

from ChimeraPipe.core.names import REAL_TAG, set_label, split_eval_tag
from ChimeraPipe.metrics.features import EXTRACTORS
from ChimeraPipe.models.specs import BUILT_SPECS, MODEL_KINDS, built_model_name, is_built_by_workflow
from ChimeraPipe.pipeline.config import WorkflowConfig
from ChimeraPipe.pipeline.presets import option

EXTRACTOR_MODEL = {name: extractor.model_kind for name, extractor in EXTRACTORS.items()}

CFG = WorkflowConfig(config)
RESULTS = CFG.results
DEVICE = CFG.device
RUN = f"{RESULTS}/{{dataset}}/shots{{shots}}_seed{{seed}}"


wildcard_constraints:
    dataset=r"[^/]+",
    part=r"p\d+",
    method=r"[^/]+",
    gen=r"[^/]+",
    seed=r"\d+",
    shots=r"\d+",
    backend="grounded_sam|annotations|full",
    views="box-(grounded_sam|annotations|full)|center|random",
    kind="diffusion|clip|grounding_dino|sam",
    features=r"[A-Za-z0-9_\-]+",


# Input functions build paths with plain f-strings from the wildcards: at paper scale they run for every
# job while Snakemake plans the DAG, so they stay cheap.
def run_dir(wc):
    return f"{RESULTS}/{wc.dataset}/shots{wc.shots}_seed{wc.seed}"


def built_models(*kinds):
    """Models the workflow builds ('tiny' ones, or a pretrained base such as 'digits-base')."""
    return [f"{CFG.built_models_dir}/{built_model_name(k, CFG.model_spec(k))}"
            for k in kinds if is_built_by_workflow(k, CFG.model_spec(k))]


def model_inputs(*kinds):
    """A job's model inputs: the built models' folders and the hub models' staging manifests (so the job waits
    for fetch_models); local folders and .pth files are not workflow files."""
    return built_models(*kinds) + [CFG.staged_manifest(k) for k in kinds if k in CFG.hub_models()]


def model_locations(wildcards, input):
    """kind -> where to load it: a built model's folder as this job sees its input, a hub model's staged
    folder, else the config's spec."""
    kinds = {**{f"tiny-{k}": k for k in MODEL_KINDS}, **BUILT_SPECS}
    built = {kinds[Path(p).name]: p for p in input.get("models", []) if Path(p).name in kinds}
    hub = CFG.hub_models()
    return {kind: built.get(kind, CFG.staged_folder(kind) if kind in hub else spec)
            for kind, spec in CFG.model_specs().items()}


def dataset_input(wc):
    return [CFG.dataset_root(wc.dataset)] if CFG.is_demo(wc.dataset) else []


def part_classes(wc):
    return CFG.part_classes(wc.dataset, wc.part)


def detect_models(wc):
    return model_inputs("grounding_dino", "sam") if wc.backend == "grounded_sam" else []


def views_index_for_method(wc):
    return f"{run_dir(wc)}/crops/{CFG.views_tag(wc.method, wc.dataset)}/parts/{wc.part}.json"


def crop_mode(wc):
    """'box' for box-constrained view caches ('box-<backend>'), else the crop mode itself."""
    return "box" if wc.views.startswith("box-") else wc.views


def crop_boxes(wc):
    """Boxes a view cache is cropped around; the baselines' crops only need the image sizes (full boxes)."""
    backend = wc.views.removeprefix("box-") if crop_mode(wc) == "box" else "full"
    return f"{run_dir(wc)}/boxes/{backend}/{wc.part}.csv"


def classifier_models():
    """The CLIP the classifier fine-tunes, when the workflow builds it (the cnn backend needs none)."""
    return model_inputs("clip") if CFG.classify_settings()["backend"] == "clip" else []


def generate_models(wc):
    """The diffusion model, and CLIP for methods that filter their images with it."""
    return model_inputs("diffusion", *(["clip"] if option(CFG.method(wc.method), "clip_filter") else []))


def adapter_index_for(wc):
    if CFG.method(wc.method)["kind"] != "lora":
        return []
    return f"{run_dir(wc)}/lora/{wc.method}/parts/{wc.part}.json"


def synth_indexes(wc, method=None, gen=None):
    """The synthetic images' part indexes of one method's set; `gen` is a generation tag or a classifier's
    tag (whose volume is a prefix of the set)."""
    method, gen = method or wc.method, split_eval_tag(gen or wc.gen)[0]
    if gen == REAL_TAG:
        return []
    return [f"{run_dir(wc)}/synth/{method}/{gen}/parts/{part}.json" for part in CFG.parts(wc.dataset)]


def synthetic_methods(dataset):
    return [m for m in CFG.methods_for(dataset) if CFG.method(m)["kind"] != "real"]


def synthetic_sets(dataset, regime=True):
    """(method, generation tag) of every synthetic set of a dataset (with the one-head sets of the regime
    metrics unless `regime` is false)."""
    return [(m, gen) for m in synthetic_methods(dataset)
            for gen in CFG.synth_tags(m, dataset) + (CFG.regime_tags(m) if regime else [])]


def set_labels(wc, regime=True):
    return [set_label(m, gen) for m, gen in synthetic_sets(wc.dataset, regime)]


def grid_inputs(wc):
    """The split and each synthetic set's indexes as set0, set1, ... (labels: set_labels)."""
    return {"split": f"{RESULTS}/{wc.dataset}/split/shots{wc.shots}_seed{wc.seed}.csv",
            **{f"set{i}": synth_indexes(wc, m, gen) for i, (m, gen) in enumerate(synthetic_sets(wc.dataset))}}


def real_training_images(wc):
    """The classifier's real images: the run's shots, or a long-tail dataset's head + tail images."""
    split = f"{RESULTS}/{wc.dataset}/split/shots{wc.shots}_seed{wc.seed}"
    return f"{split}_longtail.csv" if CFG.longtail(wc.dataset) else f"{split}.csv"


def runs():
    """(dataset, seed) of every run the config asks for."""
    return [(d, s) for d in CFG.datasets for s in CFG.seeds]


def evaluations():
    return [f"{RESULTS}/{d}/shots{CFG.shots}_seed{s}/eval/{m}/{tag}.json"
            for d, s in runs() for m in CFG.methods_for(d) for tag in CFG.eval_tags(m, d)]


def classifier_descriptions(wc):
    """Every classifier's description (classifier.json): the report reads where each one was trained."""
    return [f"{RESULTS}/{d}/shots{CFG.shots}_seed{s}/classifier/{m}/{tag}/classifier.json"
            for d, s in runs() for m in CFG.methods_for(d) for tag in CFG.eval_tags(m, d)]


def synth_part_indexes(wc):
    """Every generation job's part index: the report reads where each one ran. A function (it reads the class
    lists), so that targets without a report, such as preflight, plan without the datasets."""
    return [index for d, s in runs() for m, gen in synthetic_sets(d)
            for index in synth_indexes(SimpleNamespace(dataset=d, shots=CFG.shots, seed=s), m, gen)]


def run_provenance(wc):
    """What the report cites about the config (all canonical: unchanged when nothing changed)."""
    return {"models": CFG.model_specs(), "models_dir": CFG.models_dir, "config_digest": CFG.digest(),
            "seeds": CFG.seeds, "pretrain": CFG.pretrain_settings()}


def sample_grid_dirs():
    return [f"{RESULTS}/report/grids/{d}/shots{CFG.shots}_seed{s}" for d, s in runs() if synthetic_methods(d)]


FEATURES = CFG.metrics_settings()["features"]


def embedding_models(wc):
    """The model a feature extractor loads: the dataset's judge, or a model the workflow builds."""
    if EXTRACTOR_MODEL[wc.features] == "judge":
        return [f"{RESULTS}/{wc.dataset}/judge/judge.safetensors"]
    return model_inputs(EXTRACTOR_MODEL[wc.features])


def embedding_model_locations(wildcards, input):
    """kind -> location, with the judge's folder under 'judge' when the features are the judge's."""
    if EXTRACTOR_MODEL[wildcards.features] == "judge":
        return {"judge": str(Path(input.models[0]).parent)}
    return model_locations(wildcards, input)


def synth_embedding(wc, method, gen, features=FEATURES):
    return f"{run_dir(wc)}/embeddings/{features}/synth/{method}/{gen}.safetensors"


def gap_inputs(wc):
    files = {"test": f"{RESULTS}/{wc.dataset}/embeddings/{FEATURES}/test.safetensors",
             "shots": f"{run_dir(wc)}/embeddings/{FEATURES}/shots.safetensors",
             "synth": synth_embedding(wc, wc.method, wc.gen)}
    if CFG.metrics_settings()["clip_score"]:
        files.update(synth_clip=synth_embedding(wc, wc.method, wc.gen, "clip"),
                     prompts=f"{RESULTS}/{wc.dataset}/embeddings/clip/prompts.safetensors")
    return files


def tsne_inputs(wc):
    return {"test": f"{RESULTS}/{wc.dataset}/embeddings/{FEATURES}/test.safetensors",
            "shots": f"{run_dir(wc)}/embeddings/{FEATURES}/shots.safetensors",
            **{f"set{i}": synth_embedding(wc, m, gen)
               for i, (m, gen) in enumerate(synthetic_sets(wc.dataset, regime=False))}}


def gap_results():
    return [f"{RESULTS}/{d}/shots{CFG.shots}_seed{s}/metrics/{m}/{gen}.json"
            for d, s in runs() for m, gen in synthetic_sets(d)]


def spread_results():
    """How far each LoRA method's heads move the base and how much they differ, per run."""
    return [f"{RESULTS}/{d}/shots{CFG.shots}_seed{s}/lora/{m}/spread.json"
            for d, s in runs() for m in CFG.methods_for(d) if CFG.method(m)["kind"] == "lora"]


def pretrained_bases():
    """Base models the workflow pretrains (not the tiny random ones): the report shows their check."""
    return built_models("diffusion") if CFG.model_spec("diffusion") in BUILT_SPECS else []


def judge_reports():
    """The judges whose features the gap metrics use: the report gives their accuracy on real test images."""
    if EXTRACTOR_MODEL[FEATURES] != "judge":
        return []
    return [f"{RESULTS}/{d}/judge/judge.json" for d in CFG.datasets if synthetic_methods(d)]


def tsne_plots():
    return [f"{RESULTS}/report/tsne/{d}_shots{CFG.shots}_seed{s}.png" for d, s in runs() if synthetic_methods(d)]


QUALITY_BACKENDS = ("grounded_sam", "annotations", "full")


def box_quality_inputs(wc):
    """Box CSVs and view-cache indexes of every backend and part, named '<kind>_<backend>' for the script."""
    run, parts = run_dir(wc), list(CFG.parts(wc.dataset))
    files = {}
    for backend in QUALITY_BACKENDS:
        files[f"boxes_{backend}"] = [f"{run}/boxes/{backend}/{p}.csv" for p in parts]
        files[f"views_{backend}"] = [f"{run}/crops/box-{backend}/parts/{p}.json" for p in parts]
    return files


def box_quality_reports():
    return [f"{RESULTS}/report/box_quality/{d}_shots{CFG.shots}_seed{s}.md"
            for d in CFG.datasets if CFG.has_ground_truth_boxes(d) for s in CFG.seeds]
