from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
synth = {method: list(snakemake.input[method]) for method in snakemake.params.methods}
stages.sample_grids(snakemake.input.split, snakemake.params.classes, synth, snakemake.output[0])
