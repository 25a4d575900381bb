rule report:
    input:
        evaluations=evaluations(),
        gap=gap_results(),
        tsne=tsne_plots(),
        grids=sample_grid_dirs(),
        box_quality=[p.replace(".md", ".csv") for p in box_quality_reports()],
        bases=pretrained_bases(),
        judges=judge_reports(),
        spreads=spread_results(),
        classifiers=classifier_descriptions,
        synth=synth_part_indexes,
    output:
        table=f"{RESULTS}/report/accuracy.csv",
        markdown=f"{RESULTS}/report/accuracy.md",
        report=f"{RESULTS}/report/report.md",
        html=f"{RESULTS}/report/report.html",
        tables=directory(f"{RESULTS}/report/tables"),
        figures=directory(f"{RESULTS}/report/figures"),
        provenance=f"{RESULTS}/report/provenance.json",
    params:
        run=run_provenance,
        results=lambda wc, output: str(Path(output.html).parents[1]),  # benchmarks/ lies under it
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        f"{RESULTS}/logs/report/accuracy.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/accuracy.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/report.py"


rule sample_grid:
    input:
        unpack(grid_inputs),
    output:
        directory(f"{RESULTS}/report/grids/{{dataset}}/shots{{shots}}_seed{{seed}}"),
    params:
        classes=lambda wc: CFG.synth_classes(wc.dataset),
        labels=set_labels,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        f"{RESULTS}/logs/sample_grid/{{dataset}}/shots{{shots}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_grid/{{dataset}}/shots{{shots}}_seed{{seed}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/sample_grid.py"


rule box_quality:
    input:
        unpack(box_quality_inputs),
    output:
        table=f"{RESULTS}/report/box_quality/{{dataset}}_shots{{shots}}_seed{{seed}}.csv",
        markdown=f"{RESULTS}/report/box_quality/{{dataset}}_shots{{shots}}_seed{{seed}}.md",
    params:
        root=lambda wc: CFG.dataset_root(wc.dataset),
        annotations_file=CFG.detect_settings()["annotations_file"],
        backends=QUALITY_BACKENDS,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        f"{RESULTS}/logs/box_quality/{{dataset}}_shots{{shots}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/box_quality/{{dataset}}_shots{{shots}}_seed{{seed}}.tsv"
    conda:
        "../envs/chimerapipe.yaml"
    script:
        "../workflow/scripts/box_quality.py"
