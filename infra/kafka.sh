#!/usr/bin/env bash
# Single-node Apache Kafka 4.x broker (KRaft: broker + controller in one JVM) for the demo
# and the tests, assembled from Maven Central jars (infra/kafka/pom.xml). No Docker.
#
#   bash infra/kafka.sh start    # idempotent: reuses the jar cache, the storage and a running broker
#   bash infra/kafka.sh stop     # stops the broker this script started
#   bash infra/kafka.sh status   # exit 0 when something answers on the broker port
#   bash infra/kafka.sh reset    # stop, then delete the storage (all topics)
# CHARGELEDGER_KAFKA_FRESH=1 start: a broker that has to be started begins with empty storage.
#
# Everything lives under ${CHARGELEDGER_CACHE:-$HOME/.cache/chargeledger}/kafka:
#   libs/ (jars), data/ (KRaft log dirs), server.properties, log4j2.properties, broker.log, broker.pid
# Ports: CHARGELEDGER_KAFKA_PORT (9092, PLAINTEXT) and CHARGELEDGER_KAFKA_CONTROLLER_PORT (9093).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM_DIR="$HERE/kafka"
export HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
CACHE_ROOT="${CHARGELEDGER_CACHE:-$HOME/.cache/chargeledger}"
KDIR="$CACHE_ROOT/kafka"
LIBS="$KDIR/libs"
DATA="$KDIR/data"
PROPS="$KDIR/server.properties"
LOG4J="$KDIR/log4j2.properties"
LOG="$KDIR/broker.log"
PIDFILE="$KDIR/broker.pid"
HOST=127.0.0.1
PORT="${CHARGELEDGER_KAFKA_PORT:-9092}"
CPORT="${CHARGELEDGER_KAFKA_CONTROLLER_PORT:-9093}"
HEAP="${CHARGELEDGER_KAFKA_HEAP:-768m}"
READY_TIMEOUT="${CHARGELEDGER_KAFKA_READY_TIMEOUT:-180}"

say() { echo "[kafka] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

our_pid() {
    # Prints the pid of the broker this script started, if it is still alive.
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

need_tools() {
    # A new machine of this kind has Java 17 and Maven; install them from Debian if not.
    if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
        [[ "$(id -u)" == 0 ]] || die "java and mvn are needed (Java 17+); install openjdk-17-jdk-headless and maven"
        say "installing Java 17 and Maven from Debian packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
    fi
}

ensure_libs() {
    # Jars are copied once per version of the pom; the stamp is the pom's checksum.
    local stamp want
    want="$(sha256sum "$POM_DIR/pom.xml" | cut -d' ' -f1)"
    stamp="$(cat "$LIBS/.pom.sha256" 2>/dev/null || true)"
    if [[ "$stamp" == "$want" ]]; then
        say "jars cached in $LIBS ($(ls "$LIBS" | grep -c '\.jar$') jars)"
        return
    fi
    say "resolving Kafka jars from Maven Central into $LIBS (first run: about a minute) ..."
    local tmp="$KDIR/libs.tmp.$$"
    rm -rf "$tmp"
    local t0=$SECONDS
    (cd "$POM_DIR" && mvn -B --no-transfer-progress -Dstyle.color=never \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp") >"$KDIR/maven.log" 2>&1 \
        || { tail -n 30 "$KDIR/maven.log" >&2; rm -rf "$tmp"; die "maven could not resolve infra/kafka/pom.xml (log: $KDIR/maven.log)"; }
    echo "$want" > "$tmp/.pom.sha256"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    say "copied $(ls "$LIBS" | grep -c '\.jar$') jars in $((SECONDS - t0))s"
}

write_config() {
    cat > "$PROPS" <<EOF
# Written by infra/kafka.sh: a single-node KRaft broker for development and tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CPORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CPORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
# One node: every internal topic must have replication factor 1, or consumer groups
# (offsets), transactions/idempotent producers (faust) and share groups never come up.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests start many short-lived consumer groups: do not wait 3 s for more members.
group.initial.rebalance.delay.ms=0
# Keep the disk small: tests create many topics.
log.retention.hours=24
log.segment.bytes=67108864
EOF
    cat > "$LOG4J" <<EOF
# Written by infra/kafka.sh. The broker's own log goes to stdout, redirected to broker.log.
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF
}

java_cmd() {
    java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$KDIR/logs" -cp "$LIBS/*" "$@"
}

format_storage() {
    if [[ -f "$DATA/meta.properties" ]]; then
        return
    fi
    say "formatting KRaft storage in $DATA"
    local cluster_id
    cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    [[ -n "$cluster_id" ]] || die "StorageTool random-uuid printed nothing"
    java_cmd kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$PROPS" >"$KDIR/format.log" 2>&1 \
        || { cat "$KDIR/format.log" >&2; die "formatting the storage failed"; }
}

probe_topic() {
    # A client can create a topic: the broker, the controller and the metadata log all work.
    java_cmd org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" --create --if-not-exists \
        --topic chargeledger-ready --partitions 1 --replication-factor 1 >"$KDIR/probe.log" 2>&1
}

start() {
    mkdir -p "$KDIR"
    exec 9>"$KDIR/.lock"
    flock 9  # two callers (the demo and the tests) never start two brokers
    local pid
    if pid="$(our_pid)"; then
        if port_open "$PORT"; then
            say "already running on $HOST:$PORT (pid $pid); reusing it"
            return 0
        fi
        say "broker pid $pid is alive but not listening yet; waiting for it"
    elif port_open "$PORT"; then
        say "something already listens on $HOST:$PORT (not started from $KDIR); reusing it as the broker"
        return 0
    else
        need_tools
        ensure_libs
        write_config
        if [[ "${CHARGELEDGER_KAFKA_FRESH:-}" == 1 && -d "$DATA" ]]; then
            # CI asks for an empty broker: old topics would only slow the start-up (log recovery).
            say "CHARGELEDGER_KAFKA_FRESH=1: removing the old storage in $DATA"
            rm -rf "$DATA"
        fi
        format_storage
        [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.1"  # keep the previous run's log, not all of them
        say "starting broker on $HOST:$PORT (controller $CPORT, heap $HEAP, log $LOG)"
        # setsid + all three streams redirected: the broker outlives this script and holds
        # no pipe of the caller open (a CI runner waiting for EOF would hang otherwise).
        setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$PIDFILE" \
            java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$KDIR/logs" -cp "$LIBS/*" \
            kafka.Kafka "$PROPS" </dev/null >"$LOG" 2>&1 9>&- &
        sleep 0.5
        pid="$(cat "$PIDFILE")"
    fi
    local t0=$SECONDS
    say "waiting until a client can create a topic (timeout ${READY_TIMEOUT}s) ..."
    until port_open "$PORT" && probe_topic; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$LOG" >&2 || true
            die "the broker exited during start-up; full log: $LOG"
        fi
        if (( SECONDS - t0 > READY_TIMEOUT )); then
            tail -n 20 "$KDIR/probe.log" >&2 || true
            die "broker not ready after ${READY_TIMEOUT}s; log: $LOG"
        fi
        sleep 1
    done
    say "ready on $HOST:$PORT after $((SECONDS - t0))s (pid $pid)"
}

stop() {
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$PIDFILE"
        if port_open "$PORT"; then
            say "a broker on $HOST:$PORT was not started from $KDIR; leaving it alone"
        else
            say "not running"
        fi
        return 0
    fi
    say "stopping broker pid $pid (controlled shutdown) ..."
    kill -TERM "$pid"
    local i
    for i in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; say "stopped"; return 0; }
        sleep 1
    done
    say "still running after 60s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
}

status() {
    local pid
    if port_open "$PORT"; then
        if pid="$(our_pid)"; then
            echo "kafka: up on $HOST:$PORT (pid $pid, $KDIR)"
        else
            echo "kafka: something listens on $HOST:$PORT (not started from $KDIR)"
        fi
        return 0
    fi
    echo "kafka: down ($HOST:$PORT)"
    return 3
}

reset() {
    # Stops the broker and deletes its storage (every topic); the next start formats anew.
    stop
    if port_open "$PORT"; then
        die "a broker not started from $KDIR still listens on $HOST:$PORT; not deleting anything"
    fi
    rm -rf "$DATA"
    say "storage deleted ($DATA)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    reset) reset ;;
    *) echo "usage: bash infra/kafka.sh start|stop|status|reset" >&2; exit 2 ;;
esac
