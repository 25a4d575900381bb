# `snakemake preflight`: check the datasets, models, device and free space and estimate the run's work before
# submitting anything (ChimeraPipe/pipeline/preflight.py). No output file: it runs every time it is asked for,
# prints its report (also in the log) and fails on any blocker.


localrules:
    preflight,


rule preflight:
    params:
        gpu_rules=lambda wc: sorted(r.name for r in workflow.rules if "gpu" in r.resources),
        gpu_suite=str(Path(workflow.main_snakefile).parent / "bench" / "results" / "gpu_suite.json"),
        sources=[str(f) for f in workflow.overwrite_configfiles],
    log:
        f"{RESULTS}/logs/preflight.log",
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/preflight.py"
