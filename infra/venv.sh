# Sourced by infra/test.sh and infra/demo.sh: creates or reuses the project's virtualenv at
# .venv (repo root) with Python >= 3.11 and installs chargeledger (editable) with its test
# extra. Reinstalls only when pyproject.toml changes (checksum stamp in .venv).

ensure_venv() {
    local root="$1" venv="$1/.venv" py want
    py="${CHARGELEDGER_PYTHON:-}"
    if [[ -z "$py" ]]; then
        for candidate in python3.11 python3.12 python3.13 python3; do
            if command -v "$candidate" >/dev/null \
                && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
                py="$candidate"
                break
            fi
        done
    fi
    [[ -n "$py" ]] || { echo "[venv] ERROR: Python >= 3.11 is needed (set CHARGELEDGER_PYTHON)" >&2; return 1; }

    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        echo "[venv] creating $venv with $(command -v "$py") ($("$py" --version 2>&1))" >&2
        rm -rf "$venv"
        if ! "$py" -m venv "$venv" 2>/dev/null; then
            # Debian's own python3 ships venv/ensurepip separately.
            if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
                echo "[venv] installing python3-venv from Debian packages" >&2
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            fi
            rm -rf "$venv"
            "$py" -m venv "$venv" || { echo "[venv] ERROR: '$py -m venv' failed" >&2; return 1; }
        fi
    fi

    want="$(cat "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [[ "$(cat "$venv/.chargeledger-install.sha256" 2>/dev/null)" == "$want" ]]; then
        echo "[venv] $venv is up to date" >&2
        return 0
    fi
    echo "[venv] installing chargeledger and its test extra into $venv (first run: a few minutes) ..." >&2
    local t0=$SECONDS
    set -o pipefail
    if ! (cd "$root" && "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -e '.[test]') 2>&1 \
        | tee "$venv/pip-install.log" | { grep --line-buffered -E '^(Collecting|Successfully installed|ERROR)' || true; } \
        | sed -u 's/^/[venv] /' >&2; then
        tail -n 30 "$venv/pip-install.log" >&2
        echo "[venv] ERROR: pip install failed (log: $venv/pip-install.log)" >&2
        return 1
    fi
    echo "$want" > "$venv/.chargeledger-install.sha256"
    echo "[venv] installed in $((SECONDS - t0))s" >&2
}
