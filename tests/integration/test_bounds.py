"""What one remote client can make the daemon hold: memory, descriptors and spool files.

Each case measures the running daemon (RSS from /proc, its open descriptors, files in the
spool) while a client misbehaves, and fails when it grows past a small bound:
- replies piled up for a client that never reads them: plaintext, after STARTTLS (the TLS
  filter drains into the socket buffer under it), and on implicit TLS;
- input sent while a failed AUTH's delayed 535 is pending, plaintext and TLS;
- a BDAT chunk big enough to be written to the spool, then the transaction dropped by RSET,
  QUIT, EHLO or STARTTLS: the file and its descriptor go, and the session still works.
Every socket is on 127.0.0.1; every send loop is bounded in bytes and time.
"""
import os
import socket
import ssl
import threading
import time

import pytest

from helpers import free_port, msg, wait_until
from trusthelp import TClient, client_ctx, make_passwd

MiB = 1024 * 1024
# What a misbehaving client may cost the daemon at most, whatever it sends. The daemon caps
# queued replies at 256 KiB and input at 64 KiB per layer; the rest is allocator slack.
GROWTH_MAX = 24 * MiB


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def flood(sock, chunk, total, seconds):
    """Send chunk repeatedly from a thread until total octets went out, the peer stops
    reading (a send blocks for 1 s) or seconds pass. Returns (thread, counter dict)."""
    st = {"sent": 0, "error": None}

    def run():
        deadline = time.monotonic() + seconds
        sock.settimeout(1.0)
        try:
            while st["sent"] < total and time.monotonic() < deadline:
                sock.sendall(chunk)
                st["sent"] += len(chunk)
        except (socket.timeout, ssl.SSLError, OSError) as e:
            st["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, st


def peak_growth(pid, base, thread, seconds):
    """Sample the daemon's RSS until the flood thread ends (or seconds pass) and a little
    after; returns the largest growth over base."""
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, rss(pid) - base)
        if not thread.is_alive():
            break
        time.sleep(0.05)
    for _ in range(10):     # what was read last is processed a moment later
        time.sleep(0.05)
        peak = max(peak, rss(pid) - base)
    return peak


HELP = b"HELP\r\n" * 10000          # 60 KB of pipelined commands, ~5 MB of replies


def _never_read(server, sock, label):
    pid = server.pid
    base = rss(pid)
    t, st = flood(sock, HELP, 12 * MiB, 20.0)
    grown = peak_growth(pid, base, t, 25.0)
    t.join(5.0)
    assert st["sent"] > 0
    assert grown < GROWTH_MAX, "%s: daemon grew %.1f MiB while %d octets of HELP went " \
        "unread" % (label, grown / MiB, st["sent"])


def test_replies_for_a_client_that_never_reads_plaintext(server):
    c = TClient(server.host, server.port)
    try:
        c.ehlo()
        _never_read(server, c.sock, "plaintext")
    finally:
        c.close()
    assert server.healthy()


def test_replies_for_a_client_that_never_reads_after_starttls(server):
    c = TClient(server.host, server.port)
    try:
        c.ehlo()
        c.starttls(ehlo=True)
        _never_read(server, c.sock, "STARTTLS")
    finally:
        c.close()
    assert server.healthy()


def test_replies_for_a_client_that_never_reads_implicit_tls(make_server, tmp_path):
    p3 = free_port()
    server = make_server(extra=["smtps_listen = 127.0.0.1:%d" % p3,
                                "auth_passwd_file = %s" % make_passwd(str(tmp_path / "pw"))])
    c = TClient(server.host, p3, greet=False)
    try:
        c.wrap(client_ctx())
        c.reply()
        c.ehlo()
        _never_read(server, c.sock, "implicit TLS")
    finally:
        c.close()
    assert server.healthy()


# ---- input while a failed AUTH's reply waits --------------------------------------------------

def _flood_during_penalty(server, c, label):
    pid = server.pid
    # a first failure sets the penalty: the next failure's 535 waits a second or more
    r = c.auth_plain("alice", "wrong-1")
    assert r.code == 535, r
    base = rss(pid)
    c.send("AUTH PLAIN %s\r\n" % "AGFsaWNlAHdyb25nLTI=")    # \0alice\0wrong-2
    t, st = flood(c.sock, b"NOOP" * 16384 + b"\r\n", 200 * MiB, 4.0)
    grown = peak_growth(pid, base, t, 8.0)
    t.join(5.0)
    assert grown < GROWTH_MAX, "%s: daemon grew %.1f MiB while %d octets arrived during " \
        "the AUTH penalty" % (label, grown / MiB, st["sent"])


def test_input_during_auth_penalty_tls(make_server, tmp_path):
    server = make_server(extra=["auth_passwd_file = %s" % make_passwd(str(tmp_path / "pw"))])
    c = TClient(server.host, server.port)
    try:
        c.ehlo()
        c.starttls(ehlo=True)
        _flood_during_penalty(server, c, "STARTTLS")
    finally:
        c.close()


def test_input_during_auth_penalty_implicit_tls(make_server, tmp_path):
    p3 = free_port()
    server = make_server(extra=["smtps_listen = 127.0.0.1:%d" % p3,
                                "auth_passwd_file = %s" % make_passwd(str(tmp_path / "pw"))])
    c = TClient(server.host, p3, greet=False)
    try:
        c.wrap(client_ctx())
        c.reply()
        c.ehlo()
        _flood_during_penalty(server, c, "implicit TLS")
    finally:
        c.close()


def test_input_during_auth_penalty_plaintext(make_server, tmp_path):
    server = make_server(extra=["auth_passwd_file = %s" % make_passwd(str(tmp_path / "pw")),
                                "auth_plaintext = on"])
    c = TClient(server.host, server.port)
    try:
        c.ehlo()
        _flood_during_penalty(server, c, "plaintext")
    finally:
        c.close()


# ---- a spilled BDAT chunk, then the transaction dropped ----------------------------------------

CHUNK = 600 * 1024          # over the 256 KiB held in memory: written to incoming/


def _spill(c):
    assert c.cmd("MAIL FROM:<big@example.org>").code == 250
    assert c.cmd("RCPT TO:<alice@localhost>").code == 250
    body = (b"X" * 998 + b"\r\n") * (CHUNK // 1000)
    c.send(b"BDAT %d\r\n" % len(body) + body)
    r = c.reply(timeout=20)
    assert r.code == 250, r


def _settled_incoming(server, n_before):
    """incoming/ empty and the daemon's descriptors back to n_before (the discard runs on a
    worker, so wait for it)."""
    return wait_until(lambda: not server.spool_files("incoming") and
                      nfds(server.pid) <= n_before, 10.0)


def _next_message_works(server, c, tag):
    r = c.send_message("after@example.org", ["alice@localhost"], msg(tag), ehlo=False)
    assert r.code == 250, "the next message on the same session: %s" % r
    assert wait_until(lambda: server.find_mail("Subject: %s" % tag), 10.0)


@pytest.mark.parametrize("how", ["RSET", "EHLO", "MAIL", "QUIT", "STARTTLS", "close"])
def test_spilled_bdat_chunk_released_when_the_transaction_ends(server, how):
    pid = server.pid
    sessions = 5
    # warm up: directory descriptors the spool and the Maildirs keep open
    assert server.healthy()
    server.send("warm@example.org", ["alice@localhost"], msg("warm-up"))
    assert server.settle()
    n0 = nfds(pid)
    for i in range(sessions):
        c = TClient(server.host, server.port)
        try:
            c.ehlo()
            _spill(c)
            assert server.spool_files("incoming"), "the chunk was not spilled to the spool"
            if how == "RSET":
                assert c.cmd("RSET").code == 250
            elif how == "EHLO":
                assert c.ehlo().code == 250
            elif how == "MAIL":
                # a new MAIL inside a BDAT transaction is refused; the old one stays open
                assert c.cmd("MAIL FROM:<x@example.org>").code == 503
                assert c.cmd("RSET").code == 250
            elif how == "QUIT":
                assert c.cmd("QUIT").code == 221
                assert c.wait_closed(5.0)
            elif how == "STARTTLS":
                c.starttls(ehlo=True)
            else:
                c.sock.close()
            if how in ("RSET", "EHLO", "MAIL", "STARTTLS"):
                n_open = n0 + 1         # this session's socket
                assert _settled_incoming(server, n_open), \
                    "after %s: incoming=%s fds=%d (want <= %d)" % (
                        how, server.spool_files("incoming"), nfds(pid), n_open)
                _next_message_works(server, c, "after-%s-%d" % (how, i))
        finally:
            c.close()
    assert _settled_incoming(server, n0), "after %d sessions ending with %s: incoming=%s " \
        "fds=%d (before: %d)" % (sessions, how, server.spool_files("incoming"), nfds(pid), n0)
