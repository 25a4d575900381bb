# Gap metrics: each image set is embedded once (per feature extractor), then every metric reads the files.


rule embed_test:
    input:
        table=f"{RESULTS}/{{dataset}}/table.csv",
        models=embedding_models,
    output:
        f"{RESULTS}/{{dataset}}/embeddings/{{features}}/test.safetensors",
        f"{RESULTS}/{{dataset}}/embeddings/{{features}}/test.csv",
    params:
        which="test",
        classes=lambda wc: CFG.synth_classes(wc.dataset),
        models=embedding_model_locations,
        batch_size=CFG.metrics_settings()["batch_size"],
        device=DEVICE,
    threads: 8
    resources:
        mem_mb=16000,
        runtime=60,
        gpu=1,
    log:
        f"{RESULTS}/logs/embed/{{dataset}}/{{features}}/test.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{dataset}}/{{features}}/test.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/embed.py"


rule embed_shots:
    input:
        split=f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
        models=embedding_models,
    output:
        f"{RUN}/embeddings/{{features}}/shots.safetensors",
        f"{RUN}/embeddings/{{features}}/shots.csv",
    params:
        which="shots",
        classes=lambda wc: CFG.synth_classes(wc.dataset),
        models=embedding_model_locations,
        batch_size=CFG.metrics_settings()["batch_size"],
        device=DEVICE,
    threads: 4
    resources:
        mem_mb=8000,
        runtime=15,
        gpu=1,
    log:
        f"{RESULTS}/logs/embed/{{dataset}}/shots{{shots}}_seed{{seed}}/{{features}}/shots.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{dataset}}/shots{{shots}}_seed{{seed}}/{{features}}/shots.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/embed.py"


rule embed_synth:
    input:
        synth=synth_indexes,
        models=embedding_models,
    output:
        f"{RUN}/embeddings/{{features}}/synth/{{method}}/{{gen}}.safetensors",
        f"{RUN}/embeddings/{{features}}/synth/{{method}}/{{gen}}.csv",
    params:
        which="synth",
        classes=lambda wc: CFG.synth_classes(wc.dataset),
        models=embedding_model_locations,
        batch_size=CFG.metrics_settings()["batch_size"],
        device=DEVICE,
    threads: 8
    resources:
        mem_mb=16000,
        runtime=60,
        gpu=1,
    log:
        f"{RESULTS}/logs/embed/{{dataset}}/shots{{shots}}_seed{{seed}}/{{features}}/{{method}}/{{gen}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{dataset}}/shots{{shots}}_seed{{seed}}/{{features}}/{{method}}/{{gen}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/embed.py"


rule embed_prompts:
    input:
        models=model_inputs("clip"),
    output:
        f"{RESULTS}/{{dataset}}/embeddings/clip/prompts.safetensors",
        f"{RESULTS}/{{dataset}}/embeddings/clip/prompts.csv",
    params:
        classes=lambda wc: CFG.synth_classes(wc.dataset),
        names=lambda wc: CFG.class_names(wc.dataset, CFG.synth_classes(wc.dataset)),
        prompt_prefix=lambda wc: CFG.prompt_prefix(wc.dataset),
        models=model_locations,
        device=DEVICE,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=15,
    log:
        f"{RESULTS}/logs/embed/{{dataset}}/prompts.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{dataset}}/prompts.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/embed_prompts.py"


rule gap_metrics:
    input:
        unpack(gap_inputs),
    output:
        summary=f"{RUN}/metrics/{{method}}/{{gen}}.json",
        per_class=f"{RUN}/metrics/{{method}}/{{gen}}.csv",
    params:
        classes=lambda wc: CFG.synth_classes(wc.dataset),
        k=CFG.metrics_settings()["k"],
        pixel_size=CFG.metrics_settings()["pixel_size"],
        tags=lambda wc: {"dataset": wc.dataset, "method": wc.method, "synthetic": wc.gen,
                         "shots": int(wc.shots), "seed": int(wc.seed)},
    threads: 1
    resources:
        mem_mb=8000,
        runtime=15,
    log:
        f"{RESULTS}/logs/gap_metrics/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gap_metrics/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/gap_metrics.py"


rule tsne:
    input:
        unpack(tsne_inputs),
    output:
        f"{RESULTS}/report/tsne/{{dataset}}_shots{{shots}}_seed{{seed}}.png",
    params:
        labels=lambda wc: set_labels(wc, regime=False),
        cls=lambda wc: CFG.tsne_class(wc.dataset),
        perplexity=CFG.metrics_settings()["tsne_perplexity"],
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    log:
        f"{RESULTS}/logs/tsne/{{dataset}}_shots{{shots}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tsne/{{dataset}}_shots{{shots}}_seed{{seed}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/tsne.py"


rule train_judge:
    input:
        table=f"{RESULTS}/{{dataset}}/table.csv",
    output:
        f"{RESULTS}/{{dataset}}/judge/judge.safetensors",
        f"{RESULTS}/{{dataset}}/judge/judge.json",
    params:
        classes=lambda wc: CFG.classes(wc.dataset),
        epochs=CFG.metrics_settings()["judge_epochs"],
        image_size=CFG.classify_settings()["image_size"],
        device=DEVICE,
    threads: 4
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,
    log:
        f"{RESULTS}/logs/train_judge/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_judge/{{dataset}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/train_judge.py"


rule lora_spread:
    input:
        adapters=lambda wc: [f"{run_dir(wc)}/lora/{wc.method}/parts/{part}.json" for part in CFG.parts(wc.dataset)],
        models=model_inputs("diffusion"),
    output:
        f"{RUN}/lora/{{method}}/spread.json",
    params:
        models=model_locations,
        tags=lambda wc: {"dataset": wc.dataset, "method": wc.method, "shots": int(wc.shots), "seed": int(wc.seed)},
    threads: 1
    resources:
        mem_mb=16000,
        runtime=30,
    log:
        f"{RESULTS}/logs/lora_spread/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lora_spread/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/lora_spread.py"
