from ChimeraPipe import stages
from ChimeraPipe.runtime import setup_logging

setup_logging(snakemake.log[0])
manifests = {method: snakemake.input[method] for method in snakemake.params.methods}
stages.sample_grid(snakemake.input.split, snakemake.wildcards.cls, manifests, snakemake.output[0])
