# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SLURM_STAMP := $(VENV)/.installed-slurm

.PHONY: demo mini preflight test test-fast test-report test-slurm lint install install-slurm clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch/torchvision pinned in pyproject.toml: they install from the local disk.
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Local runs start their jobs warm (ChimeraPipe/core/warm.py): each job runs in a fork of one process that has
# imported torch, transformers, diffusers and open_clip, instead of importing them itself. WARM=0: cold jobs.
WARM ?= 1
RUN := $(if $(filter 1,$(WARM)),$(BIN)/python -m ChimeraPipe.core.warm --)

demo: $(STAMP)
	# Tiny models: start-up dominates, so one thread per job and two jobs at a time beats two threads each.
	$(RUN) $(BIN)/snakemake --profile profiles/local --cores 2 --max-threads 1
	@echo "Report: results/report/report.html (and report.md, tables/, figures/)"

# The laptop-scale experiment (docs/mini.md): a base pretrained on rendered digits, scikit-learn's digits as
# the few-shot target, every method, 5 seeds. Report: results_mini/report/report.html. `make mini BASE=1`
# runs it on a second base (pretrain.seed 1, config/mini_base1.yaml) into results_mini_base1/.
MINI_CONFIGS = config/mini.yaml $(if $(BASE),config/mini_base$(BASE).yaml)
mini: $(STAMP)
	$(RUN) $(BIN)/snakemake --profile profiles/local --cores 2 --max-threads 1 --configfile $(MINI_CONFIGS)
	@echo "Report: results_mini$(if $(BASE),_base$(BASE))/report/report.html"

# Check a config before running or submitting it (`make preflight CONFIG=config/paper_fewshot.yaml`; without CONFIG
# the embedded default): every dataset, model, the GPU, the free space, and the run's images, jobs and bytes.
# Exits non-zero on any blocker. The report is also in <results>/logs/preflight.log.
CONFIG ?=
preflight: $(STAMP)
	$(BIN)/snakemake preflight --cores 1 $(if $(CONFIG),--configfile $(CONFIG))

# Test files on two workers side by side (pytest-xdist): a file's tests, and its module fixtures, stay on one
# worker; collection order kept, which puts the two end-to-end runs first (tests/conftest.py).
XDIST := -n 2 --dist loadfile --no-loadscope-reorder

# Everything (CI's gate); the slowest tests are listed at the end.
test: $(STAMP)
	$(BIN)/python -m pytest -q --ignore=tests/slurm $(XDIST) --durations=15

# The edit loop: unit tests and dry runs, no end-to-end workflow run (marker `slow`), a few minutes.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q --ignore=tests/slurm $(XDIST) -m "not slow" --durations=10

# The demo's HTML report opened in headless Chromium (installed from Debian's packages when missing, as root).
test-report: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	CHIMERAPIPE_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q tests/test_workflow.py -k "report"

# The SLURM executor plugin (`pip install -e '.[slurm]'`), once per change of pyproject.toml.
$(SLURM_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[slurm]'
	touch $(SLURM_STAMP)

install-slurm: $(SLURM_STAMP)

# A real one-node SLURM cluster (root, Debian): start it, run the SLURM tests, always stop it.
test-slurm: $(SLURM_STAMP)
	tests/slurm/cluster.sh start
	SLURM_CONF=$$(tests/slurm/cluster.sh env | cut -d= -f2) CHIMERAPIPE_REQUIRE_SLURM=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider --basetemp=/tmp/chimerapipe-slurm-tests tests/slurm; \
	status=$$?; tests/slurm/cluster.sh stop; exit $$status

# Style (ruff), the import layers (import-linter: imports only point down, no circles), the workflow.
lint: $(STAMP)
	$(BIN)/ruff check ChimeraPipe tests bench workflow/scripts
	$(BIN)/lint-imports
	$(BIN)/snakemake --lint

clean:
	rm -rf results results_mini results_mini_base* .snakemake
