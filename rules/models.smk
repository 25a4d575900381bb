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
