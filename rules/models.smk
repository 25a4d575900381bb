rule build_tiny_model:
    output:
        directory(f"{RESULTS}/models/tiny-{{kind}}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    log:
        f"{RESULTS}/logs/build_tiny_model/{{kind}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_tiny_model/{{kind}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/build_tiny_model.py"


rule pretrain_base:
    output:
        directory(f"{RESULTS}/models/digits-base"),
    params:
        settings=CFG.pretrain_settings(),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        f"{RESULTS}/logs/pretrain_base/digits-base.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_base/digits-base.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/pretrain_base.py"


# The only step that touches the network (meant for the login node): stages every hub model the config names
# into models_dir and pins it in the lock file. The outputs are updated in place (`update`): a re-run keeps
# the folders whose revision did not change, and the lock it reads the pinned revisions from.
rule fetch_models:
    output:
        manifests=[update(CFG.staged_manifest(kind)) for kind in CFG.hub_models()],
        lock=update(f"{CFG.models_dir}/models.lock.json"),
    params:
        specs=CFG.hub_models(),
        models_dir=lambda wc, output: str(Path(output.lock).parent),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    log:
        f"{RESULTS}/logs/fetch_models/fetch_models.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_models/fetch_models.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/fetch_models.py"
