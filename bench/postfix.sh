#!/bin/sh
# bench/postfix.sh - a private, throw-away Postfix instance for the benchmark.
#
#   postfix.sh install           install Debian's postfix package (smtp-source and
#                                smtp-sink come with it) without configuring or
#                                starting the system instance
#   postfix.sh setup DIR PORT [SINKPORT]
#                                write DIR/conf/{main.cf,master.cf,vmailbox} and make
#                                DIR/queue, DIR/data, DIR/pmail; smtpd on 127.0.0.1:PORT;
#                                mail for other domains goes to relayhost
#                                [127.0.0.1]:SINKPORT (smtp-sink in the relay runs)
#   postfix.sh start DIR         start it; prints the master PID
#   postfix.sh stop DIR          stop it (postfix stop, then the master PID from its
#                                pid file, then any process left in its session, by PID)
#   postfix.sh pid DIR           print the master PID (from the pid file) if it runs
#
# The instance never touches /etc/postfix or /var/spool/postfix: everything is
# under DIR, it listens on loopback only, and delivers mail for alice@bench.test
# with virtual(8) into the Maildir DIR/pmail/alice/ (owned by nobody).  Clients on
# 127.0.0.0/8 may relay (mynetworks); with SINKPORT, relayed mail goes to the numeric
# relayhost [127.0.0.1]:SINKPORT, so no DNS lookup is made for it.  Without SINKPORT
# the relayhost is empty and mail for other domains must not be sent to it.
set -u

die() { echo "postfix.sh: $*" >&2; exit 1; }

have_postfix() {
    [ -x /usr/sbin/postfix ] && [ -x /usr/sbin/postconf ] && [ -x /usr/sbin/smtp-source ] &&
        [ -x /usr/sbin/smtp-sink ]
}

cmd_install() {
    have_postfix && return 0
    export DEBIAN_FRONTEND=noninteractive
    # "No configuration": the package installs, but writes no /etc/postfix/main.cf
    # and so never starts the system instance.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "postfix: installing Debian's postfix package (no system configuration)" >&2
    apt-get install -y -q --no-install-recommends postfix >/dev/null 2>&1 || {
        apt-get update -q >/dev/null 2>&1
        apt-get install -y -q --no-install-recommends postfix >/dev/null 2>&1
    } || die "apt-get install postfix failed"
    have_postfix || die "postfix installed but /usr/sbin/smtp-source is missing"
}

cmd_setup() {
    D=$1 PORT=$2 SINKPORT=${3:-}
    RELAYHOST=
    [ -n "$SINKPORT" ] && RELAYHOST="[127.0.0.1]:$SINKPORT"
    [ -d "$D" ] || die "no directory $D"
    mkdir -p "$D/conf" "$D/queue" "$D/data" "$D/pmail/alice/new" "$D/pmail/alice/cur" \
        "$D/pmail/alice/tmp"
    # The postfix user must be able to walk down to its queue.
    chmod 755 "$D" "$D/conf" "$D/queue"
    chown postfix "$D/data"
    chown -R nobody:nogroup "$D/pmail"
    : > "$D/conf/main.cf"
    printf 'alice@bench.test alice/\n' > "$D/conf/vmailbox"
    # master.cf: the stock services, none chrooted, plus smtpd on our port.
    cat > "$D/conf/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
$PORT      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    # Everything else is Postfix's default (default_process_limit = 100, full
    # fsync of the queue file before 250, fsync of the delivered Maildir file).
    postconf -c "$D/conf" -e \
        "compatibility_level = 3.6" \
        "queue_directory = $D/queue" \
        "data_directory = $D/data" \
        "myhostname = bench.test" \
        "mydomain = bench.test" \
        "myorigin = bench.test" \
        "mydestination = localhost" \
        "inet_interfaces = 127.0.0.1" \
        "inet_protocols = ipv4" \
        "mynetworks = 127.0.0.0/8" \
        "relayhost = $RELAYHOST" \
        "alias_maps =" \
        "alias_database =" \
        "biff = no" \
        "message_size_limit = 10485760" \
        "virtual_mailbox_domains = bench.test" \
        "virtual_mailbox_base = $D/pmail" \
        "virtual_mailbox_maps = texthash:$D/conf/vmailbox" \
        "virtual_uid_maps = static:$(id -u nobody)" \
        "virtual_gid_maps = static:$(id -g nobody)" \
        "maillog_file_prefixes = $D" \
        "maillog_file = $D/maillog" ||
        die "postconf failed"
}

cmd_pid() {
    D=$1
    f="$D/queue/pid/master.pid"
    [ -s "$f" ] || return 1
    p=$(awk 'NR == 1 { print $1 }' "$f")
    case $p in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$p" 2>/dev/null || return 1
    echo "$p"
}

cmd_start() {
    D=$1
    postfix -c "$D/conf" check >"$D/check.log" 2>&1 || {
        cat "$D/check.log" >&2
        die "postfix check failed"
    }
    postfix -c "$D/conf" start >"$D/start.log" 2>&1 || {
        cat "$D/start.log" >&2
        die "postfix start failed"
    }
    i=0
    while [ $i -lt 100 ]; do
        if p=$(cmd_pid "$D"); then
            echo "$p" > "$D/master.pid.copy"
            echo "$p"
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    die "postfix master did not come up (see $D/maillog)"
}

# PIDs of the processes in session $SID (the master calls setsid(), and its children
# inherit the session), read from /proc/PID/stat field 6.
session_pids() {
    for s in /proc/[0-9]*/stat; do
        line=$(cat "$s" 2>/dev/null) || continue
        # the comm field can hold blanks: take what follows the last ')'
        set -- ${line##*) }
        # $1 state, $2 ppid, $3 pgrp, $4 session
        [ "${4:-}" = "$SID" ] && { p=${s#/proc/}; echo "${p%/stat}"; }
    done
    return 0
}

cmd_stop() {
    D=$1
    [ -d "$D/conf" ] || return 0
    SID=$(cat "$D/master.pid.copy" 2>/dev/null || true)
    postfix -c "$D/conf" stop >/dev/null 2>&1 || true
    if p=$(cmd_pid "$D"); then
        kill -TERM "$p" 2>/dev/null
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$p" 2>/dev/null || true
    fi
    # Children notice the master is gone and exit; wait for that, then end stragglers.
    [ -n "$SID" ] || return 0
    i=0
    while [ $i -lt 50 ]; do
        left=$(session_pids)
        [ -z "$left" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
    return 0
}

case ${1:-} in
install) cmd_install ;;
setup) [ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: setup DIR PORT [SINKPORT]"
    cmd_setup "$2" "$3" "${4:-}" ;;
start) [ $# -eq 2 ] || die "usage: start DIR"; cmd_start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: stop DIR"; cmd_stop "$2" ;;
pid) [ $# -eq 2 ] || die "usage: pid DIR"; cmd_pid "$2" ;;
*) die "usage: postfix.sh install|setup DIR PORT [SINKPORT]|start DIR|stop DIR|pid DIR" ;;
esac
