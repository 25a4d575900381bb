rule demo_data:
    output:
        directory(f"{RESULTS}/data/{{dataset}}"),
    params:
        seed=0,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        f"{RESULTS}/logs/demo_data/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_data/{{dataset}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/demo_data.py"


rule split:
    input:
        dataset_input,
    output:
        f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
    params:
        root=lambda wc: CFG.dataset_root(wc.dataset),
        classes=lambda wc: CFG.classes(wc.dataset),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    log:
        f"{RESULTS}/logs/split/{{dataset}}/shots{{shots}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/split/{{dataset}}/shots{{shots}}_seed{{seed}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/split.py"
