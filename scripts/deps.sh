#!/bin/sh
# Install the Debian packages postel builds and tests with, when any is missing.
set -e
PKGS="build-essential pkg-config libevent-dev libssl-dev libc-ares-dev libcmocka-dev
      libcrypt-dev clang libclang-rt-14-dev python3 python3-pytest swaks dnsmasq-base
      openssl procps iproute2 s-nail man-db valgrind unbound"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
