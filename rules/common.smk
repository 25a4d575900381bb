# Glue between config and paths; all logic lives in the ChimeraPipe package.
from pathlib import Path

from ChimeraPipe.config import WorkflowConfig

CFG = WorkflowConfig(config)
RESULTS = CFG.results
RUN = f"{RESULTS}/{{dataset}}/shots{{shots}}_seed{{seed}}"


wildcard_constraints:
    dataset=r"[^/]+",
    cls=r"[^/]+",
    method=r"[^/]+",
    gen=r"[^/]+",
    seed=r"\d+",
    shots=r"\d+",
    backend="grounded_sam|annotations|full",
    kind="diffusion|clip|grounding_dino|sam",


def tiny_models(*kinds):
    """Inputs for models named 'tiny' (built by a rule); real models are not workflow files."""
    return [f"{RESULTS}/models/tiny-{k}" for k in kinds if CFG.model_spec(k) == "tiny"]


def model_locations(wildcards, input):
    """kind -> where to load it: the tiny model's folder as this job sees its input, else the config's spec."""
    built = {Path(p).name.removeprefix("tiny-"): p for p in input.get("models", [])}
    return {kind: built.get(kind, spec) for kind, spec in CFG.model_specs().items()}


def dataset_input(wildcards):
    return [CFG.dataset_root(wildcards.dataset)] if CFG.is_demo(wildcards.dataset) else []


def detect_models(wildcards):
    return tiny_models("grounding_dino", "sam") if wildcards.backend == "grounded_sam" else []


def views_for_method(wildcards):
    backend = CFG.boxes_backend(wildcards.method, wildcards.dataset)
    return f"{RUN}/crops/{backend}/{{cls}}/views.safetensors".format(**dict(wildcards.items()))


def adapter_for(wildcards):
    if CFG.method(wildcards.method)["kind"] != "lora":
        return []
    return f"{RUN}/lora/{{method}}/{{cls}}/adapter.safetensors".format(**dict(wildcards.items()))


def manifests(wildcards):
    if wildcards.gen == "real":
        return []
    return expand(f"{RUN}/synth/{{method}}/{{gen}}/{{cls}}/manifest.csv", cls=CFG.classes(wildcards.dataset),
                  **{k: getattr(wildcards, k) for k in ("dataset", "shots", "seed", "method", "gen")})


def evaluations():
    return [f"{RESULTS}/{d}/shots{CFG.shots}_seed{s}/eval/{m}/{CFG.gen_tag(m)}.json"
            for d in CFG.datasets for s in CFG.seeds for m in CFG.methods]


def grid_manifests(wildcards):
    return {m: f"{RUN}/synth/{m}/{CFG.gen_tag(m)}/{{cls}}/manifest.csv".format(**dict(wildcards.items()))
            for m in CFG.methods if CFG.method(m)["kind"] != "real"}


def sample_grids():
    return [f"{RESULTS}/report/grids/{d}/shots{CFG.shots}_seed{s}/{c}.png"
            for d in CFG.datasets for s in CFG.seeds for c in CFG.classes(d)]


QUALITY_BACKENDS = ("grounded_sam", "annotations", "full")


def box_quality_inputs(wildcards):
    """Boxes and view caches of every backend, named '<kind>_<backend>' for the script."""
    files = {}
    for backend in QUALITY_BACKENDS:
        for kind, pattern in (("boxes", "boxes/{b}/{c}.csv"), ("views", "crops/{b}/{c}/views.safetensors")):
            files[f"{kind}_{backend}"] = [
                f"{RUN}/{pattern}".format(b=backend, c=c, **dict(wildcards.items()))
                for c in CFG.classes(wildcards.dataset)]
    return files


def box_quality_reports():
    return [f"{RESULTS}/report/box_quality/{d}_shots{CFG.shots}_seed{s}.md"
            for d in CFG.datasets if CFG.has_ground_truth_boxes(d) for s in CFG.seeds]
