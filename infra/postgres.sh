#!/usr/bin/env bash
# PostgreSQL for the tests (and for the demo when CHARGELEDGER_DATABASE_URL points at it),
# from Debian's packages, in a cluster folder of our own. No Docker.
#
#   bash infra/postgres.sh start    # installs the server if missing, inits the cluster once, starts it
#   bash infra/postgres.sh stop
#   bash infra/postgres.sh status   # exit 0 when the server answers
#
# Listens on 127.0.0.1:${CHARGELEDGER_PG_PORT:-5432}; role and database `chargeledger`
# (password `chargeledger`, CREATEDB so the tests can make a fresh database per session).
# Cluster folder: ${CHARGELEDGER_PG_DIR}, else $CHARGELEDGER_CACHE/postgres, else (root, whose
# home is 0700 and unreadable to the `postgres` user) /var/lib/chargeledger/postgres, else
# ~/.cache/chargeledger/postgres.
set -euo pipefail

HOST=127.0.0.1
PORT="${CHARGELEDGER_PG_PORT:-5432}"
ROLE=chargeledger
PASSWORD=chargeledger
DB=chargeledger
if [[ -n "${CHARGELEDGER_PG_DIR:-}" ]]; then
    PGDIR="$CHARGELEDGER_PG_DIR"
elif [[ -n "${CHARGELEDGER_CACHE:-}" ]]; then
    PGDIR="$CHARGELEDGER_CACHE/postgres"
elif [[ "$(id -u)" == 0 ]]; then
    PGDIR=/var/lib/chargeledger/postgres
else
    PGDIR="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/chargeledger/postgres"
fi
DATA="$PGDIR/data"
LOG="$PGDIR/postgres.log"
URL="postgresql+psycopg://$ROLE:$PASSWORD@$HOST:$PORT/$DB"

say() { echo "[postgres] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

find_bin() {
    # Debian's server binaries (newest major first); /usr/local/bin may hold wrappers, not these.
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
        if [[ -x "$d/pg_ctl" && -x "$d/initdb" && -x "$d/postgres" ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

install_server() {
    [[ "$(id -u)" == 0 ]] || die "no PostgreSQL server found; install Debian's 'postgresql' package"
    say "installing PostgreSQL from Debian packages (apt-get update first) ..."
    # Debian's package would create and start its own 'main' cluster on port 5432; we run our
    # own cluster instead, so tell postgresql-common not to create one.
    mkdir -p /etc/postgresql-common
    if [[ ! -f /etc/postgresql-common/createcluster.conf ]]; then
        echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql >/dev/null
}

BIN=""
as_owner() {
    # The server refuses to run as root: run it as the 'postgres' OS user when we are root.
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

psql_admin() {
    # Superuser over the cluster's own Unix socket (trust auth; never exposed on TCP).
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDIR" -p "$PORT" -U postgres -d postgres "$@"
}

is_up() { [[ -n "$BIN" ]] && "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 2 >/dev/null 2>&1; }

ours_running() { [[ -f "$DATA/postmaster.pid" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

init_cluster() {
    if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
        say "creating OS user postgres"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    mkdir -p "$PGDIR"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$PGDIR"
        runuser -u postgres -- test -w "$PGDIR" \
            || die "the postgres OS user cannot write $PGDIR (a parent folder is not readable to it); set CHARGELEDGER_PG_DIR"
    fi
    if [[ -f "$DATA/PG_VERSION" ]]; then
        return
    fi
    say "initialising a cluster in $DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$PGDIR/initdb.log" 2>&1 \
        || { cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$DATA/postgresql.conf" <<EOF

# --- chargeledger (infra/postgres.sh) ---
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$PGDIR'
# A throw-away development/test cluster: durability traded for speed. fsync=off and
# synchronous_commit=off can lose or corrupt data on a machine crash; never use them on a
# database that holds real money.
fsync = off
synchronous_commit = off
full_page_writes = off
# Several helpers, the API, workers and test sessions share this server.
max_connections = 200
shared_buffers = 128MB
EOF
}

ensure_role_and_db() {
    psql_admin <<EOF
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    ELSE
        ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    END IF;
END
\$\$;
EOF
    if [[ -z "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]]; then
        psql_admin -c "CREATE DATABASE $DB OWNER $ROLE"
    fi
}

start() {
    BIN="$(find_bin)" || { install_server; BIN="$(find_bin)" || die "no server binaries after installing"; }
    mkdir -p "$(dirname "$PGDIR")"
    exec 9>"$(dirname "$PGDIR")/.postgres.lock"
    flock 9
    if is_up; then
        if [[ -f "$DATA/postmaster.pid" ]] && ours_running; then
            ensure_role_and_db
            say "already running on $HOST:$PORT ($DATA); reusing it"
        elif PGPASSWORD="$PASSWORD" "$BIN/psql" -X -q -h "$HOST" -p "$PORT" -U "$ROLE" -d "$DB" -c "select 1" >/dev/null 2>&1; then
            say "a server on $HOST:$PORT (not $DATA) accepts $ROLE/$DB; reusing it"
        else
            die "a server on $HOST:$PORT that is not ours does not accept role $ROLE; stop it or set CHARGELEDGER_PG_PORT"
        fi
    else
        init_cluster
        # A server killed hard (machine stopped, CI runner cleaned up) leaves postmaster.pid
        # behind; if its pid now belongs to another process the server would refuse to start.
        # Same for the lock file of its Unix socket (in our cluster folder).
        local stale lockfile
        for lockfile in "$DATA/postmaster.pid" "$PGDIR/.s.PGSQL.$PORT.lock"; do
            stale="$(head -n 1 "$lockfile" 2>/dev/null || true)"
            if [[ -n "$stale" ]] && ! grep -qa postgres "/proc/$stale/cmdline" 2>/dev/null; then
                say "removing stale $(basename "$lockfile") of a server that is gone (pid $stale)"
                rm -f "$lockfile"
            fi
        done
        say "starting PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on $HOST:$PORT (log $LOG)"
        # -l: the postmaster's output goes to the log, so no pipe of the caller stays open.
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PORT" start </dev/null >/dev/null 9>&- \
            || { tail -n 30 "$LOG" >&2; die "the server did not start; log: $LOG"; }
        ensure_role_and_db
    fi
    say "ready: $URL"
}

stop() {
    BIN="$(find_bin)" || { say "no server installed"; return 0; }
    if [[ -f "$DATA/postmaster.pid" ]] && ours_running; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        say "stopped"
    elif is_up; then
        say "the server on $HOST:$PORT was not started from $DATA; leaving it alone"
    else
        say "not running"
    fi
}

status() {
    BIN="$(find_bin)" || { echo "postgres: not installed"; return 3; }
    if is_up; then
        if [[ -f "$DATA/postmaster.pid" ]] && ours_running; then
            echo "postgres: up on $HOST:$PORT ($DATA) $URL"
        else
            echo "postgres: something answers on $HOST:$PORT (not $DATA)"
        fi
        return 0
    fi
    echo "postgres: down ($HOST:$PORT)"
    return 3
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    url) echo "$URL" ;;
    *) echo "usage: bash infra/postgres.sh start|stop|status|url" >&2; exit 2 ;;
esac
