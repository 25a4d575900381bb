from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
i, p = snakemake.input, snakemake.params
stages.gap_metrics(i.test, i.shots, i.synth, i.get("synth_clip"), i.get("prompts"), p.classes,
                   snakemake.output.summary, snakemake.output.per_class, k=p.k, tags=p.tags,
                   pixel_size=p.pixel_size)
