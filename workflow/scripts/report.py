from ChimeraPipe import stages
from ChimeraPipe.runtime import setup_logging

setup_logging(snakemake.log[0])
stages.report(list(snakemake.input), snakemake.output.table, snakemake.output.markdown)
