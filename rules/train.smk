rule train:
    input:
        views=views_index_for_method,
        models=model_inputs("diffusion"),
    output:
        index=f"{RUN}/lora/{{method}}/parts/{{part}}.json",
    params:
        classes=part_classes,
        models=model_locations,
        train=lambda wc: CFG.train_settings(wc.method, wc.seed),
        names=lambda wc: CFG.class_names(wc.dataset, CFG.part_classes(wc.dataset, wc.part)),
        prompt_prefix=lambda wc: CFG.prompt_prefix(wc.dataset),
        device=DEVICE,
    threads: 8
    resources:
        mem_mb=32000,
        runtime=CFG.runtime(30),
        gpu=1,
    log:
        f"{RESULTS}/logs/train/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{part}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/train.py"
