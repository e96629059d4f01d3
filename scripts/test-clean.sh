#!/bin/sh
# scripts/test-clean.sh - `make test-clean`: build and test postel on a Debian 12 that has
# nothing but a minimal base system, so a package the tests need and scripts/deps.sh forgets
# fails here instead of passing on a developer's well-stocked machine.
#
#   1. bootstrap  a minbase bookworm root with mmdebstrap (plus make, to run `make deps`);
#                 the bare root is cached as a tarball for CACHE_DAYS days
#   2. unpack     the tarball into a fresh directory; `git clone` the checkout's HEAD into it
#                 (uncommitted changes are NOT tested: commit first)
#   3. make deps  inside the root, with the network: the project installs what it needs
#                 from Debian's archive (.deb files are cached, the installed state never is)
#   4. make       make run's build, without the network
#   5. make test  without the network: fresh mount, PID and network namespaces with only
#                 `lo` up, /proc, /sys, a minimal /dev and a tmpfs /tmp mounted inside them
#
# Every mount lives in a private mount namespace and goes away with it; the root directory is
# removed on exit, also on failure or interruption. Needs root. Environment:
#   POSTEL_CLEAN_CACHE   cache directory (default /var/cache/postel-test-clean)
#   POSTEL_CLEAN_MIRROR  a Debian mirror URL (default: the host's own apt sources, from
#                        /etc/apt/sources.list and /etc/apt/sources.list.d/)
#   POSTEL_CLEAN_KEEP=1  keep the root after the run (for a post-mortem; remove it by hand)
set -eu

SUITE=bookworm
MIRROR=${POSTEL_CLEAN_MIRROR:-}
CACHE=${POSTEL_CLEAN_CACHE:-/var/cache/postel-test-clean}
CACHE_DAYS=7
TARBALL=$CACHE/$SUITE-minbase.tar
DEBS=$CACHE/archives
SRC=/src/postel                 # where the clone lives inside the root
PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "test-clean: $*" >&2; exit 1; }
now() { date +%s; }
phase_start=0
phase() { phase_start=$(now); echo "== test-clean: $1"; }
phase_end() { echo "== test-clean: $1 took $(($(now) - phase_start)) s"; }

[ "$(id -u)" -eq 0 ] || die "needs root (chroot, namespaces, mounts)"
HERE=$(cd "$(dirname "$0")/.." && pwd)
git -C "$HERE" rev-parse --verify -q HEAD >/dev/null || die "$HERE is not a git checkout"
if [ -n "$(git -C "$HERE" status --porcelain --untracked-files=no)" ]; then
    echo "test-clean: note: uncommitted changes in $HERE are not tested (HEAD is cloned)"
fi

t_total=$(now)
ROOT=""
CHILD=""
TMPTAR=""
INNER=""
cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    # the namespaces' first process: SIGKILL ends every process in its PID namespace
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        kill -KILL "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    [ -z "$TMPTAR" ] || rm -f "$TMPTAR"
    [ -z "$INNER" ] || rm -f "$INNER"
    if [ -n "$ROOT" ] && [ -d "$ROOT" ]; then
        if [ "${POSTEL_CLEAN_KEEP:-0}" = 1 ]; then
            echo "test-clean: kept $ROOT"
        elif grep -q " ${ROOT}[/ ]" /proc/self/mounts; then
            # cannot happen (mounts are namespace-private), but never rm -r through a mount
            echo "test-clean: $ROOT still has mounts; not removing it" >&2
            rc=1
        else
            rm -rf --one-file-system "$ROOT"
        fi
    fi
    echo "== test-clean: total $(($(now) - t_total)) s, exit status $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Run "$@" in the background and wait for it, so that cleanup can kill it by PID.
run_child() {
    "$@" 9>&- &
    CHILD=$!
    set +e
    wait "$CHILD"
    st=$?
    set -e
    CHILD=""
    return "$st"
}

# ---------------------------------------------------------------------------------------------
phase "bootstrap"
if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "test-clean: installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
              apt-get install -y -q --no-install-recommends mmdebstrap; }
fi
mkdir -p "$CACHE" "$DEBS/partial"
# one run at a time: runs share the tarball and the apt archive (apt locks it)
exec 9>"$CACHE/lock"
if ! flock -n 9; then
    echo "test-clean: waiting for another run to finish ($CACHE/lock)"
    flock 9
fi
if [ -f "$TARBALL" ] && [ -n "$(find "$TARBALL" -mtime -$CACHE_DAYS)" ]; then
    echo "test-clean: reusing $TARBALL ($(stat -c %y "$TARBALL" | cut -d. -f1))"
else
    # The .deb files go through $DEBS both ways, so a new bootstrap downloads only what
    # changed. The tarball is the bare root: nothing of postel's is in it.
    TMPTAR=$TARBALL.$$.tmp
    # The archive: the one this host installs from (its apt sources, which mmdebstrap reads
    # as files), unless POSTEL_CLEAN_MIRROR names a mirror.
    set --
    if [ -n "$MIRROR" ]; then
        set -- "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main"
    else
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                /etc/apt/sources.list.d/*.sources; do
            [ -s "$f" ] && set -- "$@" "$f"
        done
        [ $# -gt 0 ] || die "no apt sources on this host; set POSTEL_CLEAN_MIRROR"
    fi
    # shellcheck disable=SC2016  # "$1" is for mmdebstrap's hook, not for this shell
    mmdebstrap --variant=minbase --include=make --mode=root --format=tar \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook="sync-in $DEBS /var/cache/apt/archives/" \
        --customize-hook="sync-out /var/cache/apt/archives $DEBS" \
        "$SUITE" "$TMPTAR" "$@"
    mv "$TMPTAR" "$TARBALL"
    TMPTAR=""
fi
phase_end "bootstrap"

# ---------------------------------------------------------------------------------------------
phase "unpack and clone"
ROOT=$(mktemp -d /var/tmp/postel-clean.XXXXXX)
chmod 755 "$ROOT"
tar -C "$ROOT" -xf "$TARBALL"
mkdir -p "$ROOT$(dirname "$SRC")" "$ROOT/var/cache/apt/archives"
git clone -q --no-hardlinks "$HERE" "$ROOT$SRC"
echo "test-clean: testing $(git -C "$ROOT$SRC" log -1 --format='%h %s')"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"      # for apt in step 3; 4 and 5 have no network
phase_end "unpack and clone"

# The first process of the fresh namespaces (it runs the host's sh, mount and ip): mount what
# a booted system has, bring up lo when the network namespace is new, then chroot.
#   $INNER ROOT net|lo CMD...
INNER=$(mktemp /var/tmp/postel-clean-inner.XXXXXX)
cat > "$INNER" <<'EOF'
#!/bin/sh
set -eu
R=$1 MODE=$2
shift 2
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=755,size=16m tmpfs "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9
mknod -m 666 "$R/dev/tty" c 5 0
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
if [ "$MODE" = net ]; then
    mount --bind "$DEBS" "$R/var/cache/apt/archives"
    chroot "$R" chown _apt:root /var/cache/apt/archives/partial 2>/dev/null || true
else
    ip link set lo up
    hostname "$(cat "$R/etc/hostname" 2>/dev/null || echo localhost)"
fi
exec chroot "$R" /bin/sh -c 'cd "$0" && exec "$@"' "$SRC" "$@"
EOF
chmod 755 "$INNER"

# in_root net|lo CMD...: run CMD in the root, in the clone, inside new mount and PID
# namespaces; "lo" adds new network, UTS and IPC namespaces (loopback only).
in_root() {
    if [ "$1" = net ]; then
        nsopts="--mount --pid --fork --kill-child"
    else
        nsopts="--mount --pid --fork --kill-child --net --uts --ipc"
    fi
    # shellcheck disable=SC2086
    run_child env -i PATH="$PATH_IN" HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" \
        DEBIAN_FRONTEND=noninteractive DEBS="$DEBS" SRC="$SRC" \
        unshare $nsopts "$INNER" "$ROOT" "$@"
}

# ---------------------------------------------------------------------------------------------
phase "make deps (network: Debian's archive)"
in_root net make deps
phase_end "make deps"

phase "make (make run's build, no network)"
in_root lo make -j2
phase_end "make"

phase "make test (loopback only)"
in_root lo make test
phase_end "make test"
