"""posteld and a real Postfix (Debian's package, a private instance per test: its own
config and queue directories, smtpd on 127.0.0.12 only): posteld delivers to Postfix,
Postfix refuses and posteld bounces, Postfix relays into posteld, and DSN requests cross
from one to the other and back.
"""
import re

import pytest

pytest.register_assert_rewrite("relayenv")

from relayenv import (IP, Client, Postfix, ensure_postfix, inject, make_msg,  # noqa: E402
                      reports, smtp_port, unfold)

pytest_plugins = ("relayenv",)      # fixtures: dns, mtas

ALICE = "alice@a.test"


@pytest.fixture(scope="module")
def postfix_installed():
    ensure_postfix()


@pytest.fixture
def postfix(postfix_installed):
    """postfix(port, **Postfix kwargs) -> a started private Postfix on 127.0.0.12."""
    made = []

    def make(port, **kw):
        pf = Postfix(IP["pf"], port, **kw)
        made.append(pf)
        pf.start()
        return pf
    yield make
    for pf in made:
        print("==== Postfix maillog\n%s" % pf.log[-6000:])
        pf.stop()


def test_posteld_delivers_to_postfix(dns, mtas, postfix):
    p = smtp_port([IP["pf"]])
    pf = postfix(p)
    m = mtas(dns=dns, smtp_port=p)
    content = make_msg("to-postfix", "Grüße an Postfix\r\n.dot line\r\nINTEROP-1\r\n",
                       to="carol@pf.test",
                       headers=("MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                                "Content-Transfer-Encoding: 8bit"))
    qid = inject(m, ALICE, ["carol@pf.test"], content, mail_params="BODY=8BITMIME")
    assert m.wait_log(r"%s to=<carol@pf\.test> relay=mx\.pf\.test\[127\.0\.0\.12\] delay=\d+s "
                      r"dsn=2\.0\.0 status=sent \(250 2\.0\.0 Ok: queued as \w+\)" % qid, 20)
    [got] = pf.maildir("carol", wait_for=1)
    assert got.startswith(b"Return-Path: <alice@a.test>\n")
    assert "Grüße an Postfix\n.dot line\nINTEROP-1\n".encode("utf-8") in got
    assert b"Subject: to-postfix" in got
    assert pf.wait_log(r"to=<carol@pf\.test>, relay=virtual, .*status=sent "
                       r"\(delivered to maildir\)")
    assert m.wait_removed(qid)


def test_postfix_refuses_a_recipient_and_posteld_bounces(dns, mtas, postfix):
    p = smtp_port([IP["pf"]])
    postfix(p)
    m = mtas(dns=dns, smtp_port=p)
    qid = inject(m, ALICE, ["nobody@pf.test", "carol@pf.test"], make_msg("pf-refuses"))
    assert m.wait_log(r"%s to=<nobody@pf\.test> relay=mx\.pf\.test\[127\.0\.0\.12\] .*dsn=5\.1\.1 "
                      r"status=bounced \(550 5\.1\.1 <nobody@pf\.test>: Recipient address "
                      r"rejected: User unknown in virtual mailbox table\)" % qid, 20)
    assert m.wait_log(r"%s to=<carol@pf\.test> .*status=sent" % qid)
    [rep] = reports(m)
    b = rep.rcpt("nobody@pf.test")
    assert b.get("Action") == "failed"
    assert b.get("Status") == "5.1.1"
    assert b.get("Remote-MTA") == "dns; mx.pf.test"
    assert unfold(b.get("Diagnostic-Code")) == (
        "smtp; 550 5.1.1 <nobody@pf.test>: Recipient address rejected: User unknown in "
        "virtual mailbox table")
    assert list(rep.actions()) == ["nobody@pf.test"]


def test_postfix_relays_into_posteld(dns, mtas, postfix):
    q = smtp_port([IP["pb"]])
    rcv = mtas(host=IP["pb"], port=q, hostname="mx.pb.test", domains=("pb.test",),
               users=("dave",), aliases=("postmaster: dave",), relay="", dns=dns)
    p = smtp_port([IP["pf"]])
    pf = postfix(p, relayhost="[%s]:%d" % (IP["pb"], q))
    with Client(pf.host, pf.port, timeout=20) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@pf.test>", 250)
        c.expect("RCPT TO:<dave@pb.test>", 250)
        c.expect("DATA", 354)
        c.send(make_msg("from-postfix", "INTEROP-2\r\n..leading dot\r\n", frm="carol@pf.test",
                        to="dave@pb.test") + b".\r\n")
        r = c.reply()
        assert r.code == 250, r
        c.cmd("QUIT")
    [got] = rcv.maildir("dave", wait_for=1, timeout=20)
    assert got.raw.startswith(b"Return-Path: <carol@pf.test>\nDelivered-To: dave@pb.test\n")
    assert "\nINTEROP-2\n.leading dot\n" in got.text
    assert re.search(r"Received: from pf\.test", got.text), got.text[:600]
    assert pf.wait_log(r"to=<dave@pb\.test>, relay=%s\[%s\]:%d, .*status=sent \(250 2\.0\.0 Ok: "
                       r"queued as [0-9A-F]{16}\)" % (re.escape(IP["pb"]), re.escape(IP["pb"]), q))


def test_dsn_request_crosses_to_postfix_and_its_report_comes_back(dns, mtas, postfix):
    """NOTIFY=SUCCESS and ORCPT go to Postfix (it offers DSN), so Postfix, not posteld,
    reports the delivery; its report reaches alice through posteld's SMTP server."""
    p = smtp_port([IP["pf"]])
    m = mtas(dns=dns, smtp_port=p, start=False)
    pf = postfix(p, relayhost="[127.0.0.1]:%d" % m.port)
    m.start()
    qid = inject(m, ALICE, ["carol@pf.test"], make_msg("dsn-to-postfix"),
                 mail_params="RET=HDRS ENVID=interop-env-1",
                 rcpt_params="NOTIFY=SUCCESS ORCPT=rfc822;carol@pf.test")
    assert pf.maildir("carol", wait_for=1)
    assert m.wait_removed(qid, 20)
    assert not re.search(r"%s sender notice" % qid, m.log)
    [rep] = reports(m, timeout=30)
    assert rep.per_message.get("Reporting-MTA") == "dns; pf.test"
    assert rep.per_message.get("Original-Envelope-Id") == "interop-env-1"
    b = rep.rcpt("carol@pf.test")
    assert b.get("Action") == "delivered"
    assert b.get("Status").startswith("2.")
    assert b.get("Original-Recipient") == "rfc822;carol@pf.test"
