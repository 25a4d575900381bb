from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
labels = snakemake.params.labels
synth = {label: list(snakemake.input[f"set{i}"]) for i, label in enumerate(labels)}
stages.sample_grids(snakemake.input.split, snakemake.params.classes, synth, snakemake.output[0])
