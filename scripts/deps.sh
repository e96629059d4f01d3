#!/bin/sh
# Install the Debian packages postel builds and tests with, when any is missing. This list is
# complete for a minimal Debian 12 (`make test-clean` proves it): packages are installed
# without their Recommends, so whatever a test runs must be named here, e.g. swaks's TLS
# (Net::SSLeay, IO::Socket::SSL) or the Postfix that the interoperability tests talk to.
set -e
PKGS="build-essential pkg-config libevent-dev libssl-dev libc-ares-dev libcmocka-dev
      libcrypt-dev clang libclang-rt-14-dev python3 python3-pytest swaks
      libnet-ssleay-perl libio-socket-ssl-perl dnsmasq-base openssl procps iproute2 s-nail
      man-db valgrind unbound postfix curl strace"
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
case " $missing " in
*" postfix "*)
    # no system configuration and no system instance: the tests and the benchmark run
    # private instances of their own
    echo "postfix postfix/main_mailer_type select No configuration" |
        $SUDO debconf-set-selections ;;
esac
$SUDO apt-get update -q
# shellcheck disable=SC2086  # $missing is a list of names
$SUDO apt-get install -y -q --no-install-recommends $missing
