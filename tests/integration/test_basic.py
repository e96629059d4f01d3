"""Basic sessions: real clients (smtplib, swaks, raw sockets), every command and its replies,
sequence errors, paths, delivered file format, and the built-in configuration."""
import ctypes
import email
import email.message
import os
import re
import smtplib
import socket
import subprocess
import threading

import pytest

from helpers import HOSTNAME, POSTELD, Client, msg, queue_id, wait_until

ENH = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3} ")
EHLO_KEYWORDS = ["PIPELINING", "SIZE 10485760", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES",
                 "SMTPUTF8", "CHUNKING", "STARTTLS", "HELP"]


# ---- smtplib -----------------------------------------------------------------------------

def test_smtplib_sendmail_delivers(server):
    body = "From: a@example.org\r\nTo: alice@localhost\r\nSubject: smtplib test\r\n\r\nhi there\r\n"
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        assert s.ehlo()[0] == 250
        refused = s.sendmail("a@example.org", ["alice@localhost"], body)
        assert refused == {}
    mails = server.maildir("alice", wait_for=1)
    assert len(mails) == 1
    m = mails[0]
    assert m.text.startswith("Return-Path: <a@example.org>\nDelivered-To: alice@localhost\n"
                             "Received: from ")
    assert "Subject: smtplib test\n" in m.text
    assert m.text.endswith("\n\nhi there\n")
    assert "\r" not in m.text


def test_smtplib_send_message_two_recipients(server):
    em = email.message.EmailMessage()
    em["From"] = "sender@example.org"
    em["To"] = "alice@localhost, bob@localhost"
    em["Subject"] = "send_message test"
    em["Message-Id"] = "<send-message-1@example.org>"
    em.set_content("line one\n.leading dot\n..two dots\nlast\n")
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        assert s.send_message(em) == {}
    for user in ("alice", "bob"):
        mails = server.maildir(user, wait_for=1)
        assert len(mails) == 1, user
        t = mails[0].text
        assert "Delivered-To: %s@localhost\n" % user in t
        assert "Message-Id: <send-message-1@example.org>" in t
        # smtplib dot-stuffs; the stuffing is gone in the delivered file
        assert "\n.leading dot\n..two dots\nlast\n" in t
        # two recipients: no "for <...>" clause in the Received header
        assert "\tfor <" not in mails[0].header_block()
    assert server.settle()


def test_smtplib_data_reply_and_received_header(server):
    with smtplib.SMTP(server.host, server.port, local_hostname="client.example",
                      timeout=10) as s:
        s.ehlo()
        assert s.mail("from@example.org") == (250, b"2.1.0 Ok")
        assert s.rcpt("alice@localhost") == (250, b"2.1.5 Ok")
        code, text = s.data(msg("received header").encode())
        assert code == 250
        m = re.fullmatch(rb"2\.0\.0 Ok: queued as ([0-9A-F]{16})", text)
        assert m, text
        qid = m.group(1).decode()
    mail = server.maildir("alice", wait_for=1)[0]
    rx = (r"Received: from client\.example \(\[127\.0\.0\.1\]\)\n\tby mx\.test \(postel\) "
          r"with ESMTP id %s\n\tfor <alice@localhost>;\n\t\w{3}, \d{2} \w{3} \d{4} "
          r"\d{2}:\d{2}:\d{2} [+-]\d{4}\n" % qid)
    assert re.search(rx, mail.text), mail.text
    assert server.wait_log(r"%s received from=<from@example.org> size=\d+ nrcpt=1 "
                           r"client=\[127\.0\.0\.1\]" % qid)
    assert server.wait_log(r"%s to=<alice@localhost> mailbox=alice relay=local .*"
                           r"status=delivered file=" % qid)
    assert server.wait_log(r"%s removed" % qid)


def test_smtplib_refused_recipient(server):
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        refused = s.sendmail("a@example.org", ["alice@localhost", "nobody@localhost"],
                             msg("partial"))
        assert set(refused) == {"nobody@localhost"}
        assert refused["nobody@localhost"][0] == 550
        assert refused["nobody@localhost"][1].startswith(b"5.1.1 ")
    assert len(server.maildir("alice", wait_for=1)) == 1
    assert not os.path.exists(os.path.join(server.mail, "nobody"))


def test_smtplib_all_recipients_refused(server):
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("a@example.org", ["nobody@localhost"], msg("x"))
        # the session goes on
        assert s.noop()[0] == 250


# ---- swaks ---------------------------------------------------------------------------------

def swaks(server, *args, timeout=30):
    cmd = ["swaks", "--server", "%s:%d" % (server.host, server.port), "--timeout", "10"]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_swaks_default(server):
    r = swaks(server, "--to", "alice@localhost", "--from", "swaks@example.org",
              "--header", "Subject: swaks default")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1 and "Subject: swaks default" in m[0].text
    assert "Return-Path: <swaks@example.org>" in m[0].text


def test_swaks_pipelining_and_several_recipients(server):
    r = swaks(server, "--pipeline", "--to", "alice@localhost,bob@localhost,postmaster@localhost",
              "--from", "swaks@example.org", "--header", "Subject: swaks pipelined")
    assert r.returncode == 0, r.stdout + r.stderr
    # postmaster -> alice; alice is reached twice but gets one copy
    assert len(server.maildir("bob", wait_for=1)) == 1
    assert server.settle()
    assert len(server.maildir("alice")) == 1


def test_swaks_helo_protocol(server):
    r = swaks(server, "--protocol", "SMTP", "--to", "bob@localhost", "--helo", "old.client",
              "--header", "Subject: swaks helo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 Ok: queued as" in r.stdout  # no enhanced codes after HELO
    m = server.maildir("bob", wait_for=1)
    assert len(m) == 1
    assert re.search(r"Received: from old\.client \(\[127\.0\.0\.1\]\)\n\tby mx\.test "
                     r"\(postel\) with SMTP id ", m[0].text)


def test_swaks_body(server):
    r = swaks(server, "--to", "carol@localhost", "--body", "swaks body text",
              "--header", "Subject: swaks body")
    assert r.returncode == 0, r.stdout + r.stderr
    m = server.maildir("carol", wait_for=1)
    assert len(m) == 1 and "swaks body text" in m[0].text


def test_swaks_refused_recipient_exit_code(server):
    r = swaks(server, "--to", "nobody@localhost")
    assert r.returncode != 0
    assert "550 5.1.1" in r.stdout


# ---- greeting, EHLO, HELO ---------------------------------------------------------------

def test_greeting(server):
    with server.client() as c:
        assert c.greeting.lines == ["220 %s ESMTP postel" % HOSTNAME]


def test_ehlo_reply(server):
    with server.client() as c:
        r = c.ehlo("client.test")
        assert r.lines[0] == "250-%s Hello client.test" % HOSTNAME
        assert [ln[4:] for ln in r.lines[1:]] == EHLO_KEYWORDS
        assert all(ln.startswith("250-") for ln in r.lines[:-1])
        assert r.lines[-1] == "250 HELP"
        # AUTH only inside TLS (no password file here anyway)
        assert "AUTH" not in r.text


def test_helo_reply(server):
    with server.client() as c:
        r = c.helo("client.test")
        assert r.lines == ["250 %s" % HOSTNAME]


def test_ehlo_without_argument(server):
    with server.client() as c:
        r = c.cmd("EHLO")
        assert r.code == 501 and r.first.startswith("501 5.5.4")
        r = c.cmd("HELO")
        assert r.code == 501
        c.ehlo()


def test_ehlo_twice_resets_transaction(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.ehlo("again.test")
        # the transaction is gone
        r = c.cmd("RCPT TO:<alice@localhost>")
        assert r.code == 503 and r.first.startswith("503 5.5.1")
        c.expect("MAIL FROM:<a@example.org>", 250)


def test_commands_are_case_insensitive(server):
    with server.client() as c:
        c.expect("ehlo client.test", 250)
        c.expect("mail from:<a@example.org>", 250)
        c.expect("rCpT To:<alice@localhost>", 250)
        c.expect("data", 354)
        c.send(msg("lower case") + ".\r\n")
        assert c.reply().code == 250
    assert len(server.maildir("alice", wait_for=1)) == 1


# ---- every reply after EHLO carries an enhanced code; after HELO none ----------------------

def session_script(c):
    """Commands covering every reply kind; returns the replies (after EHLO/HELO)."""
    out = []
    for line in ["NOOP", "RSET", "VRFY alice", "EXPN team", "HELP", "FOO", "MAIL FROM:<>",
                 "MAIL FROM:<x@example.org>", "RCPT TO:<nobody@localhost>",
                 "RCPT TO:<x@remote.example>", "RCPT TO:<alice@localhost>", "BDAT x",
                 "RSET", "RCPT TO:<alice@localhost>", "DATA", "MAIL FROM:<a@example.org>",
                 "RCPT TO:<alice@localhost>", "DATA"]:
        out.append((line, c.cmd(line)))
    c.send("Subject: codes\r\n\r\nx\r\n.\r\n")
    out.append(("<end of data>", c.reply()))
    out.append(("TURN", c.cmd("TURN")))
    out.append(("QUIT", c.cmd("QUIT")))
    return out


def test_enhanced_codes_after_ehlo(server):
    with server.client() as c:
        c.ehlo()
        for line, r in session_script(c):
            if r.code == 354:
                continue
            for ln in r.lines:
                assert ENH.match(ln), "%s -> %r has no enhanced status code" % (line, ln)
                # the class of the enhanced code matches the reply class
                assert ln[4] == ln[0], (line, ln)


def test_no_enhanced_codes_after_helo(server):
    with server.client() as c:
        c.helo()
        for line, r in session_script(c):
            for ln in r.lines:
                assert not ENH.match(ln), "%s -> %r carries an enhanced code after HELO" % (
                    line, ln)
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    assert "(postel) with SMTP id " in m[0].text


def test_helo_session_exact_replies(server):
    with server.client() as c:
        c.helo("old.client")
        assert c.cmd("MAIL FROM:<a@example.org>").lines == ["250 Ok"]
        assert c.cmd("RCPT TO:<bob@localhost>").lines == ["250 Ok"]
        assert c.cmd("DATA").lines == ["354 End data with <CR><LF>.<CR><LF>"]
        c.send(msg("helo session") + ".\r\n")
        r = c.reply()
        assert re.fullmatch(r"250 Ok: queued as [0-9A-F]{16}", r.first), r
        assert c.cmd("NOOP").lines == ["250 Ok"]
        assert c.cmd("RSET").lines == ["250 Ok"]
        r = c.cmd("QUIT")
        assert r.code == 221 and not ENH.match(r.first)
        assert c.wait_closed()
    assert len(server.maildir("bob", wait_for=1)) == 1


def test_helo_rejects_esmtp_parameters(server):
    with server.client() as c:
        c.helo()
        r = c.cmd("MAIL FROM:<a@example.org> SIZE=100")
        assert r.code == 555, r
        r = c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME")
        assert r.code == 555, r
        c.expect("MAIL FROM:<a@example.org>", 250)
        r = c.cmd("RCPT TO:<alice@localhost> NOTIFY=SUCCESS")
        assert r.code == 555, r
        c.expect("RCPT TO:<alice@localhost>", 250)
        r = c.cmd("BDAT 4 LAST")
        assert r.code == 503, r
        c.send("abcd")
        assert c.cmd("NOOP").code == 250


# ---- every command ----------------------------------------------------------------------

def test_exact_replies_after_ehlo(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("NOOP").lines == ["250 2.0.0 Ok"]
        assert c.cmd("NOOP anything goes").lines == ["250 2.0.0 Ok"]
        assert c.cmd("RSET").lines == ["250 2.0.0 Ok"]
        assert c.cmd("MAIL FROM:<a@example.org>").lines == ["250 2.1.0 Ok"]
        assert c.cmd("RCPT TO:<alice@localhost>").lines == ["250 2.1.5 Ok"]
        assert c.cmd("DATA").lines == ["354 End data with <CR><LF>.<CR><LF>"]
        c.send(msg("exact") + ".\r\n")
        r = c.reply()
        assert re.fullmatch(r"250 2\.0\.0 Ok: queued as [0-9A-F]{16}", r.first), r
        assert len(r.lines) == 1
        r = c.cmd("QUIT")
        assert r.code == 221 and r.first.startswith("221 2.0.0 ")
        assert c.wait_closed()


def test_quit_closes(server):
    with server.client() as c:
        r = c.cmd("QUIT")
        assert r.code == 221
        assert c.wait_closed()


def test_help(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("HELP")
        assert r.code == 214 and len(r.lines) >= 2
        assert all(ln.startswith("214-") for ln in r.lines[:-1])
        assert r.lines[-1].startswith("214 ")
        r = c.cmd("HELP MAIL")
        assert r.code == 214


@pytest.mark.parametrize("verb", ["SEND FROM:<a@b>", "SOML FROM:<a@b>", "SAML FROM:<a@b>",
                                  "TURN", "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
                                  "ETRN example.org"])
def test_not_implemented_commands(server, verb):
    with server.client() as c:
        c.ehlo()
        r = c.cmd(verb)
        assert r.code == 502 and r.first.startswith("502 5.5.1"), r
        assert c.cmd("NOOP").code == 250


@pytest.mark.parametrize("verb", ["FOO", "MAILX FROM:<a@b>", " NOOP", "XYZZY plugh", "HELOX a"])
def test_unknown_verb(server, verb):
    with server.client() as c:
        c.ehlo()
        r = c.cmd(verb)
        assert r.code == 500 and r.first.startswith("500 5.5.1"), r
        assert c.cmd("NOOP").code == 250


def test_rset_and_data_argument_syntax(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("RSET now")
        assert r.code == 501 and r.first.startswith("501 5.5.4")
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        r = c.cmd("DATA now")
        assert r.code == 501 and r.first.startswith("501 5.5.4")
        c.expect("DATA", 354)
        c.send(".\r\n")
        assert c.reply().code == 250


# ---- sequence errors -------------------------------------------------------------------

def test_mail_before_helo(server):
    with server.client() as c:
        r = c.cmd("MAIL FROM:<a@example.org>")
        assert r.code == 503
        r = c.cmd("RCPT TO:<alice@localhost>")
        assert r.code == 503
        r = c.cmd("DATA")
        assert r.code == 503
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)


@pytest.mark.parametrize("script", [
    ["RCPT TO:<alice@localhost>"],                               # RCPT before MAIL
    ["DATA"],                                                    # DATA before MAIL
    ["MAIL FROM:<a@example.org>", "DATA"],                       # DATA before RCPT
    ["MAIL FROM:<a@example.org>", "MAIL FROM:<b@example.org>"],  # nested MAIL
    ["MAIL FROM:<a@example.org>", "RCPT TO:<alice@localhost>",
     "MAIL FROM:<b@example.org>"],                               # nested MAIL after RCPT
    ["MAIL FROM:<a@example.org>", "RCPT TO:<alice@localhost>", "RSET", "DATA"],
    ["MAIL FROM:<a@example.org>", "RCPT TO:<alice@localhost>", "RSET",
     "RCPT TO:<alice@localhost>"],
])
def test_bad_sequence(server, script):
    with server.client() as c:
        c.ehlo()
        for line in script[:-1]:
            assert c.cmd(line).code == 250
        r = c.cmd(script[-1])
        assert r.code == 503 and r.first.startswith("503 5.5.1"), (script, r)
        assert c.cmd("NOOP").code == 250
    assert server.settle()
    assert server.all_mail() == {}


def test_data_before_rcpt_keeps_transaction(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        assert c.cmd("DATA").code == 503
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("after 503") + ".\r\n")
        assert c.reply().code == 250
    assert len(server.maildir("alice", wait_for=1)) == 1


# ---- MAIL and RCPT arguments -------------------------------------------------------------

@pytest.mark.parametrize("line,code,enh", [
    ("MAIL FROM:a@example.org", 501, "5.5.4"),
    ("MAIL FROM", 501, "5.5.4"),
    ("MAIL TO:<a@example.org>", 501, "5.5.4"),
    ("MAIL FROM:<a@example.org", 501, None),
    ("MAIL FROM:<a b@example.org>", 501, "5.1.7"),
    ("MAIL FROM:<@example.org>", 501, "5.1.7"),
    ("MAIL FROM:<a@>", 501, "5.1.7"),
    ("MAIL FROM:<a@@example.org>", 501, "5.1.7"),
    ("MAIL FROM:<a@example..org>", 501, "5.1.7"),
    ("MAIL FROM:<a@example.org> FOO=bar", 555, "5.5.4"),
    ("MAIL FROM:<a@example.org> SIZE=abc", 501, "5.5.4"),
    ("MAIL FROM:<a@example.org> SIZE=1 SIZE=2", 501, "5.5.4"),
])
def test_mail_syntax_errors(server, line, code, enh):
    with server.client() as c:
        c.ehlo()
        r = c.cmd(line)
        assert r.code == code, (line, r)
        if enh:
            assert r.first.startswith("%d %s " % (code, enh)), (line, r)
        # no transaction was opened
        assert c.cmd("RCPT TO:<alice@localhost>").code == 503
        c.expect("MAIL FROM:<a@example.org>", 250)


@pytest.mark.parametrize("line,code,enh", [
    ("RCPT TO:alice@localhost", 501, "5.5.4"),
    ("RCPT FROM:<alice@localhost>", 501, "5.5.4"),
    ("RCPT TO:<alice@>", 501, "5.1.3"),
    ("RCPT TO:<alice localhost>", 501, "5.1.3"),
    ("RCPT TO:<>", 501, "5.1.3"),
    ("RCPT TO:<alice@localhost> FOO=1", 555, "5.5.4"),
    ("RCPT TO:<nobody@localhost>", 550, "5.1.1"),
    ("RCPT TO:<someone@remote.example>", 554, "5.7.1"),
])
def test_rcpt_errors(server, line, code, enh):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        r = c.cmd(line)
        assert r.code == code, (line, r)
        assert r.first.startswith("%d %s " % (code, enh)), (line, r)
        if code == 554:
            assert "Relay access denied" in r.text
        # the transaction is still open
        c.expect("RCPT TO:<alice@localhost>", 250)


def test_null_sender_and_space_after_colon(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM: <>", 250)
        c.expect("RCPT TO: <alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("bounce-like") + ".\r\n")
        assert c.reply().code == 250
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1 and m[0].text.startswith("Return-Path: <>\n")


def test_source_route_is_ignored(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<@relay.one,@relay.two:joe@three.example>", 250)
        c.expect("RCPT TO:<@ONE,@TWO:alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("source route") + ".\r\n")
        assert c.reply().code == 250
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    assert m[0].text.startswith("Return-Path: <joe@three.example>\n")
    assert "\tfor <alice@localhost>;" in m[0].text


def test_bare_postmaster_recipient(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<postmaster>", 250)
        c.expect("RCPT TO:<PostMaster>", 250)
        c.expect("DATA", 354)
        c.send(msg("to bare postmaster") + ".\r\n")
        assert c.reply().code == 250
    m = server.maildir("alice", wait_for=1)
    assert len(m) >= 1 and "Subject: to bare postmaster" in m[0].text
    assert server.settle()
    # both recipients resolve to the one mailbox alice: one copy
    assert len(server.maildir("alice")) == 1


def test_quoted_local_parts(server):
    with server.client() as c:
        c.ehlo()
        c.expect('MAIL FROM:<"john doe"@example.org>', 250)
        c.expect('RCPT TO:<"alice"@localhost>', 250)
        r = c.cmd('RCPT TO:<"no body"@localhost>')
        assert r.code == 550 and r.first.startswith("550 5.1.1")
        c.expect("DATA", 354)
        c.send(msg("quoted") + ".\r\n")
        assert c.reply().code == 250
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    assert m[0].text.startswith('Return-Path: <"john doe"@example.org>\n')


def test_address_literals(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<joe@[127.0.0.1]>", 250)
        r = c.cmd("RCPT TO:<alice@[127.0.0.1]>")
        assert r.code == 554 and r.first.startswith("554 5.7.1"), r
        r = c.cmd("RCPT TO:<alice@[IPv6:::1]>")
        assert r.code == 554 and r.first.startswith("554 5.7.1"), r
        r = c.cmd("RCPT TO:<alice@[300.1.1.1]>")
        assert r.code == 501, r
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<joe@[IPv6:2001:db8::1]>", 250)


@pytest.mark.postel_config("local_domains = localhost [127.0.0.1]")
def test_address_literal_listed_as_local(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<joe@example.org>", 250)
        c.expect("RCPT TO:<bob@[127.0.0.1]>", 250)
        c.expect("DATA", 354)
        c.send(msg("literal") + ".\r\n")
        assert c.reply().code == 250
    m = server.maildir("bob", wait_for=1)
    assert len(m) == 1 and "Delivered-To: bob@[127.0.0.1]\n" in m[0].text


def test_case_of_local_part_kept_lookup_ignores_it(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<Joe.Sender@Example.ORG>", 250)
        c.expect("RCPT TO:<Alice@LOCALHOST>", 250)
        c.expect("DATA", 354)
        c.send(msg("case") + ".\r\n")
        assert c.reply().code == 250
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    assert m[0].text.startswith("Return-Path: <Joe.Sender@Example.ORG>\n")
    assert "\tfor <Alice@LOCALHOST>;" in m[0].text
    assert server.wait_log(r"to=<Alice@LOCALHOST> mailbox=alice ")


def test_second_local_domain(server):
    r = server.send("a@example.org", ["dave@example.test"], msg("other domain"))
    assert r.code == 250
    m = server.maildir("dave", wait_for=1)
    assert len(m) == 1 and "Delivered-To: dave@example.test\n" in m[0].text


# ---- delivered content ------------------------------------------------------------------

def test_dot_stuffing_and_line_ends(server):
    body = ("Subject: dots\r\n\r\n..one dot\r\n...two dots\r\n.\tdot tab\r\nend.\r\n"
            "..\r\nx\r\n")
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(body + ".\r\n")
        assert c.reply().code == 250
    t = server.maildir("alice", wait_for=1)[0].text
    assert t.endswith("\n\n.one dot\n..two dots\n\tdot tab\nend.\n.\nx\n"), t
    assert "\r" not in t


def test_empty_message(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(".\r\n")
        r = c.reply()
        assert r.code == 250
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    # just the trace headers, and nothing after the date that ends Received
    assert re.fullmatch(r"Return-Path: <a@example\.org>\nDelivered-To: alice@localhost\n"
                        r"Received: from [^\n]+\n\tby mx\.test \(postel\) with E?SMTP id "
                        r"[0-9A-F]{16}(\n\tfor <alice@localhost>)?;\n\t[^\n]+\n", m[0].text), \
        m[0].text
    assert "Received: from " in m[0].text


def test_several_transactions_in_one_session(server):
    with server.client() as c:
        c.ehlo()
        ids = set()
        for i in range(5):
            c.expect("MAIL FROM:<a@example.org>", 250)
            c.expect("RCPT TO:<bob@localhost>", 250)
            c.expect("DATA", 354)
            c.send(msg("tx %d" % i) + ".\r\n")
            r = c.reply()
            assert r.code == 250
            ids.add(queue_id(r))
        assert len(ids) == 5
    m = server.maildir("bob", wait_for=5)
    assert sorted(int(re.search(r"Subject: tx (\d)", x.text).group(1)) for x in m) == \
        [0, 1, 2, 3, 4]


def test_ipv6_listener(make_server):
    probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        probe.bind(("::1", 0))
        port6 = probe.getsockname()[1]
    finally:
        probe.close()
    s = make_server(extra=[])
    # rewrite the listen line to both families and restart
    with open(s.config) as f:
        conf = f.read()
    conf = conf.replace("listen = 127.0.0.1:%d" % s.port,
                        "listen = 127.0.0.1:%d [::1]:%d" % (s.port, port6))
    with open(s.config, "w") as f:
        f.write(conf)
    s.restart()
    with Client("::1", port6) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("over ipv6") + ".\r\n")
        assert c.reply().code == 250
    m = s.maildir("alice", wait_for=1)
    assert len(m) == 1 and "([IPv6:::1])" in m[0].text


# ---- shutdown -----------------------------------------------------------------------------

def test_sigterm_says_421_to_open_sessions(server):
    c1 = server.client()
    c1.ehlo()
    c2 = server.client()
    c2.ehlo()
    c2.expect("MAIL FROM:<a@example.org>", 250)
    rc = server.stop()
    assert rc == 0
    for c in (c1, c2):
        r = c.reply()
        assert r.code == 421, r
        assert c.wait_closed()
        c.close()
    assert "shutting down" in server.log
    assert "postel stopped" in server.log


# ---- the built-in configuration -----------------------------------------------------------

CLONE_NEWNET = 0x40000000


def client_in_netns(pid, host, port):
    """A Client whose socket lives in the network namespace of process pid: a helper
    thread joins that namespace (setns affects only the calling thread) and connects; the
    socket stays in it when the thread ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}

    def connect():
        try:
            fd = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            out["c"] = Client(host, port)
        except BaseException as e:      # noqa: BLE001 - re-raised below
            out["e"] = e

    t = threading.Thread(target=connect)
    t.start()
    t.join(30)
    assert not t.is_alive(), "connecting in the namespace hung"
    if "e" in out:
        raise out["e"]
    return out["c"]


def test_builtin_config(tmp_path):
    # The built-in configuration listens on 127.0.0.1:2525: run the daemon in a network
    # namespace of its own (only its loopback, brought up here), so no port can clash.
    logf = open(tmp_path / "log", "wb")
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0"',
                             POSTELD], cwd=str(tmp_path), stdout=logf, stderr=logf,
                            stdin=subprocess.DEVNULL)
    logf.close()
    try:
        def up():
            return "postel started" in (tmp_path / "log").read_text() or proc.poll() is not None
        assert wait_until(up, 10)
        assert proc.poll() is None, (tmp_path / "log").read_text()
        with client_in_netns(proc.pid, "127.0.0.1", 2525) as c:
            assert c.greeting.code == 220
            c.ehlo()
            c.expect("MAIL FROM:<a@example.org>", 250)
            r = c.cmd("RCPT TO:<carol@localhost>")
            assert r.code == 550 and r.first.startswith("550 5.1.1"), r
            r = c.cmd("RCPT TO:<x@example.org>")
            assert r.code == 554 and r.first.startswith("554 5.7.1"), r
            c.expect("RCPT TO:<alice@localhost>", 250)
            c.expect("RCPT TO:<root@localhost>", 250)
            c.expect("DATA", 354)
            c.send(msg("builtin") + ".\r\n")
            assert c.reply().code == 250
            c.cmd("QUIT")
        new = tmp_path / "var" / "mail" / "alice" / "new"
        assert wait_until(lambda: new.is_dir() and len(os.listdir(new)) >= 1, 10)
        queue = tmp_path / "var" / "spool" / "queue"
        assert queue.is_dir()
        # delivered and off the queue: every copy there is to be is there
        assert wait_until(lambda: os.listdir(queue) == [], 10), os.listdir(queue)
        files = os.listdir(new)
        assert len(files) == 1  # alice and root -> alice: one copy
        assert "Subject: builtin" in (new / files[0]).read_text()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    assert proc.returncode == 0


def test_curl_upload_of_a_file_with_unix_line_ends(server, tmp_path):
    """curl --upload-file sends the file's LF line ends as they are: with bare_lf = normalize
    (the default) the message is accepted and stored line by line."""
    f = tmp_path / "mail.txt"
    f.write_bytes(b"From: script@example.org\nTo: alice@localhost\nSubject: from curl\n\n"
                  b"line one\n.dot line\nline three\n")
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "smtp://127.0.0.1:%d" % server.port,
                        "--mail-from", "script@example.org", "--mail-rcpt", "alice@localhost",
                        "--upload-file", str(f)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    [m] = server.maildir("alice", wait_for=1)
    assert "Subject: from curl\n" in m.text
    # curl ends the upload with CRLF.CRLF after the file's last LF: one empty line more
    assert m.text.endswith("\n\nline one\n.dot line\nline three\n\n"), m.text


@pytest.mark.postel_config("bare_lf = reject")
def test_curl_upload_with_bare_lf_reject(server, tmp_path):
    f = tmp_path / "mail.txt"
    f.write_bytes(b"Subject: refused\n\nbody\n")
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "smtp://127.0.0.1:%d" % server.port,
                        "--mail-from", "script@example.org", "--mail-rcpt", "alice@localhost",
                        "--upload-file", str(f)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stderr        # curl reports the 554 after its data
    assert server.settle()
    assert server.maildir("alice") == []
