#!/bin/sh
# bench/run.sh - throughput, CPU and memory figures for posteld, side by side with a
# private Postfix instance on the same machine.  The entry point of `make bench`.
# It prints figures, not pass/fail, and exits non-zero only when something broke
# (a server did not start, smtp-source failed, messages went missing).
# What is measured and how to read it: bench/README.md.
#
# Knobs (environment):
#   POSTELD=path            the daemon (default build/posteld)
#   BENCH_N1/N20/N100=n     messages per run at 1/20/100 sessions (1000/4000/5000)
#   BENCH_REPS=n            runs of each (server, sessions); the median is reported (5)
#   BENCH_IDLE=n            idle connections for posteld's per-connection figure (1000)
#   BENCH_MANY=n            the many-idle-connections try (10000)
#   BENCH_PF_IDLE=n         idle connections to Postfix (100, its default process limit)
#   BENCH_NRELAY=n          messages per relay run, 20 sessions, through the server to
#                           smtp-sink (4000; 0 skips the relay runs)
#   BENCH_RELAY_REPS=n      relay runs of each server, alternating (3)
#   BENCH_SKIP_POSTFIX=1    measure posteld only
#   BENCH_KEEP=1            keep the work directory (logs, Maildirs, results)
#   BENCH_DEADLINE=s        stop everything after this many seconds (840)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/bench
POSTELD=${POSTELD:-$ROOT/build/posteld}
PY=/usr/bin/python3
N1=${BENCH_N1:-1000}
N20=${BENCH_N20:-4000}
N100=${BENCH_N100:-5000}
REPS=${BENCH_REPS:-5}
IDLE=${BENCH_IDLE:-1000}
MANY=${BENCH_MANY:-10000}
PF_IDLE=${BENCH_PF_IDLE:-100}
NRELAY=${BENCH_NRELAY:-4000}
RREPS=${BENCH_RELAY_REPS:-3}
RSESS=20                # sessions of the relay runs
DEADLINE=${BENCH_DEADLINE:-840}
SKIP_PF=${BENCH_SKIP_POSTFIX:-0}
RUN_TIMEOUT=60          # seconds for one load run (smtp-source plus delivery)
IDLE_TIMEOUT=60         # seconds to open the idle connections

status=0
PD=""                   # posteld PID
SINK=""                 # smtp-sink PID (relay runs)
IDLE_PIDS=""            # idle.py PIDs
WATCHDOG=""
PFDIR=""                # set while the private Postfix may be running
WORK=""

# ---------------------------------------------------------------- helpers

say() { printf '%s\n' "$*"; }
broke() { say "BROKEN: $*"; status=1; }
calc() { awk "BEGIN { $1 }" 2>/dev/null; }
record() { $PY "$B/load.py" record "$RES" "$@"; }

stop_idle() {
    for p in $IDLE_PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $IDLE_PIDS; do wait "$p" 2>/dev/null; done
    IDLE_PIDS=""
}

stop_sink() {
    [ -n "$SINK" ] || return 0
    kill -TERM "$SINK" 2>/dev/null
    i=0
    while kill -0 "$SINK" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$SINK" 2>/dev/null
    wait "$SINK" 2>/dev/null
    SINK=""
}

stop_posteld() {
    [ -n "$PD" ] || return 0
    kill -TERM "$PD" 2>/dev/null
    i=0
    while kill -0 "$PD" 2>/dev/null && [ $i -lt 80 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$PD" 2>/dev/null; then
        say "  posteld $PD did not stop within 8 s of SIGTERM; killing it"
        kill -KILL "$PD" 2>/dev/null
    fi
    wait "$PD" 2>/dev/null
    PD=""
}

cleanup() {
    trap - EXIT INT TERM HUP
    stop_idle
    stop_posteld
    stop_sink
    [ -n "$PFDIR" ] && sh "$B/postfix.sh" stop "$PFDIR"
    [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
    if [ -n "$WORK" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
            say "work directory kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit $status
}

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_file() {   # FILE TENTHS: wait for FILE to exist, at most TENTHS/10 s
    i=0
    while [ ! -e "$1" ] && [ $i -lt "$2" ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$1" ]
}

rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# idle_open CONNS PORT SOURCE...: one idle.py per source address, each holding its
# share of CONNS connections; waits until all have reported.  Sets GREETED and
# IDLE_DETAIL (failure reasons, if any).
idle_open() {
    conns=$1 port=$2
    shift 2
    per=$(( (conns + $# - 1) / $# ))
    left=$conns
    k=0
    rm -f "$WORK"/idle.*
    for src in "$@"; do
        c=$per
        [ $c -gt $left ] && c=$left
        left=$((left - c))
        $PY "$B/idle.py" --port "$port" --count "$c" --source "$src" --hold 300 \
            --connect-time $IDLE_TIMEOUT --ready "$WORK/idle.$k.ready" \
            </dev/null >"$WORK/idle.$k.out" 2>&1 &
        IDLE_PIDS="$IDLE_PIDS $!"
        k=$((k + 1))
    done
    k=0
    for src in "$@"; do
        wait_file "$WORK/idle.$k.ready" $((IDLE_TIMEOUT * 10 + 100)) ||
            say "  idle.py for $src did not report"
        k=$((k + 1))
    done
    GREETED=$(cat "$WORK"/idle.*.ready 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    IDLE_DETAIL=$(cat "$WORK"/idle.*.out 2>/dev/null | awk '{
        for (i = 2; i <= NF; i++) if ($i !~ /^(failed=0|pending=0|seconds=)/) printf " %s", $i }')
}

# ---------------------------------------------------------------- posteld

start_posteld() {   # NAME [CONF]: a fresh daemon; its log is posteld.NAME.log
    LOG=$PDIR/posteld.$1.log
    "$POSTELD" -f "${2:-$PDIR/posteld.conf}" </dev/null 2>"$LOG" &
    PD=$!
    i=0
    while [ $i -lt 100 ]; do
        grep -q 'listening on' "$LOG" 2>/dev/null && return 0
        kill -0 "$PD" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    broke "posteld did not start ($LOG):"
    tail -5 "$LOG"
    kill "$PD" 2>/dev/null
    wait "$PD" 2>/dev/null
    PD=""
    return 1
}

posteld_log_check() {   # LOG: show lines that are neither deliveries nor start/stop
    # (nor the start-up notes every bench daemon prints: the self-signed certificate
    # made for STARTTLS, the control socket, and running as root)
    odd=$(grep -v -E ': [0-9A-F]+ (received from=|to=<[^>]*> .*status=(delivered|sent) |removed$)|: listening on |: postel started: |: signal [0-9]+: shutting down|: postel stopped|: tls: made a self-signed certificate |: control socket listening on |: warning: running as root: ' "$1" | head -1000)
    if [ -n "$odd" ]; then
        say "  posteld log $(basename "$1"): $(printf '%s\n' "$odd" | wc -l) unexpected line(s), first ones:"
        printf '%s\n' "$odd" | head -5 | sed 's/^/    /'
    fi
}

# ---------------------------------------------------------------- setup

[ -x "$POSTELD" ] || { say "bench: $POSTELD is missing (run make)"; exit 1; }
[ -x "$PY" ] || { say "bench: $PY is missing (make deps installs python3)"; exit 1; }
sh "$B/postfix.sh" install || { say "bench: cannot install postfix (for smtp-source)"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/postel-bench.XXXXXX") || exit 1
chmod 755 "$WORK"       # Postfix's unprivileged daemons walk down to their queue
RES=$WORK/results.jsonl
: > "$RES"
trap cleanup EXIT
trap 'say "bench: interrupted"; status=130; exit 130' INT TERM HUP
# The whole run is bounded: past DEADLINE seconds we stop ourselves (and clean up).
MAIN=$$
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$DEADLINE" &
    sp=$!
    wait "$sp" && { echo "bench: past the ${DEADLINE} s deadline, stopping" >&2; kill -TERM "$MAIN"; }
) </dev/null >/dev/null &
WATCHDOG=$!

# fsync is a no-op on tmpfs and overlay-like file systems: the figures would mean nothing.
FSTYPE=$(stat -f -c %T "$WORK")
case "$FSTYPE" in
tmpfs|ramfs|overlayfs|overlay|fuseblk|fuse*)
    say "bench: REFUSED: the work directory $WORK is on $FSTYPE, where fsync proves nothing;"
    say "       set TMPDIR to a directory on a real disk (ext4, xfs, btrfs), or BENCH_ANY_FS=1"
    [ "${BENCH_ANY_FS:-0}" = 1 ] || exit 2
    say "       BENCH_ANY_FS=1: going on; the durable figures below are NOT durable";;
esac
BG=$($PY "$B/load.py" busy --seconds 2)
record bg_busy "${BG:-0}"
set -- $($PY "$B/load.py" fsync "$WORK")
record fsync_ms "${1:-0}" fsync_cpu_ms "${3:-0}" nosync_cpu_ms "${4:-0}"
# The machine's ceilings for a spool: durable appends and creates per second.
record $($PY "$B/load.py" ceilings "$WORK" --seconds 2 | awk '{ printf "ceil_%s %s ", $1, $2 }')
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || REV="$REV + uncommitted changes"
say "postel benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "  machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); work dir $WORK on $(df -P "$WORK" | awk 'NR == 2 { print $1 }') ($(stat -f -c %T "$WORK"))"
say "  before the runs: machine ${BG:-?}% busy (of $(($(nproc) * 100))%), load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "${BG:-0}" -ge 20 ] 2>/dev/null &&
    say "  NOTE: something else is using the machine; the figures will be noisy and lower"
say "  disk: a durable 2 KiB Maildir-style write (create, write, fsync, rename, fsync dir):"
say "        ${1:-?} ms median, ${2:-?} ms p90; ${3:-?} ms CPU (${4:-?} ms CPU without the fsyncs)"
say "  posteld: $POSTELD (git $REV); Postfix $(postconf -d -h mail_version 2>/dev/null)"
say "  load: smtp-source, 2 KiB body, 1 recipient, one message per SMTP session (connect,"
say "        HELO, MAIL, RCPT, DATA, QUIT); $N1/$N20/$N100 messages at 1/20/100 sessions,"
say "        $REPS runs each, posteld and Postfix alternating; both servers fsync before 250"
[ "$NRELAY" -gt 0 ] &&
    say "  relay: $NRELAY messages at $RSESS sessions to bob@relay.test, relayed to smtp-sink on loopback; $RREPS runs each, alternating"

PPORT=$(free_port)
PDIR=$WORK/postel
mkdir -p "$PDIR"
cat > "$PDIR/posteld.conf" <<EOF
hostname = bench.test
listen = 127.0.0.1:$PPORT
spool_dir = $PDIR/spool
mail_dir = $PDIR/mail
local_domains = localhost bench.test
local_users = alice bob
message_size_limit = 10M
max_connections = 15000
workers = 8
EOF

# The relay runs: smtp-sink on SINKPORT is the relayhost of a second posteld (its own
# port, spool and log) and of the private Postfix.  dns_servers points at a port where
# nothing answers, so that posteld never asks a real resolver; the relayhost is a
# bracketed address and needs no lookup anyway.
SINKPORT=$(free_port)
RPORT=$(free_port)
cat > "$PDIR/relay.conf" <<EOF
hostname = bench.test
listen = 127.0.0.1:$RPORT
spool_dir = $PDIR/relay-spool
mail_dir = $PDIR/relay-mail
local_domains = bench.test
local_users = alice
relay_networks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINKPORT
dns_servers = 127.0.0.1:1
tls_policy = none
message_size_limit = 10M
max_connections = 15000
workers = 8
EOF

# ---------------------------------------------------------------- memory: posteld

say ""
say "== memory per idle connection =="
# A fresh daemon for each test, so that its heap has not seen earlier ones.
if start_posteld idle; then
    sleep 0.3
    rss0=$(rss_of "$PD")
    idle_open "$IDLE" "$PPORT" 127.0.0.1
    sleep 0.5
    rss1=$(rss_of "$PD")
    stop_idle
    per=$(calc "printf \"%.2f\", ($rss1 - $rss0) / ($GREETED > 0 ? $GREETED : 1)")
    say "  posteld, $IDLE idle connections: $GREETED greeted; RSS $rss0 -> $rss1 KiB = $per KiB per connection$IDLE_DETAIL"
    record postel_idle_rss "$per"
    [ "$GREETED" -eq "$IDLE" ] || broke "only $GREETED of $IDLE idle connections to posteld got a 220"
    stop_posteld
    posteld_log_check "$LOG"
fi

if [ "$MANY" -gt 0 ] && start_posteld many; then
    sleep 0.3
    rss0=$(rss_of "$PD")
    nsrc=$(( (MANY + 2499) / 2500 ))      # 2500 connections per idle.py and address
    srcs=""
    i=0
    while [ $i -lt $nsrc ]; do srcs="$srcs 127.0.0.$((i + 2))"; i=$((i + 1)); done
    t0=$(date +%s.%N)
    idle_open "$MANY" "$PPORT" $srcs
    t1=$(date +%s.%N)
    sleep 1
    rss1=$(rss_of "$PD")
    nfd=$(ls "/proc/$PD/fd" 2>/dev/null | wc -l)
    alive=yes
    kill -0 "$PD" 2>/dev/null || alive=no
    stop_idle
    per=$(calc "printf \"%.2f\", ($rss1 - $rss0) / ($GREETED > 0 ? $GREETED : 1)")
    if [ "$GREETED" -eq "$MANY" ]; then verdict="all $MANY got a 220"
    else verdict="only $GREETED of $MANY got a 220"; fi
    say "  posteld, $MANY idle connections ($nsrc clients from 127.0.0.2 on): $verdict in $(calc "printf \"%.1f\", $t1 - $t0") s$IDLE_DETAIL"
    say "      RSS $rss0 -> $rss1 KiB ($(calc "printf \"%.1f\", $rss1 / 1024") MiB, $per KiB per connection), $nfd fds open, still running: $alive"
    record many "$MANY" many_greeted "$GREETED" many_rss "$rss1" many_per "$per"
    stop_posteld
    posteld_log_check "$LOG"
fi

# ---------------------------------------------------------------- memory: Postfix

MPID=""
if [ "$SKIP_PF" != 1 ]; then
    FPORT=$(free_port)
    PFDIR=$WORK/postfix
    mkdir -p "$PFDIR"
    # relayhost = [127.0.0.1]:SINKPORT: the relay runs' destination (numeric, no DNS)
    if sh "$B/postfix.sh" setup "$PFDIR" "$FPORT" "$SINKPORT" &&
        MPID=$(sh "$B/postfix.sh" start "$PFDIR")
    then
        sleep 1
        set -- $($PY "$B/load.py" mem --pid "$MPID")
        rss0=$1 pss0=$2 np0=$3
        idle_open "$PF_IDLE" "$FPORT" 127.0.0.1
        sleep 1
        set -- $($PY "$B/load.py" mem --pid "$MPID")
        rss1=$1 pss1=$2 np1=$3
        stop_idle
        g=$GREETED
        [ "$g" -gt 0 ] || g=1
        per=$(calc "printf \"%.2f\", ($rss1 - $rss0) / $g")
        perp=$(calc "printf \"%.2f\", ($pss1 - $pss0) / $g")
        say "  Postfix, $PF_IDLE idle connections: $GREETED greeted; $np0 -> $np1 processes$IDLE_DETAIL"
        say "      total RSS $rss0 -> $rss1 KiB = $per KiB per connection; PSS $pss0 -> $pss1 KiB = $perp KiB per connection"
        record postfix_idle_rss "$per" postfix_idle_pss "$perp"
        [ "$GREETED" -eq "$PF_IDLE" ] || broke "only $GREETED of $PF_IDLE idle connections to Postfix got a 220"
    else
        broke "the private Postfix instance did not start"
        MPID=""
    fi
fi

# ---------------------------------------------------------------- throughput

say ""
say "== throughput runs =="
start_posteld load || PD=""
for s in 1 20 100; do
    eval n=\$N$s
    rep=1
    while [ $rep -le "$REPS" ]; do
        if [ -n "$PD" ]; then
            $PY "$B/load.py" run --port "$PPORT" --to alice@localhost \
                --maildir "$PDIR/mail/alice/new" --pid "$PD" --sessions "$s" --count "$n" \
                --timeout $RUN_TIMEOUT --label postel --out "$RES" --clear ||
                broke "load.py (posteld, $s sessions)"
            if ! kill -0 "$PD" 2>/dev/null; then
                broke "posteld died during the run at $s sessions"
                wait "$PD" 2>/dev/null
                PD=""
            fi
        fi
        if [ -n "$MPID" ]; then
            $PY "$B/load.py" run --port "$FPORT" --to alice@bench.test \
                --maildir "$PFDIR/pmail/alice/new" --pid "$MPID" --sessions "$s" --count "$n" \
                --timeout $RUN_TIMEOUT --label postfix --out "$RES" --clear ||
                broke "load.py (Postfix, $s sessions)"
        fi
        rep=$((rep + 1))
    done
done
if [ -n "$PD" ]; then
    say "  posteld after the runs: RSS $(rss_of "$PD") KiB, $(awk '/^Threads:/ { print $2 }' "/proc/$PD/status") threads"
    stop_posteld
fi
[ -f "$PDIR/posteld.load.log" ] && posteld_log_check "$PDIR/posteld.load.log"

# ---------------------------------------------------------------- relay

if [ "$NRELAY" -gt 0 ]; then
    say ""
    say "== relay runs: smtp-source -> server -> smtp-sink (127.0.0.1:$SINKPORT) =="
    # smtp-sink -c rewrites a "sess=S quit=Q mesg=M" counter line after every session,
    # QUIT and "." (flushed each time): load.py reads the messages that arrived from it.
    # It announces PIPELINING and 8BITMIME (no -p, no -8), answers 250 at once, and
    # keeps up to 256 connections (-m); as root it must drop to a user (-u).
    SINKU=""
    [ "$(id -u)" = 0 ] && SINKU="-u nobody"
    /usr/sbin/smtp-sink -c $SINKU 127.0.0.1:"$SINKPORT" 1000 </dev/null \
        >"$WORK/sink.out" 2>"$WORK/sink.err" &
    SINK=$!
    if ! $PY "$B/load.py" listening "$SINKPORT" --timeout 5 || ! kill -0 "$SINK" 2>/dev/null; then
        broke "smtp-sink did not start on 127.0.0.1:$SINKPORT: $(head -3 "$WORK/sink.err")"
        stop_sink
    fi
    # The ceiling of the relay figure: smtp-source straight into smtp-sink, no disk.
    if [ -n "$SINK" ] && $PY "$B/load.py" run --port "$SINKPORT" --to bob@relay.test \
            --from alice@bench.test --sink-out "$WORK/sink.out" --sink-pid "$SINK" \
            --sink-port "$SINKPORT" --pid "$SINK" --sessions $RSESS --count "$NRELAY" \
            --timeout $RUN_TIMEOUT --label sink --out "$WORK/sink.jsonl" >/dev/null; then
        record ceil_sink "$($PY -c 'import json, sys
print([json.loads(l) for l in open(sys.argv[1])][-1]["del_rate"])' "$WORK/sink.jsonl")"
    fi
    RPD=""
    if [ -n "$SINK" ] && start_posteld relay "$PDIR/relay.conf"; then
        RPD=$PD
    fi
    RMPID=""
    [ -n "$SINK" ] && RMPID=$MPID
    rep=1
    while [ $rep -le "$RREPS" ] && [ -n "$SINK" ]; do
        if [ -n "$RPD" ]; then
            $PY "$B/load.py" run --port "$RPORT" --to bob@relay.test --from alice@bench.test \
                --sink-out "$WORK/sink.out" --sink-pid "$SINK" --sink-port "$SINKPORT" \
                --pid "$RPD" \
                --sessions $RSESS --count "$NRELAY" --timeout $RUN_TIMEOUT --label postel \
                --out "$RES" || broke "load.py (posteld, relay)"
            if ! kill -0 "$RPD" 2>/dev/null; then
                broke "posteld died during a relay run"
                wait "$RPD" 2>/dev/null
                RPD="" PD=""
            fi
        fi
        if [ -n "$RMPID" ]; then
            $PY "$B/load.py" run --port "$FPORT" --to bob@relay.test --from alice@bench.test \
                --sink-out "$WORK/sink.out" --sink-pid "$SINK" --sink-port "$SINKPORT" \
                --pid "$RMPID" \
                --sessions $RSESS --count "$NRELAY" --timeout $RUN_TIMEOUT --label postfix \
                --out "$RES" || broke "load.py (Postfix, relay)"
        fi
        if ! kill -0 "$SINK" 2>/dev/null; then
            broke "smtp-sink died during the relay runs: $(head -3 "$WORK/sink.err")"
            wait "$SINK" 2>/dev/null
            SINK=""
        fi
        rep=$((rep + 1))
    done
    if [ -n "$RPD" ]; then
        say "  posteld after the relay runs: RSS $(rss_of "$RPD") KiB, $(awk '/^Threads:/ { print $2 }' "/proc/$RPD/status") threads"
        stop_posteld
    fi
    if [ -n "$SINK" ]; then
        say "  smtp-sink: $(tr '\r' '\n' <"$WORK/sink.out" | tail -1) in all"
        stop_sink
    fi
    RLOG=$PDIR/posteld.relay.log
    if [ -f "$RLOG" ]; then
        # what posteld said about the outbound side: sent, deferred (with the reasons),
        # bounced, and anything else unexpected
        sent=$(grep -c 'status=sent ' "$RLOG")
        deferred=$(grep -c 'status=deferred ' "$RLOG")
        bounced=$(grep -c 'status=bounced ' "$RLOG")
        say "  posteld relay log: $sent sent, $deferred deferred, $bounced bounced"
        [ "$deferred" -gt 0 ] && grep 'status=deferred ' "$RLOG" |
            sed 's/.*status=deferred //' | sort | uniq -c | sort -rn | head -3 | sed 's/^/    deferred: /'
        posteld_log_check "$RLOG"
    fi
    if [ -n "$PFDIR" ]; then
        say "  Postfix relay: $(grep -c 'to=<bob@relay.test>.* status=sent ' "$PFDIR/maillog" 2>/dev/null) sent, $(grep -c 'to=<bob@relay.test>.* status=deferred ' "$PFDIR/maillog" 2>/dev/null) deferred (maillog)"
    fi
fi
grep -q '"ok": false' "$RES" && broke "some runs lost or failed messages (PROBLEM lines above)"
if [ -n "$PFDIR" ]; then
    sh "$B/postfix.sh" stop "$PFDIR"
    n=$(grep -E -c 'warning|error|fatal|panic' "$PFDIR/maillog" 2>/dev/null)
    if [ "${n:-0}" -gt 0 ]; then
        say "  Postfix maillog: $n warning/error line(s), first ones:"
        grep -E 'warning|error|fatal|panic' "$PFDIR/maillog" | head -5 | sed 's/^/    /'
    fi
    PFDIR=""
fi

# ---------------------------------------------------------------- crash window

say ""
say "== remote duplicate window (a crash between the next hop's 250 and the queue update)"
say "  $($PY "$B/crash_window.py" "$(dirname "$POSTELD")" "$WORK/crash-window" 200 2>&1)"

# ---------------------------------------------------------------- report

$PY "$B/load.py" summary "$RES" || broke "the summary failed"
if [ $status -ne 0 ]; then
    say ""
    say "bench: something broke (see the BROKEN lines above)"
fi
exit $status
