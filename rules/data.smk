rule demo_data:
    output:
        directory(f"{RESULTS}/data/{{dataset}}"),
    params:
        seed=0,
        kind=lambda wc: CFG.dataset_kind(wc.dataset),
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


rule dataset_table:
    input:
        dataset_input,
    output:
        table=f"{RESULTS}/{{dataset}}/table.csv",
    params:
        kind=lambda wc: CFG.dataset_kind(wc.dataset),
        root=lambda wc: CFG.dataset_root(wc.dataset),
        naming=lambda wc: CFG.dataset(wc.dataset).class_names,
        on_missing=lambda wc: CFG.dataset(wc.dataset).on_missing,
        names=lambda wc: CFG.class_names(wc.dataset),  # a changed spelling re-runs the table and what reads it
        decoded=lambda wc: CFG.decoded_dir(wc.dataset),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        f"{RESULTS}/logs/dataset_table/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dataset_table/{{dataset}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/dataset_table.py"


rule longtail_train:
    input:
        table=f"{RESULTS}/{{dataset}}/table.csv",
        split=f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
    output:
        f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}_longtail.csv",
    params:
        groups=lambda wc: CFG.class_groups(wc.dataset),
        head_max=lambda wc: CFG.longtail(wc.dataset)["head_max"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    log:
        f"{RESULTS}/logs/longtail_train/{{dataset}}/shots{{shots}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/longtail_train/{{dataset}}/shots{{shots}}_seed{{seed}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/longtail_train.py"


rule split:
    input:
        table=f"{RESULTS}/{{dataset}}/table.csv",
    output:
        f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
    params:
        root=lambda wc: CFG.dataset_root(wc.dataset),
        classes=lambda wc: CFG.classes(wc.dataset),
        shots_file=lambda wc: CFG.dataset(wc.dataset).shots_file,
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


# Fetching the datasets is its own step (`snakemake fetch_datasets`, on the login node): the workflow plans from
# the datasets' metadata, so they must be in place before it runs. Demo datasets are made by the workflow.
rule fetch_dataset:
    output:
        f"{RESULTS}/fetched/{{dataset}}.json",
    params:
        kind=lambda wc: CFG.dataset_kind(wc.dataset),
        root=lambda wc: CFG.dataset_root(wc.dataset),
        urls=lambda wc: CFG.dataset(wc.dataset).urls,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=600,
    log:
        f"{RESULTS}/logs/fetch_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_dataset/{{dataset}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/fetch_dataset.py"


rule fetch_datasets:
    input:
        [f"{RESULTS}/fetched/{d}.json" for d in CFG.datasets if not CFG.is_demo(d)],
