import sys

from ChimeraPipe.core.io import write_text
from ChimeraPipe.pipeline import preflight

p = snakemake.params
result = preflight.run_preflight(snakemake.config, gpu_rules=list(p.gpu_rules), gpu_suite=p.gpu_suite,
                                 sources=list(p.sources))
report = preflight.format_report(result)
print(report, flush=True)
write_text(snakemake.log[0], report)
sys.exit(preflight.exit_code(result))
