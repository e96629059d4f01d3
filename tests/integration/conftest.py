"""Fixtures for the postel integration tests.

server            a posteld on a free 127.0.0.1 port with a temp spool and Maildirs; loopback
                  is trusted (the default). Extra config lines: @pytest.mark.postel_config(...)
untrusted_server  the same with "trusted_networks =" (empty) and greet_pause = 300ms, for the
                  per-address limit and greet-pause tests
make_server       a factory: make_server(extra=[...], trusted=True, start=True, **kw) for tests
                  that need more than one daemon or a special layout

Every daemon is stopped by PID at teardown: SIGTERM, then SIGKILL after a grace period. A
daemon that died on its own during a test, or that does not exit 0 on SIGTERM, fails that test.
Remote mail never leaves loopback: when posteld knows relayhost/dns_servers, the config points
them at 127.0.0.1 port 1 (helpers.LOOPBACK_OUTBOUND), so remote recipients stay deferred.

A program or module a test needs and that is missing is an error at the start of the session
(never a skip): scripts/deps.sh installs them all, and `make test-clean` proves that it does.
"""
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import POSTELD, Postel  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "postel_config(*lines): extra posteld config lines for the test")
    # an exception in a helper thread (a client in a concurrency test) fails the test
    config.addinivalue_line("filterwarnings",
                            "error::pytest.PytestUnhandledThreadExceptionWarning")


# What the tests run, and the Debian package (all in scripts/deps.sh) that provides it.
REQUIRED_PROGRAMS = [("swaks", "swaks"), ("openssl", "openssl"), ("s-nail", "s-nail"),
                     ("unbound", "unbound"), ("man", "man-db"), ("make", "make"),
                     ("mount", "mount"), ("postfix", "postfix"), ("postconf", "postfix"),
                     ("curl", "curl")]
# swaks only recommends its TLS modules; without them --tls says "TLS not available"
REQUIRED_PERL = [("Net::SSLeay", "libnet-ssleay-perl"), ("IO::Socket::SSL",
                                                           "libio-socket-ssl-perl")]


def _which(prog):
    return shutil.which(prog) or shutil.which(prog, path="/usr/sbin:/sbin")


def missing_dependencies():
    """The (what, package) pairs the tests need and this machine lacks."""
    missing = [(p, pkg) for p, pkg in REQUIRED_PROGRAMS if _which(p) is None]
    if os.environ.get("POSTEL_VALGRIND") == "1" and _which("valgrind") is None:
        missing.append(("valgrind", "valgrind"))
    if _which("perl") is None:
        missing.append(("perl", "perl"))
    else:
        for mod, pkg in REQUIRED_PERL:
            r = subprocess.run(["perl", "-M" + mod, "-e", "1"], capture_output=True,
                               timeout=30)
            if r.returncode != 0:
                missing.append(("perl module " + mod, pkg))
    return missing


def pytest_sessionstart(session):
    if not os.access(POSTELD, os.X_OK):
        raise pytest.UsageError("no posteld binary at %s: run make first" % POSTELD)
    missing = missing_dependencies()
    if missing:
        raise pytest.UsageError(
            "missing test dependencies: %s; run make deps (scripts/deps.sh installs %s)" %
            (", ".join(what for what, _ in missing),
             " ".join(sorted({pkg for _, pkg in missing}))))


def _extra_lines(request):
    lines = []
    for m in reversed(list(request.node.iter_markers("postel_config"))):
        lines += list(m.args)
    return lines


class _Servers:
    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.all = []

    def make(self, extra=(), trusted=True, start=True, **kw):
        base = str(self.tmp.mktemp("postel"))
        s = Postel(base, extra=extra, trusted=trusted, **kw)
        s.expect_down = False
        self.all.append(s)
        if start:
            s.start()
        return s

    def finish(self):
        problems = []
        for s in self.all:
            if s.proc is None:
                continue
            rc = s.proc.poll()
            if rc is not None and not getattr(s, "expect_down", False) and rc != 0 \
                    and not getattr(s, "_stopped", False):
                problems.append("posteld (pid %d) died during the test with status %s; log "
                                "tail:\n%s" % (s.proc.pid, rc, s.log[-2000:]))
            if s.proc.poll() is None:
                rc = s.stop(timeout=8.0)
                if rc != 0:
                    problems.append("posteld (pid %d) did not exit cleanly on SIGTERM: "
                                    "status %s; log tail:\n%s" % (s.proc.pid, rc, s.log[-2000:]))
        return problems


@pytest.fixture
def make_server(tmp_path_factory):
    servers = _Servers(tmp_path_factory)
    yield servers.make
    problems = servers.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(request, make_server):
    return make_server(extra=_extra_lines(request))


@pytest.fixture
def untrusted_server(request, make_server):
    return make_server(extra=_extra_lines(request), trusted=False, greet_pause="300ms")
