from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages
from ChimeraPipe.pipeline.config import classify_workers

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.classify(snakemake.input.split, list(snakemake.input.synth), p.classes, snakemake.output.classifier,
                models=p.models, settings=p.settings, prompt_prefix=p.prompt_prefix,
                seed=int(snakemake.wildcards.seed), device=p.device, table_csv=snakemake.input.table,
                names=p.names, num_images=p.num_images,
                num_workers=classify_workers(snakemake.config, snakemake.threads))
