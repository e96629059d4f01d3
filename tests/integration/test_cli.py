"""The command line: sendmail (also by way of s-nail), mailq, newaliases and postel, against
real daemons over the control socket; the drop directory when no daemon runs.

Every program runs with POSTEL_CONF pointing at the daemon's configuration; sendmail, mailq
and newaliases are symlinks to build/postel in a temporary directory (argv[0] dispatch).
"""
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import threading

import pytest

from helpers import BUILD, ROOT, free_port, supported_settings, wait_for, wait_until
from relayenv import Report, SmtpSink, smtp_port

POSTEL = os.path.join(ROOT, BUILD, "postel") if not os.path.isabs(BUILD) else \
    os.path.join(BUILD, "postel")

EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_NOUSER = 64, 65, 66, 67
EX_UNAVAILABLE, EX_NOPERM = 69, 77

SENDER = "sender@example.test"


@pytest.fixture(scope="module")
def bins(tmp_path_factory):
    """A directory with sendmail, mailq and newaliases linked to build/postel."""
    if not os.access(POSTEL, os.X_OK):
        pytest.skip("no postel binary at %s: run make first" % POSTEL)
    d = tmp_path_factory.mktemp("bin")
    for name in ("sendmail", "mailq", "newaliases"):
        os.symlink(POSTEL, str(d / name))
    return d


def run(prog, args, server=None, input=None, timeout=30, env=None, **kw):
    """Run prog (a path, or one of the names in bins) with the daemon's configuration."""
    e = dict(os.environ)
    e.pop("POSTEL_CONF", None)
    e.pop("POSTEL_LOG", None)
    if server is not None:
        e["POSTEL_CONF"] = server.config
    if env:
        e.update(env)
    if isinstance(input, str):
        input = input.encode()
    r = subprocess.run([str(prog)] + list(args), input=input, capture_output=True,
                       timeout=timeout, env=e, **kw)
    r.out = r.stdout.decode("utf-8", "replace")
    r.err = r.stderr.decode("utf-8", "replace")
    return r


def sendmail(bins, args, server, input="", **kw):
    return run(bins / "sendmail", args, server, input=input, **kw)


def postel(args, server, **kw):
    return run(POSTEL, args, server, **kw)


def queue(server, timeout=10.0, pred=lambda q: True):
    """The queue as JSON (postel queue list --json), polled until pred(queue) holds."""
    res = []

    def probe():
        r = postel(["queue", "list", "--json"], server)
        assert r.returncode == 0, r.err
        res[:] = json.loads(r.out)
        return pred(res)

    wait_for(probe, timeout, lambda: "the queue to match %s; last: %r" %
             (getattr(pred, "__doc__", None) or "the condition", res), 0.1)
    return res


def deferred(q):
    """Every message had its first round, which is over, and left its recipients pending."""
    return q and all(not m["active"] and m["recipients"] and
                     all(rc["state"] == "pending" and rc["attempts"] >= 1
                         for rc in m["recipients"]) for m in q)


def in_order(lines, patterns):
    """Each regex matches a line, in this order (other lines may come between)."""
    i = 0
    for p in patterns:
        rx = re.compile(p)
        while i < len(lines) and not rx.search(lines[i]):
            i += 1
        assert i < len(lines), "no line matching %r after the earlier ones in:\n%s" % (
            p, "\n".join(lines))
        i += 1


def tagged(subject, body="hello\n", headers=()):
    return "".join(h + "\n" for h in headers) + "Subject: %s\n\n%s" % (subject, body)


# ---- sendmail: submission -------------------------------------------------------------------

def test_sendmail_delivers_and_adds_fields(bins, server):
    r = sendmail(bins, ["-f", SENDER, "-F", "Sally Sender", "alice@localhost"], server,
                 tagged("plain submission", "line 1\n..two dots\n"))
    assert r.returncode == 0, r.err
    assert r.out == "" and r.err == ""
    m = server.maildir("alice", wait_for=1)[0]
    h = m.header_block()
    assert m.text.startswith("Return-Path: <%s>\n" % SENDER)
    assert re.search(r"Received: from mx\.test \(local user \S+ \(uid \d+\)\)", h), h
    assert "From: Sally Sender <%s>\n" % SENDER in h
    assert re.search(r"\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}\n", h)
    assert re.search(r"\nMessage-ID: <[0-9A-F]{16}\.[0-9A-F]{8}@mx\.test>$", h)
    assert m.body() == "line 1\n..two dots\n"


def test_sendmail_keeps_existing_fields(bins, server):
    msg = ("From: Real <real@example.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
           "Message-ID: <given@example.test>\n" + tagged("kept"))
    r = sendmail(bins, ["-f", SENDER, "-F", "Ignored", "bob@localhost"], server, msg)
    assert r.returncode == 0, r.err
    h = server.maildir("bob", wait_for=1)[0].header_block()
    assert h.count("From: ") == 1 and "From: Real <real@example.test>" in h
    assert h.count("Date: ") == 1 and h.count("Message-ID:") == 1


def test_lone_dot_ends_input_unless_i(bins, server):
    text = "Subject: dots\n\nbefore\n.\nafter\n"
    assert sendmail(bins, ["-f", SENDER, "alice@localhost"], server, text).returncode == 0
    assert sendmail(bins, ["-oi", "-f", SENDER, "bob@localhost"], server, text).returncode == 0
    assert sendmail(bins, ["-i", "-f", SENDER, "carol@localhost"], server, text).returncode == 0
    assert server.maildir("alice", wait_for=1)[0].body() == "before\n"
    assert server.maildir("bob", wait_for=1)[0].body() == "before\n.\nafter\n"
    assert server.maildir("carol", wait_for=1)[0].body() == "before\n.\nafter\n"


def test_crlf_input_and_mbox_from_line(bins, server):
    text = "From someone Mon Jan  1 00:00:00 2024\r\nSubject: crlf\r\n\r\nbody\r\n"
    assert sendmail(bins, ["-f", SENDER, "dave@localhost"], server, text).returncode == 0
    m = server.maildir("dave", wait_for=1)[0]
    assert "From someone" not in m.text
    assert "\r" not in m.text and m.body() == "body\n"


def test_t_with_bcc(bins, server):
    msg = ("To: Alice Example <alice@localhost>, \"Bob, B.\" <bob@localhost>\n"
           "Cc: Team: carol@localhost (Carol);,\n undisclosed-recipients:;\n"
           "Bcc: dave@localhost\nSubject: with bcc\n\nbody\n")
    r = sendmail(bins, ["-t", "-f", SENDER, "eve@localhost"], server, msg)
    assert r.returncode == 0, r.err
    for user in ("alice", "bob", "carol", "dave", "eve"):
        mails = server.maildir(user, wait_for=1)
        assert len(mails) == 1, user
        assert "Bcc" not in mails[0].header_block(), user
        assert "To: Alice Example <alice@localhost>" in mails[0].text
        if user != "dave":
            assert "dave" not in mails[0].text, user


def test_t_without_recipients(bins, server):
    r = sendmail(bins, ["-t"], server, "Subject: nobody\n\nx\n")
    assert r.returncode == EX_USAGE
    assert "no recipients" in r.err


def test_t_bad_header(bins, server):
    r = sendmail(bins, ["-t"], server, "To: <alice@localhost\n\nx\n")
    assert r.returncode == EX_DATAERR
    assert "To: unbalanced <" in r.err


def test_no_recipients(bins, server):
    r = sendmail(bins, [], server, "Subject: x\n\n")
    assert r.returncode == EX_USAGE
    assert "no recipients" in r.err


def test_unknown_and_refused_options(bins, server):
    r = sendmail(bins, ["-Z", "alice@localhost"], server, "x\n")
    assert r.returncode == EX_USAGE
    assert r.err.strip() == "sendmail: unknown option -Z"
    r = sendmail(bins, ["-X", "/tmp/traffic", "alice@localhost"], server, "x\n")
    assert r.returncode == EX_USAGE and "not supported" in r.err
    r = sendmail(bins, ["-N", "sometimes", "alice@localhost"], server, "x\n")
    assert r.returncode == EX_USAGE
    # ignored sendmail flags are accepted
    r = sendmail(bins, ["-oem", "-odi", "-U", "-Am", "-L", "tag", "-h", "3", "-O", "X=1",
                        "-oi", "-f", SENDER, "eve@localhost"], server, tagged("ignored"))
    assert r.returncode == 0, r.err
    assert server.maildir("eve", wait_for=1)


def test_rejected_recipient(bins, server):
    r = sendmail(bins, ["-f", SENDER, "nosuchuser@localhost", "alice@localhost"], server,
                 tagged("partly rejected"))
    assert r.returncode == EX_NOUSER
    assert re.search(r"nosuchuser@localhost\.\.\. 55\d ", r.err), r.err
    assert server.maildir("alice", wait_for=1)
    r = sendmail(bins, ["-f", SENDER, "nosuchuser@localhost"], server, tagged("rejected"))
    assert r.returncode == EX_NOUSER
    assert "no recipient was accepted" in r.err


def test_dot_stuffing_round_trip(bins, server):
    """Lines that start with dots (a lone one too, with -i) arrive as they were written."""
    body = ".\n..\n.leading dot\n...three\nplain\n. \n"
    r = sendmail(bins, ["-i", "-f", SENDER, "carol@localhost"], server,
                 tagged("dots", body))
    assert r.returncode == 0, r.err
    assert server.maildir("carol", wait_for=1)[0].body() == body


FIXED_FIELDS = ("From: Fixed <sender@example.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
                "Message-ID: <fixed@example.test>\nSubject: sized\n\n")


def sized_text(wire):
    """A message that sendmail sends unchanged, wire octets long once LF becomes CRLF."""
    head = len(FIXED_FIELDS) + FIXED_FIELDS.count("\n")
    lines, left = [], wire - head
    while left > 0:
        n = min(70, left - 2)           # each line: n octets and CRLF
        if n < 1:
            lines[-1] += "y" * left      # the rest fits on the last line
            break
        lines.append("x" * n)
        left -= n + 2
    return FIXED_FIELDS + "".join(ln + "\n" for ln in lines)


@pytest.mark.postel_config("message_size_limit = 3000")
def test_size_declared_as_sent_and_checked_first(bins, server):
    """SIZE= is the message's CRLF octets, as the daemon counts them: a message exactly at
    the limit goes through. One octet more is refused by the client machine's SIZE check
    against the limit the daemon announced in EHLO, before any MAIL."""
    text = sized_text(3000)
    assert len(text) + text.count("\n") == 3000
    r = sendmail(bins, ["-f", SENDER, "dave@localhost"], server, text)
    assert r.returncode == 0, r.err
    assert server.maildir("dave", wait_for=1)[0].body().startswith("x" * 70 + "\n")
    r = sendmail(bins, ["-f", SENDER, "dave@localhost"], server, sized_text(3001))
    assert r.returncode == EX_DATAERR, r.err
    assert "message refused: message size exceeds the server's limit (3001 > 3000)" in r.err
    assert len(server.maildir("dave")) == 1


class FakeDaemon:
    """A control socket that answers SMTP as a script says: RCPT for an address starting
    with "later" gets a 4xx. Records what it received. Loopback only: a UNIX socket."""

    EHLO = (b"250-fake\r\n250-PIPELINING\r\n250-SIZE\r\n250-8BITMIME\r\n250-DSN\r\n"
            b"250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n")

    def __init__(self, path, ehlo=EHLO):
        self.path = path
        self.ehlo = ehlo
        self.got = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.sock.accept()
        conn.settimeout(20)
        with conn:
            buf = b""
            send = conn.sendall
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.got += chunk
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.rstrip(b"\r")
                    if line.startswith(b"SMTP"):
                        send(b"220 fake ESMTP\r\n")
                    elif line.startswith(b"EHLO"):
                        send(self.ehlo)
                    elif line.startswith(b"MAIL"):
                        send(b"250 2.1.0 ok\r\n")
                    elif line.startswith(b"RCPT TO:<later"):
                        send(b"451 4.2.0 mailbox busy, try later\r\n")
                    elif line.startswith(b"RCPT"):
                        send(b"250 2.1.5 ok\r\n")
                    elif line == b"DATA":
                        send(b"354 go ahead\r\n")
                    elif line == b"QUIT":
                        send(b"221 2.0.0 bye\r\n")
                        return
                    # anything else is message content: no reply until the dot
                    elif line == b".":
                        send(b"250 2.0.0 ok: queued as FAKE\r\n")

    def close(self):
        self.thread.join(25)
        self.sock.close()


def fake_sendmail(bins, server, tmp_path, args, text, **kw):
    """Run sendmail against a FakeDaemon(**kw); returns the result and the fake."""
    fake = FakeDaemon(str(tmp_path / "fake.sock"), **kw)
    conf = tmp_path / "fake.conf"
    with open(server.config) as f:
        conf.write_text(f.read() + "\ncontrol_socket = %s\n" % fake.path)
    r = run(bins / "sendmail", ["-C", str(conf)] + args, None, input=text)
    fake.close()
    return r, fake


def test_deferred_recipient_abandons_the_message(bins, server, tmp_path):
    """A 4xx for one recipient: the message is sent to nobody (the submitter may send it again
    later to all), with EX_TEMPFAIL; the refusals before it are reported."""
    r, fake = fake_sendmail(bins, server, tmp_path, ["-f", SENDER, "alice@localhost",
                            "later@localhost", "bob@localhost"], tagged("abandoned", "the text\n"))
    assert r.returncode == 75, r.err
    assert "later@localhost... 451 4.2.0 mailbox busy, try later\n" in r.err
    assert ("recipient <later@localhost> deferred: 451 4.2.0 mailbox busy, try later; "
            "message not sent") in r.err
    assert b"RCPT TO:<later@localhost>" in fake.got
    assert b"the text" not in fake.got and b"\r\n.\r\n" not in fake.got


def test_parameters_only_when_offered(bins, server, tmp_path):
    """MAIL and RCPT carry SIZE, BODY, RET, ENVID and NOTIFY only for a daemon that offers
    SIZE, 8BITMIME and DSN (RFC 1870, 6152, 3461); with them offered, all of them."""
    args = ["-f", SENDER, "-B", "8BITMIME", "-R", "hdrs", "-V", "env1", "-N", "failure",
            "alice@localhost"]
    text = tagged("params", "the text\n")
    r, fake = fake_sendmail(bins, server, tmp_path, args, text,
                            ehlo=b"250-fake\r\n250 ENHANCEDSTATUSCODES\r\n")
    assert r.returncode == 0, r.err
    assert b"MAIL FROM:<sender@example.test>\r\nRCPT TO:<alice@localhost>\r\n" in fake.got
    assert b"the text\r\n.\r\nQUIT\r\n" in fake.got
    os.unlink(fake.path)
    r, fake = fake_sendmail(bins, server, tmp_path, args, text)
    assert r.returncode == 0, r.err
    assert re.search(rb"MAIL FROM:<sender@example\.test> SIZE=\d+ BODY=8BITMIME RET=HDRS "
                     rb"ENVID=env1\r\nRCPT TO:<alice@localhost> NOTIFY=FAILURE\r\nDATA\r\n",
                     fake.got), fake.got


def test_eight_bit_and_utf8(bins, server):
    body = "Gr\u00fc\u00dfe aus K\u00f6ln\n"
    r = sendmail(bins, ["-f", SENDER, "alice@localhost"], server,
                 tagged("8bit", body).encode("utf-8"))
    assert r.returncode == 0, r.err
    m = server.maildir("alice", wait_for=1)[0]
    assert m.raw.endswith(body.encode("utf-8"))


def test_default_sender_is_the_user(bins, server):
    r = sendmail(bins, ["alice@localhost"], server, tagged("default sender"))
    assert r.returncode == 0, r.err
    user = pwd.getpwuid(os.getuid()).pw_name
    m = server.maildir("alice", wait_for=1)[0]
    # mx.test is not a local domain: addresses are qualified with the first local one
    assert m.text.startswith("Return-Path: <%s@localhost>\n" % user)
    assert re.search(r"\nFrom: .*<?%s@localhost>?\n" % re.escape(user), m.header_block())


def test_unqualified_recipient(bins, server):
    r = sendmail(bins, ["-f", SENDER, "bob"], server, tagged("unqualified"))
    assert r.returncode == 0, r.err
    assert "Delivered-To: bob@localhost" in server.maildir("bob", wait_for=1)[0].text


def test_config_option_C(bins, server):
    r = run(bins / "sendmail", ["-C", server.config, "-f", SENDER, "carol@localhost"],
            None, input=tagged("dash C"))
    assert r.returncode == 0, r.err
    assert server.maildir("carol", wait_for=1)


# ---- sendmail -v ----------------------------------------------------------------------------

def remote_pair(make_server, extra=()):
    """A remote posteld on 127.0.0.2 (domain remote.test, user bob) and a local one that
    sends every remote recipient there (relayhost)."""
    rport = free_port("127.0.0.2")
    rextra = ["listen = 127.0.0.2:%d" % rport, "local_domains = remote.test"]
    if "tls" in supported_settings():
        rextra.append("tls = off")      # the plain dialogue, as sendmail -v shows it
    remote = make_server(extra=rextra, port=rport, hostname="remote.test", users=["bob"])
    remote.host = "127.0.0.2"
    local = make_server(extra=["relayhost = [127.0.0.2]:%d" % rport] + list(extra))
    return local, remote


def test_verbose_remote_dialogue(bins, make_server):
    local, remote = remote_pair(make_server)
    r = sendmail(bins, ["-v", "-f", SENDER, "bob@remote.test"], local, tagged("verbose"),
                 timeout=60)
    assert r.returncode == 0, r.err
    lines = r.out.splitlines()
    in_order(lines, [
        r"^sendmail: submitted to posteld over .*/control: queued as [0-9A-F]{16}$",
        r"^bob@remote\.test\.\.\. Connecting to 127\.0\.0\.2\[127\.0\.0\.2\] via smtp\.\.\.$",
        r"^220 remote\.test ",
        r"^>>> EHLO mx\.test$",
        r"^250[ -]remote\.test",
        r"^>>> MAIL FROM:<sender@example\.test> SIZE=\d+",
        r"^>>> RCPT TO:<bob@remote\.test>",
        r"^>>> DATA$",
        r"^250 2\.1\.0 ",
        r"^250 2\.1\.5 ",
        r"^354 ",
        r"^>>> \.$",
        r"^250 2\.0\.0 .*queued as [0-9A-F]{16}$",
        r"^bob@remote\.test\.\.\. Sent \(.*queued as [0-9A-F]{16}\)$",
        r"^Closing connection to 127\.0\.0\.2\[127\.0\.0\.2\]$",
    ])
    # the Sent line repeats the text of the final 250, without its codes
    final = [ln for ln in lines if ln.startswith("250 2.0.0 ")][-1]
    assert "bob@remote.test... Sent (%s)" % final[len("250 2.0.0 "):] in lines
    assert remote.maildir("bob", wait_for=1)


def test_verbose_dsn_parameters_reach_the_wire(bins, make_server):
    local, remote = remote_pair(make_server)
    r = sendmail(bins, ["-v", "-N", "success,failure", "-R", "hdrs", "-V", "env-42",
                        "-f", SENDER, "bob@remote.test"], local, tagged("dsn params"),
                 timeout=60)
    assert r.returncode == 0, r.err
    mail = [ln for ln in r.out.splitlines() if ln.startswith(">>> MAIL ")]
    rcpt = [ln for ln in r.out.splitlines() if ln.startswith(">>> RCPT ")]
    assert mail and "RET=HDRS" in mail[0] and "ENVID=env-42" in mail[0], r.out
    assert rcpt and "NOTIFY=SUCCESS,FAILURE" in rcpt[0], r.out


def test_verbose_local(bins, server):
    r = sendmail(bins, ["-v", "-f", SENDER, "alice@localhost", "postmaster", "bob"], server,
                 tagged("verbose local"))
    assert r.returncode == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("sendmail: submitted to posteld over ")
    assert "alice@localhost... Delivered to the local mailbox" in lines
    assert "bob@localhost... Delivered to the local mailbox" in lines
    assert any(ln.startswith("postmaster@localhost... Delivered") for ln in lines), r.out
    assert server.maildir("alice", wait_for=1) and server.maildir("bob", wait_for=1)


# ---- sendmail -bs ---------------------------------------------------------------------------

def test_bs_script(bins, server):
    script = ("EHLO client.example\r\nMAIL FROM:<%s>\r\nRCPT TO:<bob@localhost>\r\n"
              "RCPT TO:<nobody@localhost>\r\nDATA\r\nSubject: via -bs\r\n\r\n.stuffed\r\n"
              ".\r\nQUIT\r\n" % SENDER)
    r = sendmail(bins, ["-bs"], server, script)
    assert r.returncode == 0, r.err
    replies = r.out.split("\r\n")
    assert replies[0] == "220 mx.test ESMTP postel"
    codes = [ln[:4] for ln in replies if ln and ln[3] == " "]
    assert codes == ["220 ", "250 ", "250 ", "250 ", "550 ", "354 ", "250 ", "221 "], r.out
    assert "queued as" in r.out
    m = server.maildir("bob", wait_for=1)[0]
    assert m.body() == "stuffed\n"
    assert "(local user " in m.header_block()


def test_bs_without_quit_still_answers(bins, server):
    r = sendmail(bins, ["-bs"], server, "EHLO x\r\nNOOP\r\n")
    assert r.returncode == 0, r.err
    assert r.out.startswith("220 ") and "\r\n250 2.0.0" in r.out, r.out


# ---- sendmail -bv, postel verify ------------------------------------------------------------

def test_bv_local_alias_remote(bins, make_server):
    local, remote = remote_pair(make_server)
    r = sendmail(bins, ["-bv", "alice@localhost", "postmaster", "bob@remote.test"], local)
    assert r.returncode == 0, r.out + r.err
    lines = r.out.splitlines()
    assert "alice@localhost... deliverable: mailbox alice" in lines
    assert "postmaster... deliverable: alias postmaster -> alice" in lines
    assert "bob@remote.test... deliverable: mailer smtp, relay 127.0.0.2 [127.0.0.2]" in lines
    # nothing was sent
    assert not local.spool_files("queue")
    assert remote.maildir("bob") == []
    r = postel(["verify", "bob"], local)
    assert r.returncode == 0 and "bob... deliverable: mailbox bob" in r.out


def test_bv_unknown_user(bins, server):
    r = sendmail(bins, ["-bv", "nosuchuser@localhost"], server)
    assert r.returncode == EX_NOUSER
    assert "nosuchuser@localhost... undeliverable: no such mailbox: nosuchuser" in r.out


# ---- mailq and the queue commands -----------------------------------------------------------

def submit_remote(bins, server, subject, sender=SENDER):
    """A message that defers (relayhost is a closed port or a refusing peer); returns its
    queue id."""
    r = sendmail(bins, ["-f", sender, "joe@remote.example", "ann@remote.example"], server,
                 tagged(subject))
    assert r.returncode == 0, r.err
    q = queue(server, pred=deferred)
    ids = [m["id"] for m in q]
    assert ids, "nothing queued"
    return ids[-1]


def test_mailq_after_deferral(bins, server):
    qid = submit_remote(bins, server, "deferred")
    r = run(bins / "mailq", [], server)
    assert r.returncode == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("-Queue ID-")
    assert re.match(r"^%s  +\d+ \w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2}  %s$" %
                    (qid, re.escape(SENDER)), lines[1]), lines[1]
    for who in ("joe@remote.example", "ann@remote.example"):
        assert any(re.match(r"^ {40,}%s \(deferred: 4\.\d\.\d .+\)$" % re.escape(who), ln)
                   for ln in lines), r.out
    assert re.match(r"^-- \d+ Kbytes in 1 Request\.$", lines[-1]), lines[-1]
    # the same table through sendmail -bp and postel queue list
    assert sendmail(bins, ["-bp"], server).out == r.out
    assert postel(["queue", "list"], server).out == r.out
    # JSON
    for args in (["--json"],):
        j = json.loads(run(bins / "mailq", args, server).out)
        assert [m["id"] for m in j] == [qid]
        assert j[0]["sender"] == SENDER
        assert {rc["address"] for rc in j[0]["recipients"]} == {"joe@remote.example",
                                                                "ann@remote.example"}
        assert all(rc["state"] == "pending" and rc["attempts"] >= 1
                   for rc in j[0]["recipients"])


def test_mailq_empty(bins, server):
    r = run(bins / "mailq", [], server)
    assert r.returncode == 0 and r.out == "Mail queue is empty\n"
    assert json.loads(run(bins / "mailq", ["--json"], server).out) == []


@pytest.fixture
def peer(make_server):
    """A daemon whose relayhost is a scripted peer on loopback that answers RCPT with 451
    until peer.accept is set. Yields (server, sink, accept)."""
    accept = threading.Event()
    sink = SmtpSink("127.0.0.1", smtp_port(),
                    rcpt=lambda c, t, a, ln: None if accept.is_set() else "451 4.3.0 not yet")
    try:
        s = make_server(extra=["relayhost = [127.0.0.1]:%d" % sink.port])
        yield s, sink, accept
    finally:
        sink.stop()


def rcpt_attempts(sink):
    """RCPT commands the peer has seen."""
    return sum(len(t.rcpt_lines) for t in sink.txns())


def attempts_at_least(qid, n):
    """The queue predicate: qid's round is over and its first recipient was tried n times."""
    def pred(q):
        return [m["id"] for m in q] == [qid] and not q[0]["active"] and \
            q[0]["recipients"][0]["attempts"] >= n
    pred.__doc__ = "%s tried %d times, no round running" % (qid, n)
    return pred


def test_hold_release_show_delete(bins, peer):
    server, sink, _ = peer
    qid = submit_remote(bins, server, "hold me")
    tried = rcpt_attempts(sink)
    assert tried == 2, sink.txns()
    r = postel(["queue", "hold", qid], server)
    assert r.returncode == 0 and r.out == "%s: held\n" % qid
    q = queue(server, pred=lambda q: q and q[0]["held"])
    assert q[0]["held"]
    assert re.search(r"^%s! " % qid, run(bins / "mailq", [], server).out, re.M)
    r = postel(["queue", "show", qid], server)
    assert r.returncode == 0
    assert "Subject: hold me\n" in r.out and "\tby mx.test (postel)" in r.out
    assert json.loads(postel(["queue", "show", qid, "--json"], server).out)["id"] == qid
    r = postel(["queue", "release", qid], server)
    assert r.returncode == 0 and r.out == "%s: released\n" % qid
    # released: tried again at once (the next retry would be minutes away)
    q = queue(server, pred=attempts_at_least(qid, 2))
    assert not q[0]["held"]
    assert rcpt_attempts(sink) == tried + 2, sink.txns()
    # a held message is not flushed
    r = postel(["queue", "hold", qid], server)
    assert r.returncode == 0 and r.out == "%s: held\n" % qid
    r = postel(["queue", "flush"], server)
    assert r.returncode == 0 and r.out.startswith("0 messages scheduled"), r.out
    r = postel(["queue", "delete", qid], server)
    assert r.returncode == 0 and r.out == "%s: deleted\n" % qid
    assert queue(server, pred=lambda q: q == []) == []
    assert wait_for(lambda: not server.spool_files("queue"), 5, "the queue file removed")
    r = postel(["queue", "hold", qid], server)
    assert r.returncode == EX_NOINPUT and "no such message" in r.err


def test_bounce(bins, server):
    qid = submit_remote(bins, server, "bounce me", sender="alice@localhost")
    r = postel(["queue", "bounce", qid], server)
    assert r.returncode == 0 and r.out == "%s: bounced\n" % qid
    queue(server, pred=lambda q: all(m["id"] != qid for m in q))
    # the sender gets the report, the original goes from the spool
    mails = server.maildir("alice", wait_for=1)
    assert len(mails) == 1, mails
    rep = Report(mails[0])
    assert mails[0].raw.startswith(b"Return-Path: <>")
    assert rep.actions() == {"joe@remote.example": "failed", "ann@remote.example": "failed"}
    assert "Subject: bounce me" in mails[0].text
    assert wait_for(lambda: not [n for n in server.spool_files("queue") if qid in n], 5,
                    "%s removed from queue/" % qid)


def test_flush(bins, peer):
    server, sink, accept = peer
    qid = submit_remote(bins, server, "flush me")
    tries = [1]

    def settled():
        """The round a flush started is over: one more attempt counted, seen by the peer."""
        tries[0] += 1
        queue(server, pred=attempts_at_least(qid, tries[0]))
        assert rcpt_attempts(sink) == 2 * tries[0], sink.txns()

    r = postel(["queue", "flush"], server)
    assert r.returncode == 0
    assert r.out == "1 message scheduled for delivery\n", r.out
    settled()
    r = postel(["queue", "flush", "remote.example"], server)
    assert r.returncode == 0
    assert r.out == "1 message scheduled for delivery to remote.example\n", r.out
    settled()
    r = postel(["queue", "flush", "elsewhere.example"], server)
    assert r.returncode == 0 and r.out.startswith("0 messages scheduled"), r.out
    for args in (["-q"], ["-qRremote.example"], ["-qR", "remote.example"]):
        r = sendmail(bins, args, server)
        assert r.returncode == 0 and r.out == "" and r.err == "", (args, r.err)
        settled()
    # the flush of elsewhere.example tried nothing: every attempt is accounted for above
    assert rcpt_attempts(sink) == 2 * tries[0]
    # the peer takes it now: a flush delivers it at once, and it leaves the queue
    accept.set()
    r = postel(["queue", "flush"], server)
    assert r.returncode == 0 and r.out == "1 message scheduled for delivery\n", r.out
    got = wait_for(lambda: sink.accepted(), 15, "the flushed message at the peer")
    assert len(got) == 1 and sorted(got[0].rcpts) == ["ann@remote.example",
                                                      "joe@remote.example"], got
    assert b"Subject: flush me" in got[0].data
    assert queue(server, pred=lambda q: q == []) == []


def test_newaliases_status_version_help(bins, server):
    r = run(bins / "newaliases", [], server)
    assert r.returncode == 0 and "configuration reloaded" in r.out, r.err
    r = sendmail(bins, ["-bi"], server)
    assert r.returncode == 0 and "configuration reloaded" in r.out
    r = postel(["reload"], server)
    assert r.returncode == 0 and "configuration reloaded" in r.out
    r = postel(["status"], server)
    assert r.returncode == 0
    keys = [ln.split(" ", 1)[0] for ln in r.out.splitlines()]
    assert "queue" in keys and "uptime" in keys
    r = postel(["--version"], None)
    assert r.returncode == 0 and re.match(r"^postel \d", r.out)
    r = postel(["--help"], None)
    assert r.returncode == 0 and "queue list" in r.out
    r = postel(["frobnicate"], None)
    assert r.returncode == EX_USAGE and "unknown command frobnicate" in r.err


def test_check_config(server):
    r = postel(["check-config", "-f", server.config], None)
    assert r.returncode == 0 and "hostname = mx.test" in r.out
    r = postel(["check-config"], server)      # POSTEL_CONF
    assert r.returncode == 0 and "hostname = mx.test" in r.out
    r = postel(["check-config", "-f", "/nonexistent/postel.conf"], None)
    assert r.returncode == 78


def test_log(bins, server):
    r = sendmail(bins, ["-v", "-f", SENDER, "alice@localhost"], server, tagged("logged"))
    qid = re.search(r"queued as ([0-9A-F]{16})", r.out).group(1)
    assert server.wait_log(r"%s removed" % qid)
    r = postel(["log", "-l", server.logfile, qid], None)
    assert r.returncode == 0
    lines = r.out.splitlines()
    assert lines and all(qid in ln for ln in lines)
    assert any("received from=<%s>" % SENDER in ln for ln in lines)
    r = postel(["log", qid], None, env={"POSTEL_LOG": server.logfile})
    assert r.returncode == 0 and r.out.splitlines() == lines
    r = postel(["log", "-l", server.logfile, "FFFFFFFFFFFFFFFF"], None)
    assert r.returncode == 1 and "no log lines" in r.err


def test_no_daemon_errors(bins, make_server):
    s = make_server(start=False)
    r = run(bins / "mailq", [], s)
    assert r.returncode == EX_UNAVAILABLE
    assert "cannot connect to posteld" in r.err and "is posteld running?" in r.err
    r = sendmail(bins, ["-bs"], s, "QUIT\r\n")
    assert r.returncode == EX_UNAVAILABLE and r.out.startswith("421 ")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a command as another user")
def test_permission_denied(bins, make_server):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    # a socket and configuration the other user can reach
    pub = tempfile.mkdtemp(prefix="postel-cli-")
    try:
        os.chmod(pub, 0o755)
        sock = os.path.join(pub, "control")
        s = make_server(extra=["control_socket = %s" % sock])
        conf = os.path.join(pub, "postel.conf")
        shutil.copy(s.config, conf)
        os.chmod(conf, 0o644)
        qid = submit_remote(bins, s, "not yours")

        def as_nobody():
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)

        env = {"POSTEL_CONF": conf}
        r = run(POSTEL, ["queue", "hold", qid], None, env=env, preexec_fn=as_nobody)
        assert r.returncode == EX_NOPERM, (r.out, r.err)
        assert "permission denied" in r.err
        r = run(POSTEL, ["queue", "list", "--json"], None, env=env, preexec_fn=as_nobody)
        assert r.returncode == 0 and json.loads(r.out)[0]["id"] == qid
    finally:
        shutil.rmtree(pub, ignore_errors=True)


# ---- mail clients ---------------------------------------------------------------------------

def test_python_subprocess_pipe(bins, server):
    p = subprocess.Popen([str(bins / "sendmail"), "-t", "-oi"], stdin=subprocess.PIPE,
                         env=dict(os.environ, POSTEL_CONF=server.config))
    p.communicate(b"From: script@example.test\nTo: bob@localhost\nSubject: from python\n\n"
                  b"hello\n.\nstill here\n", timeout=30)
    assert p.returncode == 0
    m = server.maildir("bob", wait_for=1)[0]
    assert m.body() == "hello\n.\nstill here\n"
    assert m.text.startswith("Return-Path: <")


def test_s_nail(bins, server, tmp_path):
    snail = shutil.which("s-nail")
    if snail is None:
        pytest.fail("s-nail is not installed (scripts/deps.sh installs it)")
    env = {"HOME": str(tmp_path), "MAILRC": "/dev/null"}
    r = run(snail, ["-:/", "-Smta=%s" % (bins / "sendmail"), "-s", "from s-nail",
                    "carol@localhost"], server, input="hello from s-nail\n", env=env)
    assert r.returncode == 0, r.err
    m = server.maildir("carol", wait_for=1)[0]
    assert "Subject: from s-nail\n" in m.header_block()
    assert "User-Agent: s-nail" in m.header_block()
    assert m.body() == "hello from s-nail\n"


# ---- the drop directory ---------------------------------------------------------------------

def test_maildrop_without_daemon_then_pickup(bins, make_server):
    s = make_server(start=False)
    r = sendmail(bins, ["-v", "-f", SENDER, "alice@localhost"], s, tagged("dropped"))
    assert r.returncode == 0, r.err
    assert "posteld is not running" in r.out
    m = re.search(r"message left in (\S+/maildrop/([0-9A-F]{16}));", r.out)
    assert m, r.out
    path = m.group(1)
    assert os.path.exists(path)
    st = os.stat(os.path.dirname(path))
    assert stat.S_IMODE(st.st_mode) == 0o1733
    with open(path, "rb") as f:
        head = f.read()
    assert head.startswith(b"postel-envelope 1\nid %s\n" % m.group(2).encode())
    assert b"\nrcpt alice@localhost local 0 -\nend\nSubject: dropped\n" in head
    # quietly, without -v
    r = sendmail(bins, ["-f", SENDER, "bob@localhost"], s, tagged("dropped quietly"))
    assert r.returncode == 0 and r.out == "" and r.err == ""
    # the daemon picks both up when it starts
    s.start()
    assert s.maildir("alice", wait_for=1, timeout=15)
    assert s.maildir("bob", wait_for=1, timeout=15)
    assert wait_until(lambda: os.listdir(os.path.join(s.spool, "maildrop")) == [], 15)
    assert "dropped" in s.maildir("alice")[0].text

