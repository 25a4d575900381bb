from ChimeraPipe import stages
from ChimeraPipe.runtime import setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
stages.split(snakemake.params.root, snakemake.params.classes, int(wc.shots), int(wc.seed), snakemake.output[0])
