"""ETRN (RFC 1985): a client allowed to ask starts delivery of the mail queued for its
domain; a held message stays held; clients not allowed get 502; TURN stays refused."""
import os
import re
import subprocess

from helpers import BUILD

POSTEL = os.path.join(BUILD, "postel")
MSG = "Subject: etrn test\r\n\r\nqueued while the destination was down\r\n"


def postel_cmd(srv, *args):
    return subprocess.run([POSTEL, "-C", srv.config, *args], capture_output=True, text=True,
                          timeout=30)


def setup_pair(make_server, etrn=True):
    dest = make_server(extra=["local_domains = remote.test", "relay_networks ="], start=False)
    lines = ["relayhost = [127.0.0.1]:%d" % dest.port, "relay_networks = 127.0.0.0/8",
             "retry_min = 1h", "retry_max = 1h", "delay_warning_time = 0"]
    if etrn:
        lines.append("etrn_networks = 127.0.0.0/8")
    return make_server(extra=lines), dest


def queued_id(src, rcpt):
    r = src.send("alice@localhost", [rcpt], MSG)
    assert r.code == 250, r
    qid = re.search(r"queued as ([0-9A-F]+)", r.first).group(1)
    assert src.wait_log(r"%s to=<%s> .*status=deferred" % (qid, re.escape(rcpt)), 10)
    return qid


def test_etrn_starts_the_queue_for_a_domain(make_server):
    src, dest = setup_pair(make_server)
    queued_id(src, "bob@remote.test")
    dest.start()
    with src.client() as c:
        r = c.ehlo()
        assert "250-ETRN" in r.text
        r = c.cmd("ETRN remote.test")
        assert r.code == 253 and r.first.startswith("253 2.0.0 OK, 1 pending"), r
        r = c.cmd("ETRN nothing.test")
        assert r.code == 251, r
        r = c.cmd("ETRN #somequeue")
        assert r.code == 458, r
        assert c.cmd("TURN").code == 502
    mails = dest.maildir("bob", wait_for=1, timeout=10)
    assert len(mails) == 1 and "queued while the destination was down" in mails[0].text


def test_etrn_subdomains_and_held_destination(make_server):
    src, dest = setup_pair(make_server)
    qid = queued_id(src, "bob@remote.test")
    r = postel_cmd(src, "queue", "hold", qid)
    assert r.returncode == 0, r.stderr
    dest.start()
    with src.client() as c:
        c.ehlo()
        r = c.cmd("ETRN @test")
        # the held message is not started
        assert r.code == 251, r
    assert dest.maildir("bob") == []
    r = postel_cmd(src, "queue", "release", qid)
    assert r.returncode == 0, r.stderr
    with src.client() as c:
        c.ehlo()
        assert c.cmd("ETRN @test").code in (251, 253)
    assert len(dest.maildir("bob", wait_for=1, timeout=10)) == 1


def test_etrn_refused_without_permission(make_server):
    src, dest = setup_pair(make_server, etrn=False)
    with src.client() as c:
        r = c.ehlo()
        assert "ETRN" not in r.text
        assert c.cmd("ETRN remote.test").code == 502
