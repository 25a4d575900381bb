rule train:
    input:
        views=views_for_method,
        models=tiny_models("diffusion"),
    output:
        adapter=f"{RUN}/lora/{{method}}/{{cls}}/adapter.safetensors",
        description=f"{RUN}/lora/{{method}}/{{cls}}/adapter.json",
    params:
        models=model_locations,
        train=lambda wc: CFG.method(wc.method)["train"],
        prompt_prefix=lambda wc: CFG.dataset(wc.dataset).get("prompt_prefix", ""),
        device=config["device"],
    threads: 8
    resources:
        mem_mb=32000,
        runtime=120,
        gpu=1,
    log:
        f"{RESULTS}/logs/train/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{cls}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/shots{{shots}}_seed{{seed}}/{{method}}/{{cls}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/train.py"
