#!/usr/bin/env bash
# The demo command (README): installs chargeledger into .venv if needed and runs
# `chargeledger demo`, which starts the Kafka broker itself (infra/kafka.sh) when none answers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=infra/venv.sh
source "$ROOT/infra/venv.sh"
ensure_venv "$ROOT"
exec "$ROOT/.venv/bin/chargeledger" demo "$@"
