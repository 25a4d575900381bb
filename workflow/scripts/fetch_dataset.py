from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.fetch_dataset(p.kind, p.root, snakemake.output[0], name=snakemake.wildcards.dataset, urls=p.urls)
