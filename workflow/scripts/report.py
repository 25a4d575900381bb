from pathlib import Path

from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
i, p = snakemake.input, snakemake.params
provenance = stages.provenance(p.run, results=p.results, classifier_jsons=list(i.classifiers),
                               synth_indexes=list(i.synth))
stages.report(list(i.evaluations), str(Path(snakemake.output.html).parent), gap_jsons=list(i.gap),
              tsne_pngs=list(i.tsne), grid_dirs=list(i.grids), box_quality_csvs=list(i.box_quality),
              base_dirs=list(i.bases), judge_jsons=list(i.judges), spread_jsons=list(i.spreads),
              provenance=provenance)
