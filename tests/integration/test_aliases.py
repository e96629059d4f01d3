"""Aliases: resolution, one copy per mailbox, loops, :include:, refused file/pipe targets,
VRFY and EXPN."""
import re

import pytest

from helpers import msg, queue_id, run_posteld, wait_until


def send_one(server, rcpts, subject):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        for r in rcpts:
            c.expect("RCPT TO:<%s>" % r, 250)
        c.expect("DATA", 354)
        c.send(msg(subject) + ".\r\n")
        r = c.reply()
        assert r.code == 250, r
        return queue_id(r)


def test_postmaster_resolves_to_alice(server):
    send_one(server, ["postmaster@localhost"], "to postmaster")
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    assert "Delivered-To: alice@localhost\n" in m[0].text
    assert "\tfor <postmaster@localhost>;" in m[0].text
    assert server.wait_log(r"to=<postmaster@localhost> mailbox=alice ")


def test_root_resolves_to_alice(server):
    send_one(server, ["root@localhost"], "to root")
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1 and "Subject: to root" in m[0].text


def test_postmaster_without_alias_is_still_accepted(make_server):
    # postmaster must always be accepted (RFC 5321 4.5.1), even with no alias for it; where
    # it then goes is the alias table's business
    s = make_server(extra=["local_users = alice bob carol dave eve postmaster"], start=False)
    with open(s.config) as f:
        conf = f.read()
    assert "alias postmaster: alice\n" in conf
    with open(s.config, "w") as f:
        f.write(conf.replace("alias postmaster: alice\n", ""))
    s.start()
    with s.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<postmaster@localhost>", 250)
        c.expect("RCPT TO:<postmaster>", 250)
        c.expect("DATA", 354)
        c.send(msg("to postmaster, no alias") + ".\r\n")
        assert c.reply().code == 250
    # no alias: the mailbox of that name gets it, alice does not
    assert len(s.maildir("postmaster", wait_for=1)) == 1
    assert s.settle()
    assert s.maildir("alice") == []


@pytest.mark.postel_config("alias team: alice, bob", "alias all: team, carol, alice")
def test_mailbox_reached_twice_gets_one_copy(server):
    qid = send_one(server, ["alice@localhost", "team@localhost"], "twice")
    assert server.settle()
    assert len(server.maildir("alice")) == 1
    assert len(server.maildir("bob")) == 1
    qid2 = send_one(server, ["all@localhost", "team@localhost", "bob@localhost",
                             "Alice@localhost"], "many ways")
    assert server.settle()
    for u in ("alice", "bob", "carol"):
        got = [m for m in server.maildir(u) if "Subject: many ways" in m.text]
        assert len(got) == 1, (u, len(got))
    assert server.wait_log(r"%s removed" % qid)
    assert server.wait_log(r"%s removed" % qid2)


@pytest.mark.postel_config("alias team: alice, bob")
def test_alias_in_two_messages_gets_two_copies(server):
    send_one(server, ["team@localhost"], "first")
    send_one(server, ["team@localhost"], "second")
    assert len(server.maildir("alice", wait_for=2)) == 2
    assert len(server.maildir("bob", wait_for=2)) == 2


@pytest.mark.postel_config("alias fwd: someone@remote.example")
def test_alias_with_remote_target_stays_queued(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        # a non-relay client may write to a local alias that forwards off-host
        r = c.cmd("RCPT TO:<fwd@localhost>")
        assert r.first == "250 2.1.5 Ok", r
        c.expect("DATA", 354)
        c.send(msg("forward me") + ".\r\n")
        qid = queue_id(c.reply())
    # remote delivery cannot happen here (the test smarthost refuses connections): the
    # message for the remote target is deferred and kept in the queue
    assert server.wait_log(r"to=<someone@remote\.example> .*status=deferred")
    assert server.wait_log(qid)
    queued = [f for f in server.spool_files("queue") if not f.endswith(".st")]
    assert queued, server.log
    assert server.all_mail() == {}


@pytest.mark.postel_config("alias mixed: bob, someone@remote.example", "retry_min = 1s",
                           "retry_max = 1s")
def test_alias_mixed_local_remote_not_redelivered_on_retry(server):
    """bob's copy is delivered once; retries for the remote part must not deliver it again."""
    send_one(server, ["mixed@localhost"], "mixed alias")
    assert len(server.maildir("bob", wait_for=1)) == 1
    # wait for two more attempts at the remote part
    assert wait_until(lambda: len(re.findall(r"to=<someone@remote\.example> .*status=deferred",
                                             server.log)) >= 3, 15), server.log[-3000:]
    assert len(server.maildir("bob")) == 1, "bob got a copy on every retry"


@pytest.mark.postel_config("alias loopa: loopb", "alias loopb: loopa")
def test_alias_loop_is_handled(server):
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<loopa@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("loop") + ".\r\n")
        qid = queue_id(c.reply())
    # handled, not hanging: bounced (no mailbox behind the loop) and removed
    assert server.wait_log(r"%s to=<loopa@localhost> .*status=bounced" % qid)
    assert server.wait_log(r"%s removed" % qid)
    assert qid not in server.spool_files("queue")
    assert server.all_mail() == {}
    server.healthy()


@pytest.mark.postel_config("alias alice: alice, bob")
def test_self_reference_delivers_to_user(server):
    send_one(server, ["alice@localhost"], "self reference")
    assert server.settle()
    assert len(server.maildir("alice")) == 1
    assert len(server.maildir("bob")) == 1


@pytest.mark.postel_config("alias l1: l2", "alias l2: l3", "alias l3: carol")
def test_alias_chain(server):
    send_one(server, ["l1@localhost"], "chain")
    m = server.maildir("carol", wait_for=1)
    assert len(m) == 1 and "Delivered-To: carol@localhost" in m[0].text


def test_aliases_file_with_include(make_server, tmp_path):
    inc = tmp_path / "members.txt"
    inc.write_text("# members\nalice\n\nbob, carol\n")
    rel = tmp_path / "rel.txt"
    rel.write_text("dave\n")
    al = tmp_path / "aliases"
    al.write_text("# test aliases\nlist: :include:%s\nrellist: :include:rel.txt\n"
                  "staff:\n  eve,\n  alice\nquoted: \"bob\"@localhost\n" % inc)
    s = make_server(extra=["aliases_file = %s" % al])
    send_one(s, ["list@localhost"], "included")
    send_one(s, ["rellist@localhost"], "relative include")
    send_one(s, ["staff@localhost"], "continued")
    send_one(s, ["quoted@localhost"], "quoted target")
    assert s.settle()
    assert [m for m in s.maildir("alice") if "Subject: included" in m.text]
    assert [m for m in s.maildir("bob") if "Subject: included" in m.text]
    assert [m for m in s.maildir("carol") if "Subject: included" in m.text]
    assert [m for m in s.maildir("dave") if "Subject: relative include" in m.text]
    assert [m for m in s.maildir("eve") if "Subject: continued" in m.text]
    assert [m for m in s.maildir("alice") if "Subject: continued" in m.text]
    assert [m for m in s.maildir("bob") if "Subject: quoted target" in m.text]
    # the include file is read at delivery time: a change shows without a restart
    inc.write_text("dave\n")
    send_one(s, ["list@localhost"], "included again")
    assert s.settle()
    assert [m for m in s.maildir("dave") if "Subject: included again" in m.text]
    assert not [m for m in s.maildir("alice") if "Subject: included again" in m.text]


def test_aliases_file_and_inline_aliases_merge(make_server, tmp_path):
    al = tmp_path / "aliases"
    al.write_text("fromfile: bob\n")
    s = make_server(extra=["aliases_file = %s" % al, "alias inline: carol"])
    send_one(s, ["fromfile@localhost", "inline@localhost"], "merged")
    assert len(s.maildir("bob", wait_for=1)) == 1
    assert len(s.maildir("carol", wait_for=1)) == 1


# ---- refused targets -------------------------------------------------------------------

def write_conf(tmp_path, lines):
    p = tmp_path / "postel.conf"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


BASE = ["hostname = mx.test", "listen = 127.0.0.1:2", "spool_dir = /nonexistent/spool",
        "mail_dir = /nonexistent/mail", "local_domains = localhost",
        "local_users = alice bob"]


@pytest.mark.parametrize("target", ["/var/mail/x", "|/bin/cat", '"|/usr/bin/procmail -f-"',
                                    '"/tmp/file"', "alice, /tmp/f", "bob, |cmd"])
def test_file_and_pipe_targets_refused_in_aliases_file(tmp_path, target):
    al = tmp_path / "aliases"
    al.write_text("# header\nok: alice\nbad: %s\n" % target)
    conf = write_conf(tmp_path, BASE + ["aliases_file = %s" % al])
    r = run_posteld(["-n", "-f", conf])
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert "%s:3:" % al in r.stderr, r.stderr
    assert r.stderr.startswith("posteld: ")
    # the daemon itself refuses to start too
    r = run_posteld(["-f", conf])
    assert r.returncode == 78


@pytest.mark.parametrize("target", ["/var/mail/x", "|/bin/cat"])
def test_file_and_pipe_targets_refused_inline(tmp_path, target):
    conf = write_conf(tmp_path, BASE + ["# comment", "alias bad: %s" % target])
    r = run_posteld(["-n", "-f", conf])
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert "%s:8:" % conf in r.stderr, r.stderr


def test_include_file_with_pipe_target_is_not_run(make_server, tmp_path):
    """A :include: file is read at delivery time; a pipe target in it is refused then and
    nothing is executed."""
    marker = tmp_path / "pwned"
    inc = tmp_path / "inc.txt"
    inc.write_text("|/usr/bin/touch %s\n" % marker)
    s = make_server(extra=["alias evil: :include:%s" % inc])
    with s.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<evil@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("include pipe") + ".\r\n")
        qid = queue_id(c.reply())
    assert s.wait_log(r"%s to=<evil@localhost> .*status=bounced" % qid)
    assert not marker.exists()


# ---- VRFY / EXPN -----------------------------------------------------------------------

def test_vrfy_off(server):
    with server.client() as c:
        c.ehlo()
        for who in ("alice", "nobody", "<alice@localhost>", "postmaster"):
            r = c.cmd("VRFY " + who)
            assert r.code == 252 and r.first.startswith("252 2.1.5 Cannot VRFY user"), r
        r = c.cmd("VRFY")
        assert r.code == 501


@pytest.mark.postel_config("vrfy = on", "alias team: alice, bob")
def test_vrfy_on(server):
    with server.client() as c:
        c.ehlo()
        for who in ("alice", "Alice", "team", "postmaster", "root", "<bob@localhost>",
                    "bob@example.test"):
            r = c.cmd("VRFY " + who)
            assert r.code == 250 and r.first.startswith("250 2.1.5 "), (who, r)
        r = c.cmd("VRFY alice")
        assert "alice@localhost" in r.text
        r = c.cmd("VRFY nobody")
        assert r.code == 550 and r.first.startswith("550 5.1.1"), r
        r = c.cmd("VRFY <nobody@localhost>")
        assert r.code == 550, r
        r = c.cmd("VRFY someone@remote.example")
        assert r.code == 252, r


def test_expn_off(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("EXPN postmaster")
        assert r.code == 502 and r.first.startswith("502 5.5.1"), r


@pytest.mark.postel_config("expn = on", "alias team: alice, bob, far@remote.example")
def test_expn_on(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("EXPN team")
        assert r.code == 250
        assert len(r.lines) == 3
        assert r.lines[0].startswith("250-2.1.5 ") and "<alice@localhost>" in r.lines[0]
        assert r.lines[1].startswith("250-2.1.5 ") and "<bob@localhost>" in r.lines[1]
        assert r.lines[2].startswith("250 2.1.5 ") and "<far@remote.example>" in r.lines[2]
        r = c.cmd("EXPN alice")
        assert r.code == 250 and "<alice@localhost>" in r.text
        r = c.cmd("EXPN nobody")
        assert r.code == 550 and r.first.startswith("550 5.1.1"), r
        r = c.cmd("EXPN")
        assert r.code == 501, r


def test_mail_loop_is_stopped_by_the_hop_limit(make_server):
    """A message that has crossed too many hops (a forwarding loop between MTAs) is
    bounced with 5.4.6 instead of going round for ever (RFC 5321 6.3)."""
    srv = make_server(extra=["max_hops = 5"])
    hops = "".join("Received: from hop%d.test by hop%d.test; Sun, 1 Jan 2026 00:00:00 +0000\r\n"
                   % (i, i + 1) for i in range(5))
    r = srv.send("alice@localhost", ["bob@localhost"], hops + "Subject: loop\r\n\r\nx\r\n")
    assert r.code == 250, r
    assert srv.wait_log(r"to=<bob@localhost> status=bounced dsn=5\.4\.6", 10)
    assert srv.maildir("bob") == []
    bounce = srv.maildir("alice", wait_for=1, timeout=10)
    assert len(bounce) == 1 and "mail loop" in bounce[0].text
    # one hop fewer goes through (ours makes the fifth)
    ok = "".join(hops.splitlines(True)[:4])
    assert srv.send("alice@localhost", ["bob@localhost"], ok + "Subject: fine\r\n\r\nx\r\n").code == 250
    assert len(srv.maildir("bob", wait_for=1, timeout=10)) == 1
