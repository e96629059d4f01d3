"""Limits: errors in a row, timeouts, the greet pause, connection limits (total and per
address), recipients per message. Each limit gets a clear reply or a clean close, and the
server keeps serving other sessions."""
import re
import time

import pytest

from helpers import msg, queue_id, wait_until

QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as [0-9A-F]{16}$")


def open_tx(c, rcpt="alice@localhost"):
    c.ehlo()
    c.expect("MAIL FROM:<a@example.org>", 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    c.expect("DATA", 354)


def assert_nothing_delivered(server, needle=None):
    assert server.settle()
    if needle is None:
        assert server.all_mail() == {}
    else:
        assert not server.find_mail(needle)


# ---- errors in a row ------------------------------------------------------------------------

def test_too_many_errors_default(server):
    with server.client() as c:
        c.ehlo()
        for i in range(9):
            r = c.cmd("BOGUS %d" % i)
            assert r.code == 500, r
        c.send("BOGUS 9\r\n")
        r = c.reply()
        assert r.code == 500
        r = c.reply()
        assert r.code == 421 and r.first.startswith("421 4.7.0"), r
        assert c.wait_closed()
    server.healthy()


@pytest.mark.postel_config("max_errors = 3")
def test_too_many_errors_mixed_kinds(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"RCPT TO:<alice@localhost>\r\nMAIL FROM:bad\r\nNOOP\x00\r\nNOOP\r\n")
        rs = [c.reply(), c.reply(), c.reply()]
        assert [r.code for r in rs] == [503, 501, 500]
        r = c.reply()
        assert r.code == 421 and r.first.startswith("421 4.7.0"), r
        assert c.wait_closed()
        # the NOOP after the close was never answered
        assert c.buf == b""


@pytest.mark.postel_config("max_errors = 3")
def test_errors_reset_by_good_command(server):
    with server.client() as c:
        c.ehlo()
        for _ in range(5):
            assert c.cmd("BOGUS").code == 500
            assert c.cmd("BOGUS").code == 500
            c.expect("MAIL FROM:<a@example.org>", 250)
            c.expect("RSET", 250)
        assert c.cmd("NOOP").code == 250


@pytest.mark.postel_config("max_errors = 3")
def test_unknown_recipients_count_as_errors(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        assert c.cmd("RCPT TO:<guess1@localhost>").code == 550
        assert c.cmd("RCPT TO:<guess2@localhost>").code == 550
        c.send("RCPT TO:<guess3@localhost>\r\n")
        assert c.reply().code == 550
        r = c.reply()
        assert r.code == 421 and r.first.startswith("421 4.7.0"), r
        assert c.wait_closed()


# ---- timeouts; a stalled client does not block others ---------------------------------------

@pytest.mark.postel_config("timeout_command = 2s")
def test_command_timeout(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        # a second session works while the first one stalls
        server.healthy()
        r = c.reply(timeout=15)
        assert r.code == 421 and r.first.startswith("421 4.4.2"), r
        assert c.wait_closed()
    assert server.wait_log(r"timeout")
    server.healthy()


@pytest.mark.postel_config("timeout_command = 2s")
def test_command_timeout_before_helo(server):
    with server.client() as c:
        r = c.reply(timeout=15)
        assert r.code == 421, r
        assert c.wait_closed()


@pytest.mark.postel_config("timeout_data = 2s", "timeout_command = 60s")
def test_data_timeout(server):
    with server.client() as c:
        open_tx(c)
        c.send("Subject: stalled-data\r\n\r\nsome of the body\r\n")
        server.healthy()
        r = c.reply(timeout=15)
        assert r.code == 421 and r.first.startswith("421 4.4.2"), r
        assert c.wait_closed()
    server.healthy()
    assert_nothing_delivered(server, "stalled-data")


@pytest.mark.postel_config("timeout_data = 2s", "timeout_command = 60s")
def test_bdat_timeout(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.send("BDAT 1000 LAST\r\nSubject: stalled-bdat\r\n")
        r = c.reply(timeout=15)
        assert r.code == 421 and r.first.startswith("421 4.4.2"), r
        assert c.wait_closed()
    server.healthy()
    assert_nothing_delivered(server, "stalled-bdat")


@pytest.mark.postel_config("timeout_command = 3s")
def test_slow_but_active_client_is_not_timed_out(server):
    """The timeout is per read, not per session: a client that trickles stays."""
    with server.client() as c:
        c.ehlo()
        for _ in range(3):
            time.sleep(1.0)
            assert c.cmd("NOOP").code == 250
        c.expect("MAIL FROM:<a@example.org>", 250)


# ---- greet pause and early talkers ----------------------------------------------------------

def test_early_talker(untrusted_server):
    c = untrusted_server.client(greet=False)
    c.send("EHLO impatient.example\r\n")
    r = c.reply(timeout=5)
    assert r.code == 554 and r.first.startswith("554 5.5.0"), r
    assert c.wait_closed()
    c.close()
    assert untrusted_server.wait_log(r"talked before the greeting")
    # a patient client gets the greeting after the pause and is served
    with untrusted_server.client(greet=False) as p:
        assert p.no_reply(0.1)      # still pausing
        g = p.reply(timeout=5)
        assert g.first == "220 mx.test ESMTP postel"
        p.ehlo()
        p.expect("MAIL FROM:<a@example.org>", 250)
    untrusted_server.healthy()


def test_early_talker_pipelined_session(untrusted_server):
    """A client that writes a whole session before the greeting gets nothing delivered."""
    c = untrusted_server.client(greet=False)
    c.send("HELO spam\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
           "Subject: early-spam\r\n\r\nbuy\r\n.\r\nQUIT\r\n")
    r = c.reply(timeout=5)
    assert r.code == 554, r
    assert c.wait_closed()
    c.close()
    untrusted_server.healthy()
    assert_nothing_delivered(untrusted_server, "early-spam")


def test_trusted_client_that_does_not_wait_for_the_greeting(server):
    """Trusted clients have no greet pause and are not early-talker checked: a client that
    writes its session right after connect is served, every time (not depending on whether
    its bytes arrive before the server accepts)."""
    for i in range(30):
        with server.client(greet=False) as c:
            c.send("EHLO eager%d.test\r\nNOOP\r\nQUIT\r\n" % i)
            rs = c.replies(4)
            assert [r.code for r in rs] == [220, 250, 250, 221], (i, rs)


def test_trusted_client_gets_no_pause(make_server):
    s = make_server(extra=["greet_pause = 5s"])
    with s.client(greet=False) as c:
        g = c.reply(timeout=2)          # well under the 5 s pause
        assert g.code == 220


# ---- connection limits ----------------------------------------------------------------------

@pytest.mark.postel_config("max_connections_per_ip = 3")
def test_per_ip_limit(untrusted_server):
    s = untrusted_server
    held = [s.client() for _ in range(3)]
    try:
        for c in held:
            assert c.greeting.code == 220
        extra = s.client(greet=False)
        r = extra.reply(timeout=5)
        assert r.code == 421 and r.first.startswith("421 4.7.0"), r
        assert extra.wait_closed()
        extra.close()
        # the held sessions are still fine
        held[0].ehlo()
        held[0].expect("MAIL FROM:<a@example.org>", 250)
        # after one leaves, a new one gets in
        held[1].cmd("QUIT")
        held[1].close()

        def gets_in():
            c = s.client(greet=False)
            r = c.reply(timeout=5)
            if r.code == 220:
                held[1] = c
                return True
            c.close()
            return False
        assert wait_until(gets_in, 5, 0.1)
    finally:
        for c in held:
            c.close()


@pytest.mark.postel_config("max_connections_per_ip = 3")
def test_per_ip_limit_not_for_trusted(server):
    held = [server.client() for _ in range(6)]
    try:
        assert all(c.greeting.code == 220 for c in held)
    finally:
        for c in held:
            c.close()


@pytest.mark.postel_config("max_connections = 5")
def test_max_connections(server):
    held = [server.client() for _ in range(5)]
    try:
        assert all(c.greeting.code == 220 for c in held)
        extra = server.client(greet=False)
        r = extra.reply(timeout=5)
        assert r.code == 421 and r.first.startswith("421 4.7.0"), r
        assert extra.wait_closed()
        extra.close()
        held[0].ehlo()
        held.pop().cmd("QUIT")

        def gets_in():
            c = server.client(greet=False)
            r = c.reply(timeout=5)
            if r.code == 220:
                held.append(c)
                return True
            c.close()
            return False
        assert wait_until(gets_in, 5, 0.1)
    finally:
        for c in held:
            c.close()


@pytest.mark.postel_config("max_connections = 5")
def test_max_connections_untrusted(untrusted_server):
    held = [untrusted_server.client() for _ in range(5)]
    try:
        extra = untrusted_server.client(greet=False)
        r = extra.reply(timeout=5)
        assert r.code == 421 and r.first.startswith("421 4.7.0"), r
        extra.close()
    finally:
        for c in held:
            c.close()


# ---- recipients per message -----------------------------------------------------------------

def test_10000_rcpt_commands(server):
    """max_recipients (1000): the first 1000 are accepted, the rest get 452 4.5.3."""
    users = ["alice", "bob", "carol", "dave"]
    with server.client(timeout=60) as c:
        c.ehlo()
        c.expect("MAIL FROM:<flood@example.org>", 250)
        codes = []
        batch = 500
        for start in range(0, 10000, batch):
            c.send("".join("RCPT TO:<%s@localhost>\r\n" % users[i % 4]
                           for i in range(start, start + batch)))
            for _ in range(batch):
                r = c.reply(timeout=30)
                codes.append(r.code)
                if r.code == 452:
                    assert r.first.startswith("452 4.5.3"), r
        assert codes[:1000] == [250] * 1000
        assert codes[1000:] == [452] * 9000
        c.expect("DATA", 354)
        c.send(msg("ten thousand") + ".\r\n")
        r = c.reply(timeout=30)
        assert QUEUED.match(r.first), r
        c.expect("QUIT", 221)
    assert server.settle(30)
    for u in users:
        m = server.maildir(u)
        assert len(m) == 1, (u, len(m))
    assert server.wait_log(r"%s received .* nrcpt=1000 " % queue_id(r))


@pytest.mark.postel_config("max_recipients = 3")
def test_max_recipients_setting(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        for u in ("alice", "bob", "carol"):
            c.expect("RCPT TO:<%s@localhost>" % u, 250)
        r = c.cmd("RCPT TO:<dave@localhost>")
        assert r.code == 452 and r.first.startswith("452 4.5.3")
        c.expect("DATA", 354)
        c.send(msg("three") + ".\r\n")
        assert c.reply().code == 250
    assert server.settle()
    assert server.maildir("dave") == []
    assert all(len(server.maildir(u)) == 1 for u in ("alice", "bob", "carol"))
