"""Concurrency: many simultaneous sessions, each message accepted and delivered once."""
import re
import smtplib
import socket
import struct
import threading

import pytest

from helpers import Client, msg, queue_id, wait_for


def run_threads(n, target, timeout=120):
    barrier = threading.Barrier(n)
    results = [None] * n

    def wrap(i):
        try:
            barrier.wait(30)
            results[i] = target(i)
        except Exception as e:      # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "sessions still running"
    return results


def test_200_concurrent_sessions(server):
    users = ["alice", "bob", "carol", "dave", "eve"]

    def one(i):
        with Client(server.host, server.port, timeout=60) as c:
            c.ehlo("c%d.test" % i)
            c.expect("MAIL FROM:<s%d@example.org>" % i, 250)
            c.expect("RCPT TO:<%s@localhost>" % users[i % 5], 250)
            c.expect("DATA", 354)
            c.send(msg("concurrent %d" % i,
                       extra_headers=["Message-Id: <conc-%d@test>" % i]) + ".\r\n")
            r = c.reply(timeout=60)
            c.cmd("QUIT")
            return r

    results = run_threads(200, one)
    errors = [r for r in results if not hasattr(r, "code")]
    assert not errors, errors[:5]
    assert all(r.code == 250 for r in results), [r for r in results if r.code != 250][:5]
    ids = {queue_id(r) for r in results}
    assert len(ids) == 200, "queue ids are not unique"
    assert server.settle(60)
    seen = {}
    for u in users:
        files = server.maildir(u)
        assert len(files) == 40, (u, len(files))
        for m in files:
            mid = re.search(r"^Message-Id: <conc-(\d+)@test>$", m.text, re.M).group(1)
            assert int(mid) % 5 == users.index(u)
            seen[mid] = seen.get(mid, 0) + 1
    assert len(seen) == 200 and set(seen.values()) == {1}


def test_concurrent_smtplib_multi_recipient(server):
    def one(i):
        with smtplib.SMTP(server.host, server.port, timeout=60) as s:
            return s.sendmail("m%d@example.org" % i, ["alice@localhost", "bob@localhost"],
                              msg("multi %d" % i))

    results = run_threads(50, one)
    assert all(r == {} for r in results), [r for r in results if r != {}][:5]
    assert server.settle(60)
    assert len(server.maildir("alice")) == 50
    assert len(server.maildir("bob")) == 50


def test_concurrent_sessions_with_misbehaving_ones(server):
    """Good clients succeed while others send garbage, reset or stall at the same time."""

    def good(i):
        with Client(server.host, server.port, timeout=60) as c:
            r = c.send_message("g%d@example.org" % i, ["carol@localhost"], msg("good %d" % i))
            return r.code

    def bad(i):
        c = Client(server.host, server.port, timeout=10)
        kind = i % 3
        if kind == 0:
            c.send(b"\x00\xff garbage \r\n" * 50 + b"GET / HTTP/1.1\r\n")
        elif kind == 1:
            c.ehlo()
            c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<carol@localhost>\r\nDATA\r\n"
                   "Subject: half\r\n\r\npartial")
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            c.ehlo()        # then just leave without QUIT
        c.close()
        return "bad"

    results = run_threads(60, lambda i: good(i) if i % 2 == 0 else bad(i))
    goods = [r for i, r in enumerate(results) if i % 2 == 0]
    assert goods == [250] * 30, goods
    assert server.settle(30)
    got = server.maildir("carol")
    assert len(got) == 30
    assert not any("Subject: half" in m.text for m in got)
    server.healthy()


@pytest.mark.postel_config("max_connections_per_ip = 10")
def test_concurrent_untrusted_sessions_respect_limit(untrusted_server):
    """With per-address limit 10 and 30 simultaneous connection attempts, at most 10 are
    served at once; the rest get 421 4.7.0; nobody hangs."""
    s = untrusted_server
    gate = threading.Event()

    def one(i):
        c = Client(s.host, s.port, timeout=60, greet=False)
        try:
            r = c.reply(timeout=60)
            if r.code == 220:
                # hold the slot until everybody has an answer; the main thread always opens
                # the gate, this bound only keeps a broken run from hanging
                gate.wait(120)
            return r
        finally:
            c.close()

    results = []
    t = threading.Thread(target=lambda: results.extend(run_threads(30, one)))
    t.start()
    try:
        # everybody answered with 220 (held) or 421 (refused) before the gate opens
        wait_for(lambda: s.log.count("too many connections from") >= 20, 60,
                 lambda: "20 refusals in the log (have %d)" %
                 s.log.count("too many connections from"), 0.05)
    finally:
        gate.set()
    t.join(150)
    assert not t.is_alive()
    codes = sorted(r.code for r in results)
    assert codes.count(220) == 10, codes
    assert codes.count(421) == 20, codes
    assert all(r.first.startswith("421 4.7.0") for r in results if r.code == 421)
