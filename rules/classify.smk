rule classify:
    input:
        split=real_training_images,
        table=f"{RESULTS}/{{dataset}}/table.csv",
        synth=synth_indexes,
        models=classifier_models(),
    output:
        classifier=f"{RUN}/classifier/{{method}}/{{gen}}/classifier.safetensors",
        description=f"{RUN}/classifier/{{method}}/{{gen}}/classifier.json",
    params:
        classes=lambda wc: CFG.classes(wc.dataset),
        names=lambda wc: CFG.class_names(wc.dataset),
        models=model_locations,
        settings=lambda wc: CFG.classify_settings(wc.dataset),
        num_images=lambda wc: split_eval_tag(wc.gen)[1],
        prompt_prefix=lambda wc: CFG.prompt_prefix(wc.dataset),
        device=DEVICE,
    threads: 16
    resources:
        mem_mb=64000,
        runtime=480,
        gpu=1,
    log:
        f"{RESULTS}/logs/classify/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/classify/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/classify.py"
