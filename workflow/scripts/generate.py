from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
p, wc = snakemake.params, snakemake.wildcards
stages.generate_for_class(snakemake.input.adapter or None, wc.cls, snakemake.output.manifest,
                          models=p.models, method=p.method, alpha=p.alpha,
                          num_images=p.num_images, settings=p.settings, seed=int(wc.seed),
                          prompt_prefix=p.prompt_prefix, device=p.device)
