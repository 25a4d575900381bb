rule detect:
    input:
        split=f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
        models=detect_models,
    output:
        boxes=f"{RUN}/boxes/{{backend}}/{{part}}.csv",
        preview=f"{RUN}/boxes/{{backend}}/{{part}}.png",
    params:
        classes=part_classes,
        root=lambda wc: CFG.dataset_root(wc.dataset),
        models=model_locations,
        settings=lambda wc: {**CFG.detect_settings(), "noun": CFG.detect_noun(wc.dataset)},
        names=lambda wc: CFG.class_names(wc.dataset, CFG.part_classes(wc.dataset, wc.part)),
        device=DEVICE,
    threads: 4
    resources:
        mem_mb=12000,
        runtime=CFG.runtime(3),
    log:
        f"{RESULTS}/logs/detect/{{dataset}}/shots{{shots}}_seed{{seed}}/{{backend}}/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/detect/{{dataset}}/shots{{shots}}_seed{{seed}}/{{backend}}/{{part}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/detect.py"
