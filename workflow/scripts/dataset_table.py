from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.dataset_table(p.kind, p.root, snakemake.output.table, naming=p.naming, on_missing=p.on_missing,
                     decoded_dir=p.decoded)
