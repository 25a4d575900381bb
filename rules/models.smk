rule build_tiny_model:
    output:
        directory(f"{RESULTS}/models/tiny-{{kind}}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    log:
        f"{RESULTS}/logs/build_tiny_model/{{kind}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_tiny_model/{{kind}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/build_tiny_model.py"
