from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
manifests = {method: snakemake.input[method] for method in snakemake.params.methods}
stages.sample_grid(snakemake.input.split, snakemake.wildcards.cls, manifests, snakemake.output[0])
