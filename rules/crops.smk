rule crops:
    input:
        split=f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
        boxes=crop_boxes,
        models=model_inputs("diffusion"),
    output:
        index=f"{RUN}/crops/{{views}}/parts/{{part}}.json",
    params:
        classes=part_classes,
        models=model_locations,
        settings=lambda wc: {**CFG.crops_settings(), "mode": crop_mode(wc)},
        device=DEVICE,
    threads: 4
    resources:
        mem_mb=12000,
        runtime=CFG.runtime(10),
    log:
        f"{RESULTS}/logs/crops/{{dataset}}/shots{{shots}}_seed{{seed}}/{{views}}/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crops/{{dataset}}/shots{{shots}}_seed{{seed}}/{{views}}/{{part}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/crops.py"
