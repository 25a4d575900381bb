from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
i, p, wc = snakemake.input, snakemake.params, snakemake.wildcards
synth = {label: i[f"set{n}"] for n, label in enumerate(p.labels)}
stages.tsne(i.test, i.shots, synth, p.cls, snakemake.output[0], seed=int(wc.seed), perplexity=p.perplexity,
            title=f"{wc.dataset}, class {p.cls} (seed {wc.seed})")
