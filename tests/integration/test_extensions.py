"""ESMTP extensions: PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, DSN, SMTPUTF8,
CHUNKING (BDAT); many recipients."""
import re

import pytest

from helpers import msg, queue_id

QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as [0-9A-F]{16}$")


# ---- PIPELINING ----------------------------------------------------------------------------

def test_pipelined_transaction_in_one_write(server):
    with server.client() as c:
        c.ehlo()
        c.send("MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
               "RCPT TO:<bob@localhost>\r\nRCPT TO:<carol@localhost>\r\nDATA\r\n")
        rs = c.replies(5)
        assert [r.first for r in rs] == ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                                         "250 2.1.5 Ok",
                                         "354 End data with <CR><LF>.<CR><LF>"]
        c.send(msg("pipelined") + ".\r\n")
        assert QUEUED.match(c.reply().first)
    for u in ("alice", "bob", "carol"):
        m = server.maildir(u, wait_for=1)
        assert len(m) == 1 and "Subject: pipelined" in m[0].text


def test_pipelined_whole_session_in_one_write(server):
    with server.client() as c:
        data = ("EHLO pipe.test\r\n"
                "MAIL FROM:<p1@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n" +
                msg("first of two") + ".\r\n" +
                "MAIL FROM:<p2@example.org>\r\nRCPT TO:<nobody@localhost>\r\n"
                "RCPT TO:<bob@localhost>\r\nDATA\r\n" +
                msg("second of two") + ".\r\n" +
                "NOOP\r\nQUIT\r\n")
        c.send(data)
        rs = c.replies(11)
        codes = [r.code for r in rs]
        assert codes == [250, 250, 250, 354, 250, 250, 550, 250, 354, 250, 250], rs
        assert rs[0].lines[0].startswith("250-mx.test Hello pipe.test")
        r = c.reply()
        assert r.code == 221
        id1, id2 = queue_id(rs[4]), queue_id(rs[9])
        assert id1 != id2
        assert c.wait_closed()
    a = server.maildir("alice", wait_for=1)
    b = server.maildir("bob", wait_for=1)
    assert len(a) == 1 and "Subject: first of two" in a[0].text and "id %s" % id1 in a[0].text
    assert len(b) == 1 and "Subject: second of two" in b[0].text and "id %s" % id2 in b[0].text


def test_pipelined_errors_keep_order(server):
    with server.client() as c:
        c.ehlo()
        c.send("RCPT TO:<alice@localhost>\r\nMAIL FROM:<a@example.org>\r\nFOO\r\n"
               "RCPT TO:<x@remote.example>\r\nRCPT TO:<alice@localhost>\r\nVRFY bob\r\n"
               "DATA\r\n")
        rs = c.replies(7)
        assert [r.code for r in rs] == [503, 250, 500, 554, 250, 252, 354]
        c.send(".\r\n")
        assert c.reply().code == 250


# ---- many recipients -----------------------------------------------------------------------

def test_100_recipients(make_server):
    users = ["u%03d" % i for i in range(90)] + ["v%d" % i for i in range(10)]
    extra = ["local_users = " + " ".join(users)]
    extra += ["alias list%d: v%d" % (i, i) for i in range(10)]
    s = make_server(extra=extra)
    rcpts = ["u%03d@localhost" % i for i in range(90)] + ["list%d@localhost" % i
                                                         for i in range(10)]
    with s.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<many@example.org>", 250)
        c.send("".join("RCPT TO:<%s>\r\n" % r for r in rcpts))
        rs = c.replies(100)
        assert all(r.code == 250 for r in rs)
        c.expect("DATA", 354)
        c.send(msg("one hundred") + ".\r\n")
        r = c.reply()
        assert QUEUED.match(r.first)
    assert s.settle(30)
    for u in users:
        m = s.maildir(u)
        assert len(m) == 1, u
        assert "Subject: one hundred" in m[0].text
    assert s.wait_log(r"%s received .* nrcpt=100 " % queue_id(r))


# ---- SIZE ----------------------------------------------------------------------------------

def test_size_advertised_default(server):
    with server.client() as c:
        assert "250-SIZE 10485760" in c.ehlo().lines


@pytest.mark.postel_config("message_size_limit = 100k")
def test_size_limits(server):
    with server.client() as c:
        r = c.ehlo()
        assert "250-SIZE 102400" in r.lines
        r = c.cmd("MAIL FROM:<a@example.org> SIZE=102401")
        assert r.code == 552 and r.first.startswith("552 5.3.4"), r
        c.expect("MAIL FROM:<a@example.org> SIZE=1000", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        big = "Subject: too big\r\n\r\n" + ("x" * 70 + "\r\n") * 1500 + ".\r\n"
        c.send(big)
        r = c.reply()
        assert r.code == 552 and r.first.startswith("552 5.3.4"), r
        # the session goes on; a message right at the limit is fine
        c.expect("MAIL FROM:<a@example.org> SIZE=102400", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("small enough") + ".\r\n")
        assert c.reply().code == 250
    assert server.settle()
    m = server.maildir("alice")
    assert len(m) == 1 and "Subject: small enough" in m[0].text
    assert not server.find_mail("too big")


@pytest.mark.postel_config("message_size_limit = 2000")
def test_size_limit_counts_crlf_octets(server):
    # The limit compares to the content in CRLF form (plus our Received header)
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send("Subject: just over\r\n\r\n" + "y\r\n" * 700 + ".\r\n")
        r = c.reply()
        assert r.code == 552 and r.first.startswith("552 5.3.4"), r
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send("Subject: under\r\n\r\n" + "y\r\n" * 100 + ".\r\n")
        assert c.reply().code == 250


def test_size_over_limit_large_content(server):
    """A message over 10 MB (the default) that is spooled in parts is still refused."""
    with server.client(timeout=60) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        line = ("z" * 98 + "\r\n").encode()
        chunk = line * 10000   # 1 MB
        c.send(b"Subject: eleven megabytes\r\n\r\n")
        for _ in range(11):
            c.send(chunk)
        c.send(b".\r\n")
        r = c.reply(timeout=60)
        assert r.code == 552 and r.first.startswith("552 5.3.4"), r
        assert c.cmd("NOOP").code == 250
    assert server.settle()
    assert server.all_mail() == {}


def test_large_message_under_limit_delivered_intact(server):
    body_lines = ["line %06d %s" % (i, "q" * 60) for i in range(60000)]   # ~4.3 MB
    with server.client(timeout=60) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org> SIZE=5000000", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(("Subject: big one\r\n\r\n" + "\r\n".join(body_lines) + "\r\n.\r\n").encode())
        r = c.reply(timeout=60)
        assert QUEUED.match(r.first), r
    m = server.maildir("bob", wait_for=1, timeout=20)
    assert len(m) == 1
    assert m[0].body() == "\n".join(body_lines) + "\n"


# ---- 8BITMIME -----------------------------------------------------------------------------

def test_8bitmime_content_delivered_intact(server):
    body = "Grüße aus Köln, ½ € ≠ $, naïve café\r\n\xe9t\xe9 raw latin-1?\r\n"
    raw = ("Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body.encode("utf-8") + \
        b"latin1 \xe9\xe0\xff bytes\r\n"
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org> BODY=8BITMIME", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(raw + b".\r\n")
        assert QUEUED.match(c.reply().first)
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    expect = raw.replace(b"\r\n", b"\n")
    assert m[0].raw.endswith(expect.split(b"\n\n", 1)[1])
    assert b"Content-Transfer-Encoding: 8bit\n" in m[0].raw


def test_body_7bit_and_bogus(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org> BODY=7BIT", 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<a@example.org> body=8bitmime", 250)
        c.expect("RSET", 250)
        r = c.cmd("MAIL FROM:<a@example.org> BODY=bogus")
        assert r.code == 501 and r.first.startswith("501 5.5.4"), r
        r = c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME")
        assert r.code in (501, 555), r
        r = c.cmd("MAIL FROM:<a@example.org> BODY=")
        assert r.code == 501, r


# ---- DSN -----------------------------------------------------------------------------------

def test_dsn_parameters_accepted(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org> RET=HDRS ENVID=abc+2Bdef", 250)
        c.expect("RCPT TO:<alice@localhost> NOTIFY=SUCCESS,FAILURE "
                 "ORCPT=rfc822;alice@localhost", 250)
        c.expect("RCPT TO:<bob@localhost> NOTIFY=NEVER", 250)
        c.expect("RCPT TO:<carol@localhost> NOTIFY=DELAY ORCPT=rfc822;carol+40x", 250)
        c.expect("DATA", 354)
        c.send(msg("dsn") + ".\r\n")
        assert QUEUED.match(c.reply().first)
        c.expect("MAIL FROM:<a@example.org> RET=FULL", 250)
        c.expect("RSET", 250)
    for u in ("alice", "bob", "carol"):
        assert len(server.maildir(u, wait_for=1)) == 1


@pytest.mark.parametrize("line", [
    "RCPT TO:<alice@localhost> NOTIFY=NEVER,SUCCESS",
    "RCPT TO:<alice@localhost> NOTIFY=SOMETIMES",
    "RCPT TO:<alice@localhost> NOTIFY=",
    "RCPT TO:<alice@localhost> ORCPT=rfc822;bad+zzxtext",
    "RCPT TO:<alice@localhost> ORCPT=noseparator",
    "RCPT TO:<alice@localhost> NOTIFY=SUCCESS NOTIFY=FAILURE",
])
def test_dsn_bad_rcpt_parameters(server, line):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        r = c.cmd(line)
        assert r.code == 501 and r.first.startswith("501 5.5.4"), (line, r)
        c.expect("RCPT TO:<alice@localhost>", 250)


@pytest.mark.parametrize("line", [
    "MAIL FROM:<a@example.org> ENVID=abc+zz",
    "MAIL FROM:<a@example.org> ENVID=abc+2b",
    "MAIL FROM:<a@example.org> ENVID=a=b",
    "MAIL FROM:<a@example.org> RET=MAYBE",
    "MAIL FROM:<a@example.org> RET=FULL RET=HDRS",
    "MAIL FROM:<a@example.org> ENVID=" + "x" * 101,
])
def test_dsn_bad_mail_parameters(server, line):
    with server.client() as c:
        c.ehlo()
        r = c.cmd(line)
        assert r.code == 501 and r.first.startswith("501 5.5.4"), (line, r)
        c.expect("MAIL FROM:<a@example.org>", 250)


# ---- SMTPUTF8 ------------------------------------------------------------------------------

@pytest.mark.postel_config("local_users = alice bob carol dave eve jörg")
def test_smtputf8(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<jösé@example.org>")
        assert r.code == 553 and r.first.startswith("553 5.6.7"), r
        c.expect("MAIL FROM:<a@example.org>", 250)
        r = c.cmd("RCPT TO:<jörg@localhost>")
        assert r.code == 553 and r.first.startswith("553 5.6.7"), r
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<jösé@example.org> SMTPUTF8", 250)
        c.expect("RCPT TO:<jörg@localhost>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send("Subject: utf8 envelope ✓\r\n\r\nhallo\r\n.\r\n")
        assert QUEUED.match(c.reply().first)
    assert server.settle()
    for u in ("jörg", "alice"):
        m = server.maildir(u)
        assert len(m) == 1, u
        assert m[0].text.startswith("Return-Path: <jösé@example.org>\n")
        assert "(postel) with UTF8SMTP id " in m[0].text
        assert "Subject: utf8 envelope ✓" in m[0].text


def test_smtputf8_single_recipient_received_for(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<ünï@example.org> SMTPUTF8", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("one utf8") + ".\r\n")
        assert c.reply().code == 250
    m = server.maildir("bob", wait_for=1)
    assert len(m) == 1 and "with UTF8SMTP id" in m[0].text and "\tfor <bob@localhost>;" in \
        m[0].text


def test_smtputf8_invalid_utf8_in_address(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<bad\xc3\x28seq@example.org> SMTPUTF8\r\n")
        r = c.reply()
        assert r.code == 501 and r.first.startswith("501 5.6.7"), r
        c.send(b"MAIL FROM:<over\xc0\xaflong@example.org> SMTPUTF8\r\n")
        r = c.reply()
        assert r.code == 501, r
        c.send(b"MAIL FROM:<bad\xff@example.org>\r\n")
        r = c.reply()
        assert r.code in (501, 553), r
        c.expect("MAIL FROM:<a@example.org>", 250)


def test_smtputf8_after_helo_is_refused(server):
    with server.client() as c:
        c.helo()
        r = c.cmd("MAIL FROM:<jösé@example.org> SMTPUTF8")
        assert r.code == 555, r


# ---- CHUNKING (BDAT) -----------------------------------------------------------------------

def bdat(c, data, last=False):
    if isinstance(data, str):
        data = data.encode()
    c.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
    return c.reply()


def test_bdat_chunks(server):
    parts = ["Subject: chunked\r\n", "\r\nfirst part, ", "second part\r\n.not stuffed\r\n",
             "..two dots stay\r\n.\r\nnot the end\r\n"]
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        total = 0
        for p in parts[:-1]:
            total += len(p)
            r = bdat(c, p)
            assert r.first == "250 2.0.0 Ok: %d octets received" % total, r
        r = bdat(c, parts[-1], last=True)
        assert QUEUED.match(r.first), r
        assert c.cmd("NOOP").code == 250
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    assert m[0].body() == "first part, second part\n.not stuffed\n..two dots stay\n.\n" \
                          "not the end\n"
    assert "with ESMTP id" in m[0].text


def test_bdat_single_last_chunk_pipelined(server):
    with server.client() as c:
        c.ehlo()
        content = msg("bdat one shot").encode()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@localhost>\r\nBDAT %d LAST\r\n"
               % len(content) + content + b"NOOP\r\n")
        rs = c.replies(4)
        assert [r.code for r in rs] == [250, 250, 250, 250]
        assert QUEUED.match(rs[2].first)
    m = server.maildir("bob", wait_for=1)
    assert len(m) == 1 and "Subject: bdat one shot" in m[0].text


def test_bdat_zero_last(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        assert bdat(c, "Subject: zero last\r\n\r\nbody\r\n").code == 250
        r = c.cmd("BDAT 0 LAST")
        assert QUEUED.match(r.first), r
        # a message that is only BDAT 0 LAST
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<carol@localhost>", 250)
        r = c.cmd("BDAT 0 LAST")
        assert QUEUED.match(r.first), r
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1 and m[0].text.endswith("Subject: zero last\n\nbody\n")
    assert len(server.maildir("carol", wait_for=1)) == 1


def test_bdat_without_final_crlf_gets_one(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        assert QUEUED.match(bdat(c, "Subject: no crlf\r\n\r\nend", last=True).first)
    m = server.maildir("alice", wait_for=1)
    assert m[0].text.endswith("\n\nend\n")


def test_data_after_bdat_is_503(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        assert bdat(c, "Subject: mixed\r\n").code == 250
        r = c.cmd("DATA")
        assert r.code == 503 and r.first.startswith("503 5.5.1"), r
        assert QUEUED.match(bdat(c, "\r\nbody\r\n", last=True).first)
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1 and m[0].text.endswith("Subject: mixed\n\nbody\n")


@pytest.mark.parametrize("setup", [[], ["MAIL FROM:<a@example.org>"]])
def test_bdat_before_rcpt_discards_chunk(server, setup):
    with server.client() as c:
        c.ehlo()
        for line in setup:
            c.expect(line, 250)
        # the chunk looks like commands; it must be read and thrown away, not executed
        chunk = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@localhost>\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply()
        assert r.code == 503 and r.first.startswith("503 5.5.1"), r
        assert c.cmd("NOOP").code == 250
        # the transaction is over: RCPT needs a new MAIL
        assert c.cmd("RCPT TO:<bob@localhost>").code == 503
    assert server.settle()
    assert server.all_mail() == {}


def test_bdat_bare_lf_normalized(server):
    """bare_lf = normalize (the default): a BDAT line ending in a bare LF is a line."""
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        r = bdat(c, "Subject: bare lf ok\r\n\r\nline one\nline two\r\n", last=True)
        assert r.code == 250, r
    [m] = server.maildir("alice", wait_for=1)
    assert m.text.endswith("\n\nline one\nline two\n"), m.text


@pytest.mark.postel_config("bare_lf = reject")
def test_bdat_bare_lf_rejected_at_last(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        r = bdat(c, "Subject: bare lf\r\n\r\nline one\nline two\r\n")
        assert r.code == 250, r     # not judged until the end
        r = bdat(c, "more\r\n", last=True)
        assert r.code == 554 and r.first.startswith("554 5.6.0"), r
        assert c.cmd("NOOP").code == 250
        c.expect("MAIL FROM:<a@example.org>", 250)
    assert server.settle()
    assert server.all_mail() == {}


@pytest.mark.parametrize("arg", ["", "abc", "-1", "5 FIRST", "5LAST", "99999999999999999999999"])
def test_bdat_syntax(server, arg):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        r = c.cmd(("BDAT " + arg).rstrip())
        assert r.code == 501 and r.first.startswith("501 5.5.4"), (arg, r)
        assert c.cmd("NOOP").code == 250


def test_bdat_large_chunks(server):
    chunk = ("c" * 998 + "\r\n") * 600   # 600 kB per chunk
    with server.client(timeout=60) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<dave@localhost>", 250)
        assert bdat(c, "Subject: big chunks\r\n\r\n").code == 250
        for _ in range(3):
            assert bdat(c, chunk).code == 250
        assert QUEUED.match(bdat(c, "tail\r\n", last=True).first)
    m = server.maildir("dave", wait_for=1, timeout=20)
    assert len(m) == 1
    assert m[0].body() == ("c" * 998 + "\n") * 1800 + "tail\n"


def test_bdat_crlf_split_across_chunks(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        assert bdat(c, "Subject: split\r\n\r\nfirst\r").first == \
            "250 2.0.0 Ok: 24 octets received"
        r = c.cmd("BDAT 0")
        assert r.first == "250 2.0.0 Ok: 24 octets received", r
        assert QUEUED.match(bdat(c, "\nsecond\r\n", last=True).first)
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1 and m[0].text.endswith("Subject: split\n\nfirst\nsecond\n")
