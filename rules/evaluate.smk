rule evaluate:
    input:
        classifier=f"{RUN}/classifier/{{method}}/{{gen}}/classifier.safetensors",
        table=f"{RESULTS}/{{dataset}}/table.csv",
        models=classifier_models(),
    output:
        metrics=f"{RUN}/eval/{{method}}/{{gen}}.json",
        predictions=f"{RUN}/eval/{{method}}/{{gen}}_predictions.csv",
    params:
        classes=lambda wc: CFG.classes(wc.dataset),
        tags=lambda wc: {"dataset": wc.dataset, "method": wc.method, "synthetic": wc.gen,
                         "shots": int(wc.shots), "seed": int(wc.seed),
                         "with_real": CFG.classify_settings(wc.dataset)["with_real"] and wc.gen != "real"},
        groups=lambda wc: CFG.class_groups(wc.dataset),
        device=DEVICE,
    threads: 8
    resources:
        mem_mb=32000,
        runtime=60,
        gpu=1,
    log:
        f"{RESULTS}/logs/evaluate/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/evaluate.py"
