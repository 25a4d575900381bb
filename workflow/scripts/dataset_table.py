from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.dataset_table(p.kind, p.root, snakemake.output.table, naming=p.naming, on_missing=p.on_missing,
                     decoded_dir=p.decoded)
