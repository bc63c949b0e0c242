#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need, starts PostgreSQL and
# Kafka (or reuses running ones), then runs pytest. Extra arguments go to pytest:
#   bash infra/test.sh                 # everything
#   bash infra/test.sh tests/unit      # unit tests only
#   bash infra/test.sh -k decimal -x
# Existing services instead of local ones: export CHARGELEDGER_KAFKA_BOOTSTRAP and/or
# CHARGELEDGER_TEST_DATABASE_URL (a role with CREATEDB) and that service is not started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=infra/venv.sh
source "$ROOT/infra/venv.sh"

t0=$SECONDS
ensure_venv "$ROOT"

started=()
stop_started() {
    # In CI, stop what this run started: nothing is left behind on the runner.
    local s
    for s in "${started[@]}"; do
        bash "$ROOT/infra/$s.sh" stop || true
    done
}
if [[ "${CI:-}" == "true" ]]; then
    trap stop_started EXIT
    # A broker started for CI begins empty: topics left by earlier runs only slow its start.
    export CHARGELEDGER_KAFKA_FRESH=1
fi

if [[ -z "${CHARGELEDGER_TEST_DATABASE_URL:-}" ]]; then
    bash infra/postgres.sh status >/dev/null 2>&1 || started+=(postgres)
    bash infra/postgres.sh start
    CHARGELEDGER_TEST_DATABASE_URL="$(bash infra/postgres.sh url)"
    export CHARGELEDGER_TEST_DATABASE_URL
fi
if [[ -z "${CHARGELEDGER_KAFKA_BOOTSTRAP:-}" ]]; then
    bash infra/kafka.sh status >/dev/null 2>&1 || started+=(kafka)
    bash infra/kafka.sh start
    export CHARGELEDGER_KAFKA_BOOTSTRAP="127.0.0.1:${CHARGELEDGER_KAFKA_PORT:-9092}"
fi
echo "[test] services ready after $((SECONDS - t0))s: kafka $CHARGELEDGER_KAFKA_BOOTSTRAP, database ${CHARGELEDGER_TEST_DATABASE_URL//:chargeledger@/:***@}" >&2

set +e
"$ROOT/.venv/bin/python" -m pytest -q "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "[test] pytest collected no tests: treated as a failure" >&2
    rc=1
fi
echo "[test] pytest exit code $rc; total $((SECONDS - t0))s" >&2
exit $rc
