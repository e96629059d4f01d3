"""The sending side of posteld: routing through a real DNS server (unbound), the SMTP client
against scripted test servers and other posteld instances, retries, expiry, delivery reports,
forwarding and crash recovery (issue: "The sending MTA").

The sending posteld is "mta.test" on 127.0.0.1 with the local domain a.test (users alice and
bob; postmaster is alice) and relays for loopback clients. The mail hosts of zones/test.zone
are on 127.0.0.2 and up, all on the port each test picks (smtp_port). relayenv.py has the
machinery.
"""
import base64
import re
import socket
import time

import pytest

pytest.register_assert_rewrite("relayenv")

from relayenv import (DEFAULT_EXT, DROP, IP, Client, ext_without, inject,  # noqa: E402
                      make_msg, max_open, reports, seq, smtp_port, unfold, wait_until)
from trusthelp import make_cert  # noqa: E402

pytest_plugins = ("relayenv",)      # fixtures: dns, sinks, mtas

ALICE = "alice@a.test"


def sender(mtas, dns, port, extra=(), **kw):
    """The sending posteld, its mail hosts on `port`."""
    return mtas(dns=dns, smtp_port=port, extra=list(extra), **kw)


def sent_line(qid, rcpt, host, ip, dsn="2.0.0"):
    return (r"%s to=<%s> relay=%s\[%s\] delay=\d+s dsn=%s status=sent \(" %
            (qid, re.escape(rcpt), re.escape(host), re.escape(ip), re.escape(dsn)))


def no_report_for(m, qid, timeout=15.0):
    """Wait until qid is done; True if it queued no report (reports are queued before the
    queue file is removed, so the log is complete then)."""
    assert m.wait_removed(qid, timeout), "%s not removed; log:\n%s" % (qid, m.log[-3000:])
    return not re.search(r"%s sender notice" % qid, m.log)


# ---------------------------------------------------------------------------------------------
# A plain delivery: the commands, the content, the log


def test_delivery_commands_content_and_log(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    content = make_msg("plain-delivery", "line one\r\n.leading dot\r\nline three\r\n")
    qid = inject(m, ALICE, ["x@b.test"], content, mail_params="RET=HDRS ENVID=env-plain",
                 rcpt_params="NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@b.test")
    [t] = s.wait_accepted(1)
    c = s.conns[0]
    assert c.wait_closed()
    assert c.lines[0] == "EHLO mta.test"
    mm = re.fullmatch(r"MAIL FROM:<alice@a\.test> SIZE=(\d+) RET=HDRS ENVID=env-plain", t.mail)
    assert mm, t.mail
    assert t.rcpt_lines == ["RCPT TO:<x@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@b.test"]
    assert c.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    # the content arrives byte for byte (after our Received: field), dots unstuffed again
    assert t.data.endswith(content), t.data[-300:]
    assert t.data.startswith(b"Received: ")
    assert all(ln.endswith(b"\r\n") for ln in t.data.splitlines(True))
    # RFC 1870 4: SIZE is the octets sent after 354, CRLFs included, dot-stuffing excluded
    assert int(mm.group(1)) == len(t.data), (mm.group(1), len(t.data))
    assert m.wait_log(sent_line(qid, "x@b.test", "mx.b.test", IP["b"]) +
                      r"250 2\.0\.0 Ok: queued\)")
    assert m.wait_removed(qid)


def test_two_posteld_instances_and_dsn_round_trip(dns, mtas):
    """posteld to posteld: the receiver (b.test) delivers into its Maildir; NOTIFY=SUCCESS is
    passed on, so the receiver, not the sender, reports, and its report comes back through
    the sender's SMTP server into alice's Maildir."""
    p = smtp_port([IP["b"]])
    m = sender(mtas, dns, p)
    rcv = mtas(host=IP["b"], port=p, hostname="mx.b.test", domains=("b.test",),
               users=("someone",), aliases=("postmaster: someone",), relay="", dns=dns,
               smtp_port=m.port)
    qid = inject(m, ALICE, ["someone@b.test"], make_msg("round-trip", to="someone@b.test"),
                 rcpt_params="NOTIFY=SUCCESS,FAILURE")
    [got] = rcv.maildir("someone", wait_for=1)
    assert got.raw.startswith(b"Return-Path: <alice@a.test>\n"), got.text[:300]
    assert "Subject: round-trip" in got.text
    assert no_report_for(m, qid), "the sender reported although the next hop does DSN"
    [rep] = reports(m, "alice")
    assert rep.per_message.get("Reporting-MTA") == "dns; mx.b.test"
    b = rep.rcpt("someone@b.test")
    assert b.get("Action") == "delivered"
    assert b.get("Status").startswith("2.")


# ---------------------------------------------------------------------------------------------
# Routing


def test_mx_most_preferred_host_is_used(dns, sinks, mtas):
    p = smtp_port([IP["two1"], IP["two2"]])
    s1 = sinks(IP["two1"], p)
    s2 = sinks(IP["two2"], p)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@two.test"], make_msg("pref"))
    assert s1.wait_accepted(1)
    assert m.wait_log(sent_line(qid, "x@two.test", "mx1.two.test", IP["two1"]))
    assert s2.conns == []


def test_next_mx_when_the_preferred_host_is_down(dns, sinks, mtas):
    p = smtp_port([IP["two1"], IP["two2"]])
    s2 = sinks(IP["two2"], p)       # nothing listens on mx1: connection refused
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@two.test"], make_msg("fallback"))
    assert s2.wait_accepted(1)
    assert m.wait_log(sent_line(qid, "x@two.test", "mx2.two.test", IP["two2"]))


@pytest.mark.parametrize("greeting", ["421 4.3.2 mx1 is busy", "554 5.3.2 no service here"])
def test_next_mx_when_the_preferred_host_refuses_service(dns, sinks, mtas, greeting):
    p = smtp_port([IP["two1"], IP["two2"]])
    s1 = sinks(IP["two1"], p, greeting=greeting)
    s2 = sinks(IP["two2"], p)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@two.test"], make_msg("refused-greeting"))
    assert s2.wait_accepted(1)
    assert len(s1.conns) == 1 and s1.txns() == []
    assert m.wait_log(sent_line(qid, "x@two.test", "mx2.two.test", IP["two2"]))


def test_equal_preferences_are_used_at_random(dns, sinks, mtas):
    p = smtp_port([IP["eqa"], IP["eqb"]])
    a = sinks(IP["eqa"], p)
    b = sinks(IP["eqb"], p)
    # no connection kept between messages: every message makes its own choice
    m = sender(mtas, dns, p, extra=["connection_cache_time = 0"])
    n = 20
    for i in range(n):
        inject(m, ALICE, ["x@eq.test"], make_msg("eq-%d" % i))
        assert wait_until(lambda: len(a.accepted()) + len(b.accepted()) > i, 15.0)
    na, nb = len(a.accepted()), len(b.accepted())
    assert na + nb == n
    # all 20 on one host by chance: 2 in 2**20
    assert na > 0 and nb > 0, (na, nb)


def test_implicit_mx_is_the_domain_address(dns, sinks, mtas):
    p = smtp_port([IP["implicit"]])
    s = sinks(IP["implicit"], p)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@implicit.test"], make_msg("implicit"))
    [t] = s.wait_accepted(1)
    assert t.rcpts == ["x@implicit.test"]
    assert m.wait_log(sent_line(qid, "x@implicit.test", "implicit.test", IP["implicit"]))


@pytest.mark.parametrize("domain", ["cname.test", "mxcname.test"])
def test_cnames_are_followed(dns, sinks, mtas, domain):
    """cname.test is a CNAME of b.test; mxcname.test's MX host is a CNAME of mx.b.test."""
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    inject(m, ALICE, ["x@" + domain], make_msg("cname-" + domain))
    [t] = s.wait_accepted(1)
    assert t.rcpt_lines == ["RCPT TO:<x@%s>" % domain]


def test_implicit_mx_through_a_cname(dns, sinks, mtas):
    """cnameimplicit.test is a CNAME of implicit.test, which has an address and no MX: the
    MX answer holds the CNAME and no MX record, and the implicit MX is the address the
    CNAME leads to (RFC 5321 5.1)."""
    p = smtp_port([IP["implicit"]])
    s = sinks(IP["implicit"], p)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@cnameimplicit.test"], make_msg("cname-implicit"))
    [t] = s.wait_accepted(1)
    assert t.rcpt_lines == ["RCPT TO:<x@cnameimplicit.test>"]
    assert m.wait_log(r"%s to=<x@cnameimplicit.test> relay=\S+\[%s\]" % (
        qid, re.escape(IP["implicit"])))


def test_each_address_of_a_host_is_tried(dns, sinks, mtas):
    """mx.v6.test has ::1 and 127.0.0.11; the first address tried (::1, preferred by the
    RFC 6724 order) answers 421, the next one takes the message."""
    p = smtp_port(["::1", IP["v6"]])
    s6 = sinks("::1", p, greeting="421 4.3.2 not now")
    s4 = sinks(IP["v6"], p)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@v6.test"], make_msg("addresses"))
    assert s4.wait_accepted(1)
    assert len(s6.conns) == 1
    assert m.wait_log(sent_line(qid, "x@v6.test", "mx.v6.test", IP["v6"]))


def test_null_mx_bounces_at_once(dns, mtas):
    p = smtp_port()
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@null.test"], make_msg("null-mx"))
    assert m.wait_log(r"%s to=<x@null\.test> relay=none delay=\d+s dsn=5\.1\.10 "
                      r"status=bounced \(.*null MX" % qid)
    [rep] = reports(m)
    b = rep.rcpt("x@null.test")
    assert b.get("Action") == "failed"
    assert b.get("Status") == "5.1.10"


def test_nxdomain_bounces(dns, mtas):
    p = smtp_port()
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@nowhere.test"], make_msg("nxdomain"))
    assert m.wait_log(r"%s to=<x@nowhere\.test> relay=none delay=\d+s dsn=5\.1\.2 "
                      r"status=bounced" % qid)
    [rep] = reports(m)
    b = rep.rcpt("x@nowhere.test")
    assert b.get("Action") == "failed"
    assert b.get("Status") == "5.1.2"
    assert "nowhere.test" in unfold(b.get("Diagnostic-Code"))


@pytest.mark.parametrize("domain", ["servfail.test", "refused.test"])
def test_dns_temporary_failure_defers_and_retries(dns, mtas, domain):
    p = smtp_port()
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@" + domain], make_msg("dnsfail-" + domain))
    line = r"%s to=<x@%s> relay=none delay=\d+s dsn=4\.\d+\.\d+ status=deferred" % (
        qid, re.escape(domain))
    assert m.wait_log(line)
    # retried (retry_min = 2s), still deferred; no report, the message stays queued
    assert wait_until(lambda: m.count_log(line) >= 2, 15.0), m.log[-2000:]
    assert qid in m.queue()
    assert "%s sender notice" % qid not in m.log
    assert m.maildir("alice") == []


class _Resolver:
    def __init__(self, servers):
        self.servers = servers


@pytest.mark.parametrize("kind", ["no-answer", "port-closed"])
def test_unreachable_dns_server_defers(dns, mtas, kind):
    """A resolver that never answers (c-ares gives up after its timeouts, about 15 s) or
    is not there at all: a temporary failure."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    port = hole.getsockname()[1]
    if kind == "port-closed":
        hole.close()
    try:
        m = sender(mtas, _Resolver("127.0.0.1:%d" % port), smtp_port())
        qid = inject(m, ALICE, ["x@b.test"], make_msg("dns-" + kind))
        assert m.wait_log(r"%s to=<x@b\.test> relay=none delay=\d+s dsn=4\.4\.3 "
                          r"status=deferred" % qid, 40)
        assert qid in m.queue()
        assert "%s sender notice" % qid not in m.log
    finally:
        hole.close()


def test_mx_hosts_at_or_after_ourselves_are_skipped(dns, sinks, mtas):
    """self.test: MX 10 mx1.self.test, 20 mta.test (us), 30 mx3.self.test. With mx1 down
    the message waits (it must not go to mx3); once mx1 is up it goes there."""
    p = smtp_port([IP["self1"], IP["self3"]])
    s3 = sinks(IP["self3"], p)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@self.test"], make_msg("self-mx"))
    assert m.wait_log(r"%s to=<x@self\.test> relay=mx1\.self\.test\[%s\] delay=\d+s "
                      r"dsn=4\.\d\.\d status=deferred" % (qid, re.escape(IP["self1"])))
    s1 = sinks(IP["self1"], p)
    assert s1.wait_accepted(1)
    assert m.wait_removed(qid)
    assert s3.conns == []


def test_we_are_the_best_mx_bounces(dns, mtas):
    p = smtp_port()
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@selfonly.test"], make_msg("loop"))
    assert m.wait_log(r"%s to=<x@selfonly\.test> relay=none .*dsn=5\.4\.6 status=bounced" % qid)
    [rep] = reports(m)
    assert rep.rcpt("x@selfonly.test").get("Status") == "5.4.6"


@pytest.mark.parametrize("relayhost,host", [
    ("[127.0.0.13]:{port}", "127.0.0.13"), ("[::1]:{port}", "::1"),
    ("[smarthost.test]:{port}", "127.0.0.13"), ("smartmx.test:{port}", "127.0.0.13")])
def test_relayhost(dns, sinks, mtas, relayhost, host):
    """Every remote recipient goes to the relayhost, whatever its domain's DNS says: an
    address literal (IPv4, IPv6), a host name without MX lookup, a domain with MX lookup."""
    p = smtp_port([host])
    hub = sinks(host, p)
    m = sender(mtas, dns, smtp_port(), extra=["relayhost = " + relayhost.format(port=p)])
    qid = inject(m, ALICE, ["x@nowhere.test", "y@b.test"], make_msg("relayhost"))
    [t] = hub.wait_accepted(1)
    assert sorted(t.rcpts) == ["x@nowhere.test", "y@b.test"]
    assert m.wait_log(r"%s to=<x@nowhere\.test> relay=\S*\[%s\] .*status=sent" % (
        qid, re.escape(host)))


def test_address_literal_recipient(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@[127.0.0.2]"], make_msg("literal"))
    [t] = s.wait_accepted(1)
    assert t.rcpt_lines == ["RCPT TO:<x@[127.0.0.2]>"]
    assert m.wait_removed(qid)


# ---------------------------------------------------------------------------------------------
# Transactions and connections


def test_one_transaction_per_destination(dns, sinks, mtas):
    p = smtp_port([IP["b"], IP["c"]])
    sb = sinks(IP["b"], p)
    sc = sinks(IP["c"], p)
    m = sender(mtas, dns, p)
    rcpts = ["x1@b.test", "y1@c.test", "x2@b.test", "bob@a.test", "y2@c.test", "x3@B.Test"]
    qid = inject(m, ALICE, rcpts, make_msg("per-domain"))
    [tb] = sb.wait_accepted(1)
    [tc] = sc.wait_accepted(1)
    assert tb.rcpts == ["x1@b.test", "x2@b.test", "x3@B.Test"]
    assert tc.rcpts == ["y1@c.test", "y2@c.test"]
    assert len(sb.conns) == 1 and len(sc.conns) == 1
    assert len(m.maildir("bob", wait_for=1)) == 1
    assert m.wait_removed(qid)
    assert len(sb.txns()) == 1 and len(sc.txns()) == 1


def test_at_most_100_recipients_per_transaction(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    rcpts = ["r%03d@b.test" % i for i in range(150)]
    qid = inject(m, ALICE, rcpts, make_msg("many-rcpts"))
    assert m.wait_removed(qid, 30)
    got = s.accepted()
    assert sorted(len(t.rcpts) for t in got) == [50, 100]
    assert sorted(r for t in got for r in t.rcpts) == rcpts


def test_connection_is_reused_for_the_next_message(dns, sinks, mtas):
    """dest_concurrency = 1: while the first message is held at the end of data, three
    more queue for the same destination; the one connection carries all four."""
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, hold=True)
    m = sender(mtas, dns, p, extra=["dest_concurrency = 1"])
    ids = [inject(m, ALICE, ["x@b.test"], make_msg("reuse-0"))]
    assert s.held.wait(15)
    ids += [inject(m, ALICE, ["y%d@b.test" % i], make_msg("reuse-%d" % i)) for i in (1, 2, 3)]
    # all four are queued before the first is answered
    assert wait_until(lambda: all(re.search(r"%s received" % q, m.log) for q in ids), 10)
    time.sleep(0.3)
    s.release()
    assert len(s.wait_accepted(4)) == 4
    for q in ids:
        assert m.wait_removed(q)
    assert len(s.conns) == 1, [c.verbs() for c in s.conns]
    assert s.conns[0].verbs().count("EHLO") == 1
    assert s.conns[0].verbs().count("MAIL") == 4


def test_idle_connection_is_kept_for_the_next_message(dns, sinks, mtas):
    """Messages sent one after another, each after the previous was delivered, go over one
    connection while it waits (connection_cache_time); after the wait it says QUIT."""
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    # long enough that a slow round (valgrind, a loaded machine) still finds it open
    m = sender(mtas, dns, p, extra=["connection_cache_time = 10s"])
    for i in range(3):
        qid = inject(m, ALICE, ["x%d@b.test" % i], make_msg("idle-%d" % i))
        assert m.wait_removed(qid)
    assert len(s.accepted()) == 3
    assert len(s.conns) == 1, [c.verbs() for c in s.conns]
    assert s.conns[0].verbs().count("MAIL") == 3
    assert wait_until(lambda: "QUIT" in s.conns[0].verbs(), 30)


def test_dest_concurrency_limits_connections_to_one_destination(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, hold=True)
    m = sender(mtas, dns, p, extra=["dest_concurrency = 2"])
    ids = [inject(m, ALICE, ["x%d@b.test" % i], make_msg("dest-conc-%d" % i)) for i in range(6)]
    assert s.held.wait(15)
    assert wait_until(lambda: len(s.conns) >= 2, 10)
    time.sleep(0.5)
    assert len(s.conns) == 2
    s.release()
    assert len(s.wait_accepted(6)) == 6
    for q in ids:
        assert m.wait_removed(q)
    assert len(s.conns) == 2 and max_open(s) == 2


def test_remote_concurrency_limits_connections_in_total(dns, sinks, mtas):
    hosts = [IP["b"], IP["c"], IP["implicit"]]
    p = smtp_port(hosts)
    ss = [sinks(h, p, delay=0.05) for h in hosts]
    m = sender(mtas, dns, p, extra=["remote_concurrency = 1"])
    qids = [inject(m, ALICE, ["x@b.test", "y@c.test", "z@implicit.test"], make_msg("total-%d" % i))
            for i in range(2)]
    for s in ss:
        assert len(s.wait_accepted(2)) == 2
    for q in qids:
        assert m.wait_removed(q)
    assert max_open(*ss) == 1


def test_refused_transaction_then_reuse_sends_rset(dns, sinks, mtas):
    """The first message's only recipient is refused (MAIL stays open on the server); the
    next message on the same connection starts with RSET."""
    p = smtp_port([IP["b"]])

    def rcpt(conn, txn, addr, line):
        if addr == "gone@b.test":
            return "550 5.1.1 <gone@b.test>: no such user"
        return None
    s = sinks(IP["b"], p, hold=True, rcpt=rcpt)
    m = sender(mtas, dns, p, extra=["dest_concurrency = 1"])
    first = inject(m, ALICE, ["x@b.test"], make_msg("rset-0"))
    assert s.held.wait(15)
    refused = inject(m, ALICE, ["gone@b.test"], make_msg("rset-1"))
    last = inject(m, ALICE, ["y@b.test"], make_msg("rset-2"))
    assert wait_until(lambda: re.search(r"%s received" % last, m.log), 10)
    time.sleep(0.3)
    s.release()
    assert len(s.wait_accepted(2)) == 2
    for q in (first, refused, last):
        assert m.wait_removed(q)
    assert m.wait_log(r"%s to=<gone@b\.test> .*dsn=5\.1\.1 status=bounced" % refused)
    assert len(s.conns) == 1
    v = s.conns[0].verbs()
    assert v.count("MAIL") == 3
    # after the refused transaction: RSET before the next MAIL
    i = [k for k, x in enumerate(v) if x == "MAIL"][1]
    j = [k for k, x in enumerate(v) if x == "MAIL"][2]
    assert "RSET" in v[i:j], v


# ---------------------------------------------------------------------------------------------
# The client dialogue


def test_helo_when_ehlo_is_refused(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ehlo="500 5.5.1 Command unrecognized")
    m = sender(mtas, dns, p)
    inject(m, ALICE, ["x@b.test", "y@b.test"], make_msg("helo"), mail_params="RET=FULL",
           rcpt_params="NOTIFY=FAILURE")
    [t] = s.wait_accepted(1)
    c = s.conns[0]
    assert c.lines[:2] == ["EHLO mta.test", "HELO mta.test"]
    # no extension was offered: no parameters, and one command at a time
    assert t.mail == "MAIL FROM:<alice@a.test>"
    assert t.rcpt_lines == ["RCPT TO:<x@b.test>", "RCPT TO:<y@b.test>"]
    assert c.early == []


def test_pipelining_when_offered(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, delay=0.2)     # slow replies: whatever is pipelined is waiting
    m = sender(mtas, dns, p)
    inject(m, ALICE, ["x@b.test", "y@b.test"], make_msg("pipelined"))
    [t] = s.wait_accepted(1)
    c = s.conns[0]
    # MAIL, every RCPT and DATA in one group (RFC 2920 3.1); EHLO and the content wait
    assert c.early[:3] == [t.mail] + t.rcpt_lines, c.early
    assert "EHLO mta.test" not in c.early


def test_no_pipelining_when_not_offered(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ext=ext_without("PIPELINING"), delay=0.05)
    m = sender(mtas, dns, p)
    inject(m, ALICE, ["x@b.test", "y@b.test", "z@b.test"], make_msg("lockstep"))
    [t] = s.wait_accepted(1)
    assert len(t.rcpts) == 3
    assert s.conns[0].early == []


def test_message_over_the_servers_size_bounces_without_sending(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ext=ext_without("SIZE") + ("SIZE 2000",))
    m = sender(mtas, dns, p)
    big = inject(m, ALICE, ["x@b.test"], make_msg("too-big", ("0123456789" * 10 + "\r\n") * 30))
    assert m.wait_log(r"%s to=<x@b\.test> relay=mx\.b\.test\[127\.0\.0\.2\] delay=\d+s "
                      r"dsn=5\.3\.4 status=bounced" % big)
    [rep] = reports(m)
    assert rep.rcpt("x@b.test").get("Status") == "5.3.4"
    assert all("MAIL" not in c.verbs() for c in s.conns)
    small = inject(m, ALICE, ["x@b.test"], make_msg("small-enough"))
    [t] = s.wait_accepted(1)
    assert int(re.search(r"SIZE=(\d+)", t.mail).group(1)) < 2000
    assert m.wait_removed(small)


EIGHTBIT_MIME = (
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"=-b1\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--=-b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße aus Köln, ça va? Ünïcödé everywhere.\r\n"
    "--not a boundary, but starts with two dashes: äöü\r\n"
    "From the start of a line, and a very long one: " + "ß" * 60 + "\r\n"
    ".a line with a leading dot ü\r\n"
    "--=-b1\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "\u00ff\u00fe binary-ish \u0080\u0081 data\r\n"
    "--=-b1\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "plain seven bit part\r\n"
    "--=-b1--\r\n")


def eightbit_msg(subject):
    head = ("From: <alice@a.test>\r\nTo: <x@b.test>\r\nSubject: %s\r\n" % subject)
    return (head + EIGHTBIT_MIME).encode("utf-8")


def test_8bit_message_with_8bitmime(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    content = eightbit_msg("eight-bit")
    inject(m, ALICE, ["x@b.test"], content, mail_params="BODY=8BITMIME")
    [t] = s.wait_accepted(1)
    assert re.fullmatch(r"MAIL FROM:<alice@a\.test> SIZE=\d+ BODY=8BITMIME", t.mail), t.mail
    assert t.data.endswith(content)


def _leaves(msg):
    return [p for p in msg.walk() if not p.is_multipart()]


SINGLE_PART = (
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n").encode() + "Gr\xfc\xdfe, one part only\r\n--\r\nbye =\r\n".encode("latin-1")

NESTED = (
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=outer\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "see the attached message\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "innen: äöü\r\n"
    "--outer--\r\n").encode("utf-8")


@pytest.mark.parametrize("shape", ["single", "nested"])
def test_8bit_mime_shapes_are_converted_for_a_7bit_server(dns, sinks, mtas, shape):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ext=ext_without("8BITMIME"))
    m = sender(mtas, dns, p)
    head = "From: <alice@a.test>\r\nTo: <x@b.test>\r\nSubject: %s\r\n" % shape
    content = head.encode() + (SINGLE_PART if shape == "single" else NESTED)
    inject(m, ALICE, ["x@b.test"], content, mail_params="BODY=8BITMIME")
    [t] = s.wait_accepted(1)
    assert max(t.data) < 0x80
    import email
    import email.policy
    orig = email.message_from_bytes(content, policy=email.policy.compat32)
    got = t.message()
    if shape == "nested":
        orig = orig.get_payload()[1].get_payload()[0]
        got = got.get_payload()[1].get_payload()[0]
        assert got["Subject"] == "inner"
    assert got.get_payload(decode=True) == orig.get_payload(decode=True)
    assert got["Content-Transfer-Encoding"].lower() in ("quoted-printable", "base64")


def test_8bit_mime_message_is_converted_for_a_7bit_server(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ext=ext_without("8BITMIME"))
    m = sender(mtas, dns, p)
    content = eightbit_msg("downgrade")
    inject(m, ALICE, ["x@b.test"], content, mail_params="BODY=8BITMIME")
    [t] = s.wait_accepted(1)
    assert "BODY=" not in t.mail
    declared = int(re.search(r"SIZE=(\d+)", t.mail).group(1))
    assert declared == len(t.data), (declared, len(t.data))
    assert max(t.data) < 0x80, "8-bit octets sent to a server without 8BITMIME"
    assert all(len(ln) <= 1000 for ln in t.data.splitlines(True))
    import email
    import email.policy
    orig = email.message_from_bytes(content, policy=email.policy.compat32)
    got = t.message()
    assert got.get_content_type() == "multipart/mixed"
    ol, gl = _leaves(orig), _leaves(got)
    assert [x.get_content_type() for x in gl] == [x.get_content_type() for x in ol]
    for o, g in zip(ol, gl):
        cte = (g.get("Content-Transfer-Encoding") or "7bit").lower()
        assert cte in ("7bit", "quoted-printable", "base64"), cte
        assert g.get_payload(decode=True) == o.get_payload(decode=True), (
            o.get_content_type(), g.get_payload()[:300])
    assert gl[0]["Content-Transfer-Encoding"].lower() == "quoted-printable"
    assert gl[1]["Content-Transfer-Encoding"].lower() == "base64"
    for name in ("From", "To", "Subject", "MIME-Version"):
        assert got[name] == orig[name]


def test_8bit_message_without_mime_bounces_for_a_7bit_server(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ext=ext_without("8BITMIME"))
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@b.test"], make_msg("no-mime", "Grüße, no MIME here\r\n"))
    assert m.wait_log(r"%s to=<x@b\.test> .*dsn=5\.6\.3 status=bounced" % qid)
    [rep] = reports(m)
    assert rep.rcpt("x@b.test").get("Status") == "5.6.3"
    assert s.accepted() == []


def test_smtputf8_is_used_when_offered(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    inject(m, ALICE, ["jürgen@b.test"], make_msg("utf8-addr", to="x@b.test"),
           mail_params="SMTPUTF8")
    [t] = s.wait_accepted(1)
    # (BODY=8BITMIME too: our Received: field names the UTF-8 recipient)
    assert re.fullmatch(r"MAIL FROM:<alice@a\.test> SIZE=\d+ BODY=8BITMIME SMTPUTF8", t.mail), \
        t.mail
    assert t.rcpts == ["jürgen@b.test"]


def test_smtputf8_needed_but_not_offered_bounces(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ext=ext_without("SMTPUTF8"))
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@b.test"], make_msg("utf8-needed"), mail_params="SMTPUTF8")
    assert m.wait_log(r"%s to=<x@b\.test> .*dsn=5\.6\.7 status=bounced" % qid)
    [rep] = reports(m)
    assert rep.rcpt("x@b.test").get("Status") == "5.6.7"
    assert all("MAIL" not in c.verbs() for c in s.conns)


def test_dsn_parameters_only_when_offered(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ext=ext_without("DSN"))
    m = sender(mtas, dns, p)
    inject(m, ALICE, ["x@b.test"], make_msg("no-dsn"), mail_params="RET=FULL ENVID=e1",
           rcpt_params="NOTIFY=FAILURE ORCPT=rfc822;x@b.test")
    [t] = s.wait_accepted(1)
    assert re.fullmatch(r"MAIL FROM:<alice@a\.test> SIZE=\d+", t.mail), t.mail
    assert t.rcpt_lines == ["RCPT TO:<x@b.test>"]


def test_per_recipient_replies_and_retry(dns, sinks, mtas):
    """One transaction: ok gets 250, bad 550, later 450 (then 250 on the retry)."""
    p = smtp_port([IP["b"]])
    later = seq("450 4.2.1 <later@b.test>: mailbox busy", "250 2.1.5 Ok")

    def rcpt(conn, txn, addr, line):
        if addr == "bad@b.test":
            return "550 5.1.1 <bad@b.test>: Recipient address rejected: User unknown"
        if addr == "later@b.test":
            return later()
        return None
    s = sinks(IP["b"], p, rcpt=rcpt)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["ok@b.test", "bad@b.test", "later@b.test"], make_msg("mixed"))
    first = s.wait_accepted(1)[0]
    assert [ln.split()[1] for ln in first.rcpt_lines] == \
        ["TO:<ok@b.test>", "TO:<bad@b.test>", "TO:<later@b.test>"]
    assert first.rcpts == ["ok@b.test"]
    assert m.wait_log(r"%s to=<later@b\.test> relay=mx\.b\.test\[127\.0\.0\.2\] delay=\d+s "
                      r"dsn=4\.2\.1 status=deferred \(450 4\.2\.1 <later@b\.test>: mailbox busy\)"
                      % qid)
    assert m.wait_log(r"%s to=<bad@b\.test> .*dsn=5\.1\.1 status=bounced" % qid)
    [rep] = reports(m)
    assert list(rep.actions().items()) == [("bad@b.test", "failed")]
    # retry_min = 2s: only the deferred recipient is tried again
    second = s.wait_accepted(2)[1]
    assert second.rcpts == ["later@b.test"]
    assert m.wait_log(sent_line(qid, "later@b.test", "mx.b.test", IP["b"]))
    assert m.wait_removed(qid)
    assert len(s.accepted()) == 2


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("stage", ["mail", "dot"])
def test_permanent_refusal_of_the_transaction_bounces_every_recipient(dns, sinks, mtas,
                                                                       pipelining, stage):
    p = smtp_port([IP["b"]])
    reply = "554 5.7.1 <alice@a.test>: Sender address rejected: go away"
    ext = ext_without() if pipelining else ext_without("PIPELINING")
    s = sinks(IP["b"], p, ext=ext, **{stage: reply})
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@b.test", "y@b.test"], make_msg("refused-" + stage))
    for r in ("x", "y"):
        assert m.wait_log(r"%s to=<%s@b\.test> .*dsn=5\.7\.1 status=bounced \(%s\)" % (
            qid, r, re.escape(reply)))
    [rep] = reports(m)
    assert rep.actions() == {"x@b.test": "failed", "y@b.test": "failed"}
    assert m.wait_removed(qid)
    assert s.accepted() == []
    assert len(s.conns) == 1 and s.conns[0].wait_closed() and s.conns[0].quit


def test_xtext_in_dsn_parameters(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    inject(m, ALICE, ["x+tag@b.test"], make_msg("xtext"), mail_params="ENVID=id+2Bplus+3Dq",
           rcpt_params="NOTIFY=FAILURE ORCPT=rfc822;x+2Btag@b.test")
    [t] = s.wait_accepted(1)
    assert t.mail.endswith(" ENVID=id+2Bplus+3Dq"), t.mail
    assert t.rcpt_lines == ["RCPT TO:<x+tag@b.test> NOTIFY=FAILURE ORCPT=rfc822;x+2Btag@b.test"]


def test_large_message(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    body = b"".join(b"%06d " % i + b"abcdefghij" * 7 + b"\r\n" for i in range(40000))
    body += b".\r\n..\r\n.x\r\n"
    content = make_msg("large", body)
    qid = inject(m, ALICE, ["x@b.test"], content)
    [t] = s.wait_accepted(1, timeout=30)
    assert t.data.endswith(content)
    assert int(re.search(r"SIZE=(\d+)", t.mail).group(1)) == len(t.data)
    assert m.wait_removed(qid)


def test_temporary_failure_after_data_is_retried(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, dot=seq("451 4.3.0 Error: queue file write error", None))
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@b.test"], make_msg("retry-dot"))
    assert m.wait_log(r"%s to=<x@b\.test> .*dsn=4\.3\.0 status=deferred \(451 4\.3\.0 " % qid)
    assert len(s.wait_accepted(1)) == 1
    assert m.wait_removed(qid)
    assert len(s.txns()) == 2 and len(s.accepted()) == 1
    assert m.maildir("alice") == []


def test_expiry_bounces_a_recipient_that_keeps_failing(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, rcpt="450 4.2.1 <x@b.test>: try again later")
    m = sender(mtas, dns, p, extra=["max_queue_lifetime = 3s"])
    qid = inject(m, ALICE, ["x@b.test"], make_msg("expiry"))
    assert m.wait_log(r"%s to=<x@b\.test> status=expired" % qid, 25)
    [rep] = reports(m)
    b = rep.rcpt("x@b.test")
    assert b.get("Action") == "failed"
    assert b.get("Status") == "5.4.7"
    assert "450 4.2.1 <x@b.test>: try again later" in unfold(b.get("Diagnostic-Code"))
    assert m.wait_removed(qid)
    assert len(s.txns()) >= 2 and s.accepted() == []


HOSTILE = {
    "junk": b"this is no SMTP reply\r\n",
    "overlong": b"250 " + b"x" * 5000 + b"\r\n",
    "10000-lines": b"".join(b"250-line %d\r\n" % i for i in range(10000)) + b"250 ok\r\n",
    "nul": b"250-mx.b.test\r\n250 PIPE\x00LINING\r\n",
    "mixed-codes": b"250-mx.b.test\r\n550 nope\r\n",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_replies_defer_the_message(dns, sinks, mtas, kind):
    p = smtp_port([IP["b"]])

    def ehlo(conn, line):
        return HOSTILE[kind] if s.conns[0] is conn else None
    s = sinks(IP["b"], p, ehlo=ehlo)
    m = sender(mtas, dns, p, extra=["retry_min = 1s"])
    qid = inject(m, ALICE, ["x@b.test"], make_msg("hostile-" + kind))
    assert m.wait_log(r"%s to=<x@b\.test> relay=mx\.b\.test\[127\.0\.0\.2\] delay=\d+s "
                      r"dsn=4\.\d\.\d status=deferred" % qid)
    assert s.conns[0].txns == []
    # nothing broke: the retry, to a sane server now, delivers
    assert s.wait_accepted(1)
    assert m.wait_removed(qid)
    assert m.maildir("alice") == []
    assert m.running()


@pytest.mark.parametrize("stage", ["greeting", "ehlo", "rcpt", "dot"])
def test_dropped_connection_defers_and_retries(dns, sinks, mtas, stage):
    """The server closes the connection instead of answering (the first time only)."""
    p = smtp_port([IP["b"]])

    def first(conn, *a):
        return DROP if s.conns[0] is conn else None
    s = sinks(IP["b"], p, **{stage: first})
    m = sender(mtas, dns, p, extra=["retry_min = 1s"])
    qid = inject(m, ALICE, ["x@b.test"], make_msg("dropped-" + stage, "DROP-MARKER\r\n"))
    assert m.wait_log(r"%s to=<x@b\.test> relay=mx\.b\.test\[127\.0\.0\.2\] delay=\d+s "
                      r"dsn=4\.\d\.\d status=deferred \(.*lost connection" % qid)
    [t] = s.wait_accepted(1)
    assert b"DROP-MARKER" in t.data
    assert m.wait_removed(qid)
    assert len(s.accepted()) == 1 and len(s.conns) == 2
    assert m.maildir("alice") == []


def test_delay_notice_once(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    sinks(IP["b"], p, rcpt="450 4.2.1 <x@b.test>: mailbox busy")
    m = sender(mtas, dns, p, extra=["delay_warning_time = 2s", "retry_min = 1s",
                                    "retry_max = 1s"])
    qid = inject(m, ALICE, ["x@b.test"], make_msg("delayed"),
                 rcpt_params="NOTIFY=DELAY,FAILURE")
    [rep] = reports(m)
    assert rep.msg["Subject"].startswith("Delayed Mail")
    b = rep.rcpt("x@b.test")
    assert b.get("Action") == "delayed"
    assert b.get("Status") == "4.2.1"
    assert b.get("Will-Retry-Until")
    assert "mailbox busy" in unfold(b.get("Diagnostic-Code"))
    # later retries fail too, but say nothing more
    n = m.count_log(r"%s to=<x@b\.test> .*status=deferred" % qid)
    assert wait_until(lambda: m.count_log(r"%s to=<x@b\.test> .*status=deferred" % qid) >= n + 2,
                      15)
    assert len(reports(m, wait_for=0)) == 1
    assert qid in m.queue()


def test_sigterm_during_delivery_then_restart_delivers(dns, sinks, mtas):
    """SIGTERM while the server stalls before answering the end of data: posteld exits
    cleanly, the unacknowledged message stays queued and is delivered after a restart."""
    p = smtp_port([IP["b"]])

    def dot(conn, txn):
        return DROP if s.conns[0] is conn else None
    s = sinks(IP["b"], p, hold=True, dot=dot)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@b.test"], make_msg("sigterm", "SIGTERM-MARKER\r\n"))
    assert s.held.wait(15)
    rc = m.stop(timeout=10)
    assert rc == 0, m.log[-3000:]
    s.release()
    assert qid in m.queue()
    m.start()
    [t] = s.wait_accepted(1)
    assert b"SIGTERM-MARKER" in t.data
    assert m.wait_removed(qid)
    assert len(s.accepted()) == 1


def test_sigterm_with_messages_waiting_for_a_connection(dns, sinks, mtas):
    """dest_concurrency = 1: one message is in delivery (held), three wait for the
    connection; SIGTERM, restart: each is delivered once."""
    p = smtp_port([IP["b"]])

    def dot(conn, txn):
        return DROP if s.conns[0] is conn else None
    s = sinks(IP["b"], p, hold=True, dot=dot)
    m = sender(mtas, dns, p, extra=["dest_concurrency = 1"])
    ids = [inject(m, ALICE, ["x@b.test"], make_msg("waiting-0"))]
    assert s.held.wait(15)
    ids += [inject(m, ALICE, ["x%d@b.test" % i], make_msg("waiting-%d" % i)) for i in (1, 2, 3)]
    assert wait_until(lambda: all(re.search(r"%s received" % q, m.log) for q in ids), 10)
    time.sleep(0.3)
    rc = m.stop(timeout=10)
    assert rc == 0, m.log[-3000:]
    s.release()
    assert sorted(m.queue()) == sorted(ids)
    m.start()
    assert len(s.wait_accepted(4)) == 4
    for q in ids:
        assert m.wait_removed(q)
    assert sorted(r for t in s.accepted() for r in t.rcpts) == \
        ["x1@b.test", "x2@b.test", "x3@b.test", "x@b.test"]


# ---------------------------------------------------------------------------------------------
# Delivery reports


def _bounce_setup(dns, sinks, mtas, **kw):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, rcpt="550 5.1.1 <x@b.test>: Recipient address rejected: "
                               "User unknown in virtual mailbox table")
    return s, sender(mtas, dns, p, **kw)


def test_bounce_with_headers_only(dns, sinks, mtas):
    s, m = _bounce_setup(dns, sinks, mtas)
    qid = inject(m, ALICE, ["x@b.test"], make_msg("ret-hdrs", "BODY-MARKER-HDRS\r\n"),
                 mail_params="RET=HDRS ENVID=env-hdrs-1",
                 rcpt_params="NOTIFY=FAILURE ORCPT=rfc822;orig@b.test")
    notice = m.wait_log(r"%s sender notice: queued as ([0-9A-F]{16}) to=<alice@a\.test>" % qid)
    assert notice
    assert m.wait_log(r"%s to=<x@b\.test> relay=mx\.b\.test\[127\.0\.0\.2\] delay=\d+s "
                      r"dsn=5\.1\.1 status=bounced \(550 5\.1\.1 " % qid)
    assert m.wait_removed(qid)
    bounce_id = notice.group(1)
    assert m.wait_log(r"%s to=<alice@a\.test> mailbox=alice .*status=delivered" % bounce_id)
    [rep] = reports(m)
    raw = rep.mail.text
    assert raw.startswith("Return-Path: <>\n")
    assert rep.msg["To"] == "<alice@a.test>"
    assert "MAILER-DAEMON@mta.test" in rep.msg["From"]
    assert rep.per_message.get("Reporting-MTA") == "dns; mta.test"
    assert rep.per_message.get("Original-Envelope-Id") == "env-hdrs-1"
    assert rep.per_message.get("Arrival-Date")
    b = rep.rcpt("x@b.test")
    assert b.get("Original-Recipient") == "rfc822;orig@b.test"
    assert b.get("Action") == "failed"
    assert b.get("Status") == "5.1.1"
    assert b.get("Remote-MTA") == "dns; mx.b.test"
    assert unfold(b.get("Diagnostic-Code")) == (
        "smtp; 550 5.1.1 <x@b.test>: Recipient address rejected: User unknown in virtual "
        "mailbox table")
    assert rep.returned.get_content_type() == "text/rfc822-headers"
    returned = rep.returned.get_payload()
    assert "Subject: ret-hdrs" in returned
    assert "BODY-MARKER-HDRS" not in raw
    assert "x@b.test" in rep.text and "User unknown" in rep.text
    assert len(s.txns()) == 1


def test_bounce_with_the_full_message(dns, sinks, mtas):
    s, m = _bounce_setup(dns, sinks, mtas)
    inject(m, ALICE, ["x@b.test"], make_msg("ret-full", "BODY-MARKER-FULL\r\n"),
           mail_params="RET=FULL")
    [rep] = reports(m)
    assert rep.rcpt("x@b.test").get("Action") == "failed"
    assert rep.returned.get_content_type() == "message/rfc822"
    inner = rep.returned.get_payload()[0]
    assert inner["Subject"] == "ret-full"
    assert "BODY-MARKER-FULL" in inner.get_payload()


def test_notify_never_means_no_bounce(dns, sinks, mtas):
    s, m = _bounce_setup(dns, sinks, mtas)
    qid = inject(m, ALICE, ["x@b.test"], make_msg("never"), rcpt_params="NOTIFY=NEVER")
    assert m.wait_log(r"%s to=<x@b\.test> .*status=bounced" % qid)
    assert no_report_for(m, qid)
    assert m.maildir("alice") == []


def test_notify_success_relayed_when_next_hop_has_no_dsn(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p, ext=ext_without("DSN"))
    m = sender(mtas, dns, p)
    inject(m, ALICE, ["x@b.test"], make_msg("relayed"), rcpt_params="NOTIFY=SUCCESS")
    assert s.wait_accepted(1)
    [rep] = reports(m)
    b = rep.rcpt("x@b.test")
    assert b.get("Action") == "relayed"
    assert b.get("Status").startswith("2.")
    assert b.get("Remote-MTA") == "dns; mx.b.test"
    assert "Undelivered" not in rep.msg["Subject"]


def test_notify_success_left_to_a_next_hop_with_dsn(dns, sinks, mtas):
    p = smtp_port([IP["b"]])
    s = sinks(IP["b"], p)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@b.test"], make_msg("passed-on"), rcpt_params="NOTIFY=SUCCESS")
    [t] = s.wait_accepted(1)
    assert t.rcpt_lines == ["RCPT TO:<x@b.test> NOTIFY=SUCCESS"]
    assert no_report_for(m, qid)


def test_notify_success_for_a_local_delivery(dns, mtas):
    m = sender(mtas, dns, smtp_port())
    inject(m, ALICE, ["bob@a.test"], make_msg("local-success", to="bob@a.test"),
           rcpt_params="NOTIFY=SUCCESS")
    assert len(m.maildir("bob", wait_for=1)) == 1
    [rep] = reports(m)
    assert rep.rcpt("bob@a.test").get("Action") == "delivered"


def test_failed_null_sender_message_goes_to_postmaster(dns, sinks, mtas):
    s, m = _bounce_setup(dns, sinks, mtas)
    qid = inject(m, "", ["x@b.test"], make_msg("null-sender", frm="MAILER-DAEMON@c.test"))
    assert m.wait_log(r"%s sender notice: queued as [0-9A-F]{16} to=<postmaster>" % qid)
    [rep] = reports(m, "alice")
    assert rep.rcpt("x@b.test").get("Action") == "failed"
    assert s.txns()[0].mail.startswith("MAIL FROM:<> ")


def test_a_bounce_is_sent_with_a_null_sender(dns, sinks, mtas):
    """A remote sender's bounce goes out with MAIL FROM:<>."""
    p = smtp_port([IP["b"], IP["c"]])
    sinks(IP["b"], p, rcpt="550 5.1.1 no such user")
    sc = sinks(IP["c"], p)
    m = sender(mtas, dns, p)
    inject(m, "someone@c.test", ["x@b.test"], make_msg("remote-bounce", frm="someone@c.test"))
    [t] = sc.wait_accepted(1)
    assert t.mail.startswith("MAIL FROM:<> ")
    assert t.rcpts == ["someone@c.test"]
    msg = t.message()
    assert msg.get_content_type() == "multipart/report"


def test_bounce_of_an_8bit_message_to_a_7bit_server(dns, sinks, mtas):
    """The full 8-bit message returned in a bounce (RET=FULL) to a remote sender whose
    server has no 8BITMIME: the report is converted like any message and stays readable."""
    p = smtp_port([IP["b"], IP["c"]])
    sinks(IP["b"], p, rcpt="550 5.1.1 no such user")
    sc = sinks(IP["c"], p, ext=ext_without("8BITMIME"))
    m = sender(mtas, dns, p)
    content = eightbit_msg("bounce-8bit").replace(b"<alice@a.test>", b"<someone@c.test>")
    inject(m, "someone@c.test", ["x@b.test"], content, mail_params="BODY=8BITMIME RET=FULL")
    [t] = sc.wait_accepted(1)
    assert max(t.data) < 0x80
    rep = t.message()
    assert rep.get_content_type() == "multipart/report"
    returned = rep.get_payload()[2]
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_payload()[0]
    import email
    import email.policy
    orig = email.message_from_bytes(content, policy=email.policy.compat32)
    assert inner["Subject"] == "bounce-8bit"
    ol, gl = _leaves(orig), _leaves(inner)
    assert len(gl) == len(ol) == 3
    for o, g in zip(ol, gl):
        assert g.get_payload(decode=True) == o.get_payload(decode=True)


def test_undeliverable_bounce_goes_to_postmaster(dns, sinks, mtas):
    """double_bounce = on: the bounce to someone@c.test fails too; postmaster hears of it."""
    p = smtp_port([IP["b"], IP["c"]])
    sinks(IP["b"], p, rcpt="550 5.1.1 no such user")
    sc = sinks(IP["c"], p, rcpt="550 5.1.1 sender unknown here")
    m = sender(mtas, dns, p)
    qid = inject(m, "someone@c.test", ["x@b.test"], make_msg("double-bounce"))
    notice = m.wait_log(r"%s sender notice: queued as ([0-9A-F]{16}) to=<someone@c\.test>" % qid)
    assert notice
    bid = notice.group(1)
    assert m.wait_log(r"%s to=<someone@c\.test> .*status=bounced" % bid)
    assert m.wait_log(r"%s sender notice: queued as [0-9A-F]{16} to=<postmaster>" % bid), \
        m.log[-3000:]
    [rep] = reports(m, "alice")
    assert rep.rcpt("someone@c.test").get("Action") == "failed"
    assert len(sc.txns()) == 1


def test_undeliverable_bounce_dropped_with_double_bounce_off(dns, sinks, mtas):
    p = smtp_port([IP["b"], IP["c"]])
    sinks(IP["b"], p, rcpt="550 5.1.1 no such user")
    sinks(IP["c"], p, rcpt="550 5.1.1 sender unknown here")
    m = sender(mtas, dns, p, extra=["double_bounce = off"])
    qid = inject(m, "someone@c.test", ["x@b.test"], make_msg("double-bounce-off"))
    notice = m.wait_log(r"%s sender notice: queued as ([0-9A-F]{16}) to=<someone@c\.test>" % qid)
    assert notice
    bid = notice.group(1)
    assert m.wait_log(r"%s undeliverable report dropped" % bid), m.log[-3000:]
    assert m.wait_removed(bid)
    assert m.maildir("alice") == []


def test_report_to_postmaster_that_fails_is_dropped(dns, sinks, mtas):
    """postmaster forwards to pm@c.test, which refuses everything: the failed null-sender
    message is reported to postmaster, that report fails too and is dropped, no loop."""
    p = smtp_port([IP["b"], IP["c"]])
    sinks(IP["b"], p, rcpt="550 5.1.1 no such user")
    sc = sinks(IP["c"], p, rcpt="550 5.7.1 go away")
    m = sender(mtas, dns, p, aliases=("postmaster: pm@c.test",))
    inject(m, "", ["x@b.test"], make_msg("pm-fails"))
    assert m.wait_log(r"undeliverable report dropped"), m.log[-3000:]
    assert wait_until(lambda: not m.queue(), 15), m.queue()
    n = len(sc.txns())
    time.sleep(2.5)         # a loop would go on (retry_min = 2s)
    assert len(sc.txns()) == n == 1, [t.rcpt_lines for t in sc.txns()]
    assert m.queue() == []


# ---------------------------------------------------------------------------------------------
# Forwarding and crashes


def test_forward_to_a_remote_address(dns, mtas):
    p = smtp_port([IP["b"]])
    m = sender(mtas, dns, p, aliases=("postmaster: alice", "fwd: someone@b.test"))
    rcv = mtas(host=IP["b"], port=p, hostname="mx.b.test", domains=("b.test",),
               users=("someone",), aliases=("postmaster: someone",), relay="", dns=dns,
               smtp_port=m.port)
    with Client(m.host, m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<ext@c.test>", 250)
        r = c.cmd("RCPT TO:<fwd@a.test>")
        assert r.code == 250, r
    qid = inject(m, "ext@c.test", ["fwd@a.test"], make_msg("forwarded", frm="ext@c.test",
                                                            to="fwd@a.test"))
    fwd = m.wait_log(r"%s forwarded as ([0-9A-F]{16})" % qid)
    assert fwd
    [got] = rcv.maildir("someone", wait_for=1)
    assert got.raw.startswith(b"Return-Path: <ext@c.test>\n"), got.text[:200]
    assert "\nDelivered-To: fwd@a.test\n" in got.text
    assert "Subject: forwarded" in got.text
    assert m.wait_log(sent_line(fwd.group(1), "someone@b.test", "mx.b.test", IP["b"]))


def test_kill9_during_delivery_then_restart_delivers(dns, sinks, mtas):
    """The sender dies while the server stalls before answering the end of data (so the
    message was never acknowledged); after a restart it is delivered, once."""
    p = smtp_port([IP["b"]])

    def dot(conn, txn):
        return DROP if s.conns[0] is conn else None
    s = sinks(IP["b"], p, hold=True, dot=dot)
    m = sender(mtas, dns, p)
    qid = inject(m, ALICE, ["x@b.test"], make_msg("kill9", "KILL9-MARKER\r\n"))
    assert s.held.wait(15)
    m.kill9()
    s.release()
    m.start()
    assert m.wait_log(r"%s recovered" % qid)
    [t] = s.wait_accepted(1)
    assert b"KILL9-MARKER" in t.data
    assert m.wait_removed(qid)
    assert len(s.accepted()) == 1


# ---------------------------------------------------------------------------------------------
# relayhost_auth goes only over verified TLS; tls_policy_map is parsed whole

RELAY_USER, RELAY_PW = "relayuser", "relay-secret-7"
AUTH_EXT = DEFAULT_EXT + ("AUTH PLAIN LOGIN",)


def auth_smarthost(sinks, tmp_path, trusted_name=None):
    """A smarthost sink on 127.0.0.13 offering STARTTLS and AUTH. Its certificate is
    self-signed for smarthost.test, or for IP:127.0.0.13 (what a verified [127.0.0.13]
    relayhost checks). Returns (sink, port, certfile)."""
    host = IP["smarthost"]
    if trusted_name:
        crt, key = make_cert(str(tmp_path), host, san="IP:%s" % host)
    else:
        crt, key = make_cert(str(tmp_path), "smarthost.test")
    p = smtp_port([host])
    return sinks(host, p, ext=AUTH_EXT, tls=(crt, key)), p, crt


def relay_cfg(p, *more):
    return ["relayhost = [%s]:%d" % (IP["smarthost"], p),
            "relayhost_auth = %s:%s" % (RELAY_USER, RELAY_PW)] + list(more)


def plain_token():
    return base64.b64encode(("\0%s\0%s" % (RELAY_USER, RELAY_PW)).encode()).decode()


def sent_secret(sink):
    """Did any connection to sink carry the password or an AUTH command?"""
    for c in list(sink.conns):
        for ln in c.lines:
            if ln.upper().startswith("AUTH") or plain_token() in ln or RELAY_PW in ln:
                return True
    return False


def test_relayhost_auth_not_sent_over_unverified_tls(dns, sinks, mtas, tmp_path):
    """Default policy (may) and a self-signed smarthost: the password would go to whoever
    answers. Nothing is sent; the message is deferred with the reason."""
    hub, p, _ = auth_smarthost(sinks, tmp_path)
    m = sender(mtas, dns, smtp_port(), extra=relay_cfg(p))
    qid = inject(m, ALICE, ["x@far.test"], make_msg("no auth over unverified tls"))
    assert m.wait_log(r"%s to=<x@far\.test> relay=none delay=\d+s dsn=4\.7\.0 "
                      r"status=deferred \(relayhost_auth not sent: TLS not verified" % qid), \
        m.log[-3000:]
    assert re.search(r"relayhost_auth not sent: TLS not verified \(the TLS policy for "
                     r"\[127\.0\.0\.13\]:%d is may" % p, m.log)
    assert qid in m.queue()
    assert not sent_secret(hub), [c.lines for c in hub.conns]
    # not even the envelope went to the unverified host
    assert hub.conns == [] and hub.txns() == []
    assert RELAY_PW not in m.log


@pytest.mark.parametrize("how", ["tls_policy", "tls_policy_map"])
def test_relayhost_auth_sent_over_verified_tls(dns, sinks, mtas, tmp_path, how):
    hub, p, crt = auth_smarthost(sinks, tmp_path, trusted_name=True)
    pol = ["tls_policy = verify"] if how == "tls_policy" else \
        ["tls_policy_map = other.test=none [%s]:%d=verify" % (IP["smarthost"], p)]
    m = sender(mtas, dns, smtp_port(), extra=relay_cfg(p, "tls_ca_file = %s" % crt, *pol))
    qid = inject(m, ALICE, ["x@far.test"], make_msg("auth over verified tls"))
    [t] = hub.wait_accepted(1)
    assert t.rcpts == ["x@far.test"]
    c = hub.conns[0]
    assert c.tls_from is not None
    assert c.auth_lines == ["AUTH PLAIN " + plain_token()], c.lines
    # AUTH only inside TLS, before the MAIL
    i = c.lines.index(c.auth_lines[0])
    assert c.tls_from <= i < c.verbs().index("MAIL"), c.lines
    assert m.wait_log(r"%s to=<x@far\.test> relay=\S*\[127\.0\.0\.13\] .*status=sent" % qid)
    assert RELAY_PW not in m.log and plain_token() not in m.log


def test_relayhost_auth_not_sent_when_verify_fails(dns, sinks, mtas, tmp_path):
    """verify with a CA that did not sign the smarthost's certificate: the handshake fails
    and no AUTH follows."""
    hub, p, _ = auth_smarthost(sinks, tmp_path, trusted_name=True)
    other, _ = make_cert(str(tmp_path), "ca.test")
    m = sender(mtas, dns, smtp_port(),
               extra=relay_cfg(p, "tls_ca_file = %s" % other, "tls_policy = verify"))
    qid = inject(m, ALICE, ["x@far.test"], make_msg("verify fails"))
    assert m.wait_log(r"%s to=<x@far\.test> .*dsn=4\.7\.5 status=deferred \(TLS handshake "
                      r"failed: certificate verification failed" % qid), m.log[-3000:]
    assert qid in m.queue()
    assert not sent_secret(hub), [c.lines for c in hub.conns]
    assert hub.txns() == []


def test_relayhost_auth_unverified_tls_accepts_the_risk(dns, sinks, mtas, tmp_path):
    hub, p, _ = auth_smarthost(sinks, tmp_path)
    m = sender(mtas, dns, smtp_port(),
               extra=relay_cfg(p, "relayhost_auth_unverified_tls = yes"))
    assert m.wait_log(r"config: relayhost_auth_unverified_tls = yes: the relayhost_auth "
                      r"password goes to any server")
    qid = inject(m, ALICE, ["x@far.test"], make_msg("auth over unverified tls"))
    [t] = hub.wait_accepted(1)
    c = hub.conns[0]
    assert c.tls_from is not None and c.auth_lines == ["AUTH PLAIN " + plain_token()], c.lines
    assert c.lines.index(c.auth_lines[0]) >= c.tls_from
    assert m.wait_log(r"%s to=<x@far\.test> relay=\S*\[127\.0\.0\.13\] .*status=sent" % qid)


def test_long_tls_policy_map_is_used_to_its_last_entry(dns, sinks, mtas):
    """A map of more than 2,048 characters: its last entry (the relayhost: encrypt, over a
    global none) still counts, so a smarthost without STARTTLS gets nothing."""
    p = smtp_port([IP["smarthost"]])
    hub = sinks(IP["smarthost"], p)
    filler = " ".join("d%03d.filler.test=none" % i for i in range(150))
    entry = "[%s]:%d=encrypt" % (IP["smarthost"], p)
    assert len(filler) > 2048
    m = sender(mtas, dns, smtp_port(),
               extra=["relayhost = [%s]:%d" % (IP["smarthost"], p), "tls_policy = none",
                      "tls_policy_map = %s %s" % (filler, entry)])
    qid = inject(m, ALICE, ["x@far.test"], make_msg("long map"))
    assert m.wait_log(r"%s to=<x@far\.test> relay=\S*\[127\.0\.0\.13\] .*dsn=4\.7\.4 "
                      r"status=deferred \(TLS required but not offered" % qid), m.log[-3000:]
    assert hub.txns() == []
