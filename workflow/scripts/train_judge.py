from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.train_judge(snakemake.input.table, p.classes, snakemake.output[0], epochs=p.epochs, image_size=p.image_size,
                   device=p.device)
