# ChimeraPipe: ChimeraLoRA few-shot synthetic data, end to end. See README.md and config/README.md.
from snakemake.utils import min_version, validate

min_version("9.0")

# One pending scheduler wake-up at a time (Snakemake 9 starts a new endless chain of them per finished job).
from ChimeraPipe.pipeline.scheduling import coalesce_reevaluations

coalesce_reevaluations()


# The embedded default only when no --configfile is given: a user's config stands alone, so a paper
# run never inherits the demo dataset. `--config key=value` alone still overrides the default.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



validate(config, "workflow/schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/data.smk"
include: "rules/detect.smk"
include: "rules/crops.smk"
include: "rules/train.smk"
include: "rules/generate.smk"
include: "rules/classify.smk"
include: "rules/evaluate.smk"
include: "rules/metrics.smk"
include: "rules/report.smk"
include: "rules/preflight.smk"


# The login node's steps, the only ones that touch the network: `snakemake fetch_models` and
# `snakemake fetch_datasets` (see README, "Running on SLURM").
localrules:
    fetch_models,
    fetch_dataset,
    fetch_datasets,


rule all:
    input:
        f"{RESULTS}/report/report.html",
        f"{RESULTS}/report/accuracy.csv",
        box_quality_reports(),
