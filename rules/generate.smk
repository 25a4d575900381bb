rule generate:
    input:
        adapter=adapter_index_for,
        split=f"{RESULTS}/{{dataset}}/split/shots{{shots}}_seed{{seed}}.csv",
        models=generate_models,
    output:
        index=f"{RUN}/synth/{{method}}/{{gen}}/parts/{{part}}.json",
    params:
        classes=part_classes,
        models=model_locations,
        method=lambda wc: CFG.generation_method(wc.method, wc.gen),
        alpha=lambda wc: CFG.alpha_of(wc.method, wc.gen),
        num_images=lambda wc: CFG.generation_images(wc.dataset, wc.gen),
        settings=CFG.generate_settings(),
        all_classes=lambda wc: CFG.classes(wc.dataset),
        names=lambda wc: CFG.class_names(wc.dataset),
        prompt_prefix=lambda wc: CFG.prompt_prefix(wc.dataset),
        device=DEVICE,
    threads: 8
    resources:
        mem_mb=32000,
        runtime=CFG.runtime(20),
        gpu=1,
    log:
        f"{RESULTS}/logs/generate/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}/{{part}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/generate.py"


# Not part of `all`: a synthetic set written out as an ImageFolder of files (one per image, the stored bytes),
#   snakemake results/export/<dataset>/shots<K>_seed<seed>/<method>/<gen>
rule export_synth:
    input:
        synth=synth_indexes,
    output:
        directory(f"{RESULTS}/export/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}"),
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        f"{RESULTS}/logs/export_synth/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/export_synth/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{gen}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/export_synth.py"
