rule crops:
    input:
        split=f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
        boxes=f"{RUN}/boxes/{{backend}}/{{cls}}.csv",
        models=tiny_models("diffusion"),
    output:
        views=f"{RUN}/crops/{{backend}}/{{cls}}/views.safetensors",
        preview=f"{RUN}/crops/{{backend}}/{{cls}}/preview.png",
    params:
        models=model_locations,
        settings=CFG.section("crops"),
        device=config["device"],
    threads: 4
    resources:
        mem_mb=12000,
        runtime=30,
    log:
        f"{RESULTS}/logs/crops/{{dataset}}/shots{{shots}}_seed{{seed}}/{{backend}}/{{cls}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crops/{{dataset}}/shots{{shots}}_seed{{seed}}/{{backend}}/{{cls}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/crops.py"
