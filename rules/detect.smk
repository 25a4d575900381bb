rule detect:
    input:
        split=f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
        models=detect_models,
    output:
        boxes=f"{RUN}/boxes/{{backend}}/{{cls}}.csv",
        preview=f"{RUN}/boxes/{{backend}}/{{cls}}.png",
    params:
        root=lambda wc: CFG.dataset_root(wc.dataset),
        models=model_locations,
        settings=lambda wc: {**CFG.section("detect"), "noun": CFG.dataset(wc.dataset).get("detect_noun")},
        device=config["device"],
    threads: 4
    resources:
        mem_mb=12000,
        runtime=30,
    log:
        f"{RESULTS}/logs/detect/{{dataset}}/shots{{shots}}_seed{{seed}}/{{backend}}/{{cls}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/detect/{{dataset}}/shots{{shots}}_seed{{seed}}/{{backend}}/{{cls}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/detect.py"
