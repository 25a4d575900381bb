from ChimeraPipe.core.runtime import loader_workers, start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p, i = snakemake.params, snakemake.input
rows = stages.image_set(p.which, p.classes, table_csv=i.get("table"), split_csv=i.get("split"),
                        synth_indexes=list(i.get("synth", [])))
stages.embed(rows, snakemake.output[0], features=snakemake.wildcards.features, models=p.models, device=p.device,
             batch_size=p.batch_size, num_workers=loader_workers(snakemake.threads))
