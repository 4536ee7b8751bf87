#!/usr/bin/env bash
# The README's own-documents tour ("Second tour: your own documents"), command for command, on a second real
# document set: PostgreSQL 15's administration pages (Debian's postgresql-doc-15, `make docs-data`) with the 52
# questions of this folder, imported as a new user would (`data import --name pgdocs --questions ...`; the shipped
# option `dataset=postgresql_docs` is the same folder and questions without an import). Everything it writes (imported data, mlruns/, the cache, best.yaml, the console log
# tour.log) goes to the folder given (default ./tour-postgresql-docs), so it starts cold and touches nothing else.
#   experiments/postgresql-docs/tour.sh [OUT]          (or: make tour-postgresql-docs TOUR_DIR=OUT)
set -euo pipefail
HOME_DIR=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-tour-postgresql-docs}
mkdir -p "$OUT"
cd "$OUT"
export RETRIEVAL_LAB_DATA=$PWD/data RETRIEVAL_LAB_CACHE=${RETRIEVAL_LAB_CACHE:-$PWD/cache} MLFLOW_DISABLE_TELEMETRY=true
PG_DOCS=/usr/share/doc/postgresql-doc-15/html
step() { echo; echo "\$ $*"; /usr/bin/time -f "  (%e s wall)" "$@"; }
{
  uptime
  step retrieval-lab data import "$PG_DOCS" --include 'app-*.html' --include 'runtime-config*.html' \
    --include 'auth-*.html' --include 'backup*.html' --include 'continuous-archiving.html' --name pgdocs \
    --questions "$HOME_DIR/experiments/postgresql-docs/questions.jsonl"
  step retrieval-lab data list
  step retrieval-lab run dataset=pgdocs retriever=hybrid embedder=wordllama chunker=fixed_tokens unit=window
  step retrieval-lab sweep own-docs dataset=pgdocs
  step retrieval-lab best --experiment own-docs-pgdocs --metric evidence_coverage_budget_512 --export best.yaml
  step retrieval-lab evaluate --config best.yaml
  step retrieval-lab search --config best.yaml -k 3 --passages 2 --chars 200 "how do I make pg_hba.conf changes take effect without restarting"
  uptime
} 2>&1 | tee tour.log
echo "(questions: $HOME_DIR/experiments/postgresql-docs/questions.jsonl; log: $PWD/tour.log)"
