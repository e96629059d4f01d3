"""TLS: STARTTLS on the SMTP port (offered, verified against the self-signed pair, the
plaintext-injection defence of CVE-2011-0411, the session reset), implicit TLS on
smtps_listen, protocol floor, a session that dies inside DATA, certificate reload on SIGHUP,
and the sending side: STARTTLS towards another posteld, the encrypt and verify policies, and
the client side of the injection defence against a scripted server.

Real clients: Python ssl/smtplib, swaks --tls and openssl s_client. Everything is on
127.0.0.0/8; every posteld has dns_servers and relayhost on 127.0.0.1 port 1 unless a test
points relayhost at a receiver on 127.0.0.2.
"""
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess

import pytest

from helpers import HOSTNAME, free_port, msg, queue_id, wait_until
from trusthelp import (RECEIVER_IP, FakeSmtp, TClient, cert_der, client_ctx, ehlo_keywords,
                       make_cert, make_passwd, msg_text, nothing_stored, receiver,
                       s_client_subject, sender)


def selfsigned(server):
    return os.path.join(server.spool, "tls", "selfsigned.crt")


# ---- STARTTLS on the SMTP port ---------------------------------------------------------------

def test_starttls_verified_against_selfsigned_pair(server):
    crt = selfsigned(server)
    assert os.path.isfile(crt) and os.path.isfile(os.path.join(server.spool, "tls",
                                                               "selfsigned.key"))
    assert server.wait_log(r"tls: made a self-signed certificate for mx\.test")
    with TClient(server.host, server.port) as c:
        before = c.ehlo()
        c.starttls(client_ctx(cafile=crt), server_hostname=HOSTNAME, ehlo=False)
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        # the certificate is the pair in the spool, and it names the host
        assert c.sock.getpeercert(binary_form=True) == cert_der(crt)
        assert c.sock.getpeercert()["subject"] == ((("commonName", HOSTNAME),),)
        after = c.ehlo()
        assert "STARTTLS" in ehlo_keywords(before)
        assert "STARTTLS" not in ehlo_keywords(after)
        # a whole transaction inside TLS
        r = c.send_message("tls@example.org", ["alice@localhost"], msg("verified tls"),
                           ehlo=False)
        assert r.code == 250, r
        # the last reply of a STARTTLS session reaches the client before the close
        assert c.cmd("QUIT").text == "221 2.0.0 mx.test closing connection"
        assert c.wait_closed(5.0)
    assert server.wait_log(r"sid=\w+ client=\[127\.0\.0\.1\] TLS established: TLSv1\.[23] "
                           r"with cipher \S+")
    assert len(server.maildir("alice", wait_for=1)) == 1


def test_selfsigned_certificate_does_not_match_another_name(server):
    with TClient(server.host, server.port) as c:
        c.ehlo()
        c.expect("STARTTLS", 220)
        with pytest.raises(ssl.SSLCertVerificationError):
            c.wrap(client_ctx(cafile=selfsigned(server)), server_hostname="other.test")
    assert server.wait_log(r"TLS handshake failed")
    assert server.healthy()


def test_ehlo_before_and_after_tls_and_session_reset(make_server, tmp_path):
    pw = make_passwd(str(tmp_path / "passwd"))
    server = make_server(extra=["auth_passwd_file = %s" % pw])
    with TClient(server.host, server.port) as c:
        kw = ehlo_keywords(c.ehlo())
        assert "STARTTLS" in kw
        assert not [k for k in kw if k.startswith("AUTH")], kw      # no AUTH in plaintext
        # a transaction begun in plaintext is forgotten by the TLS reset (RFC 3207 4.2)
        c.expect("MAIL FROM:<before@example.org>", 250)
        c.starttls(ehlo=False)
        r = c.cmd("MAIL FROM:<x@example.org>")
        assert r.code == 503 and "EHLO" in r.text, r
        kw = ehlo_keywords(c.ehlo())
        assert "AUTH PLAIN LOGIN" in kw
        assert "STARTTLS" not in kw
        r = c.cmd("STARTTLS")
        assert r.text == "503 5.5.1 Error: TLS already active", r
        # no "nested MAIL": the plaintext MAIL is gone
        c.expect("MAIL FROM:<after@example.org>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("after reset") + ".\r\n")
        assert c.reply().code == 250
    m = server.maildir("bob", wait_for=1)
    assert len(m) == 1 and "Return-Path: <after@example.org>" in m[0].text


def test_starttls_plaintext_injection_is_discarded(server):
    """CVE-2011-0411: commands sent after STARTTLS in the same write never run inside TLS."""
    with TClient(server.host, server.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nNOOP\r\n")                 # one write
        r = c.reply()
        assert r.text == "220 2.0.0 Ready to start TLS", r
        assert c.buf == b"", "more than the 220 came in plaintext: %r" % c.buf
        c.wrap()
        c.send(b"EHLO after.test\r\n")
        first = c.reply()
        # the first reply inside TLS answers EHLO, not the injected NOOP
        assert first.code == 250 and first.first.startswith("250-mx.test Hello after.test"), \
            first
        assert c.no_reply(0.5), "an extra reply arrived inside TLS: %r" % c.buf
        assert c.cmd("NOOP").code == 250                # NOOP itself works inside TLS
    assert server.wait_log(r"client=\[127\.0\.0\.1\] discarded 6 octets sent after STARTTLS")


def test_starttls_injected_transaction_is_dropped(server):
    """A pipelined MAIL/RCPT after STARTTLS would become a transaction inside TLS if the
    plaintext buffer were kept: RCPT without MAIL must get 503 afterwards."""
    inj = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
    with TClient(server.host, server.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\n" + inj)
        assert c.reply().code == 220
        assert c.buf == b""
        c.wrap()
        c.ehlo("after.test")
        r = c.cmd("RCPT TO:<alice@localhost>")
        assert r.code == 503 and "MAIL" in r.text, r
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
    assert server.wait_log(r"discarded %d octets sent after STARTTLS" % len(inj))
    assert nothing_stored(server)


def test_smtplib_starttls_received_header_says_esmtps(server):
    body = msg("smtplib over tls")
    with smtplib.SMTP(server.host, server.port, local_hostname="tls-client.test",
                      timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        ctx = client_ctx(cafile=selfsigned(server))
        ctx.check_hostname = False          # smtplib checks the name it connected to: an IP
        code, _ = s.starttls(context=ctx)
        assert code == 220
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.sendmail("tls@example.org", ["alice@localhost"], body) == {}
    m = server.maildir("alice", wait_for=1)
    assert len(m) == 1
    rx = (r"Received: from tls-client\.test \(\[127\.0\.0\.1\]\)\n"
          r"\t\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)\n"
          r"\tby mx\.test \(postel\) with ESMTPS id [0-9A-F]{16}\n")
    assert re.search(rx, m[0].text), m[0].header_block()
    assert server.wait_log(r"received from=<tls@example.org> .* proto=ESMTPS")


def test_swaks_tls(server):
    r = subprocess.run(["swaks", "--server", "%s:%d" % (server.host, server.port), "--tls",
                        "--timeout", "10", "--to", "bob@localhost", "--from",
                        "swaks@example.org", "--header", "Subject: swaks tls"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in r.stdout
    assert "TLS started with cipher" in r.stdout
    # the 221 to QUIT comes inside TLS, before the close
    assert "<~  221 2.0.0 mx.test closing connection" in r.stdout
    m = server.maildir("bob", wait_for=1)
    assert len(m) == 1 and "with ESMTPS id" in m[0].text and "(using TLSv1." in m[0].text


def test_tls_1_1_refused_1_2_accepted(server):
    with TClient(server.host, server.port) as c:
        c.ehlo()
        c.expect("STARTTLS", 220)
        old = client_ctx(minv=ssl.TLSVersion.TLSv1_1, maxv=ssl.TLSVersion.TLSv1_1,
                         seclevel0=True)
        with pytest.raises((ssl.SSLError, OSError)):
            c.wrap(old)
            c.ehlo()            # should the handshake "succeed", nothing may be answered
    assert server.wait_log(r"TLS handshake failed: .*(unsupported protocol|version)"), \
        server.log[-1500:]
    with TClient(server.host, server.port) as c:
        c.ehlo()
        c.starttls(client_ctx(maxv=ssl.TLSVersion.TLSv1_2))
        assert c.sock.version() == "TLSv1.2"
    assert server.wait_log(r"TLS established: TLSv1\.2 with cipher")
    assert server.healthy()


def test_tls_session_dies_inside_data(server):
    """A TLS session cut in the middle of DATA (small content, then content past the 256 KiB
    spill, then a clean close_notify in DATA): nothing is delivered or left behind."""
    line = b"x" * 998 + b"\r\n"
    cases = [("abrupt-small", line * 3, False), ("abrupt-spilled", line * 400, False),
             ("close-notify", line * 5, True)]
    for tag, content, clean in cases:
        c = TClient(server.host, server.port)
        try:
            # everything up to the cut must work: a failed handshake fails the test
            c.ehlo()
            c.starttls()
            assert c.sock.version() in ("TLSv1.2", "TLSv1.3"), c.sock.version()
            c.expect("MAIL FROM:<cut@example.org>", 250)
            c.expect("RCPT TO:<alice@localhost>", 250)
            c.expect("DATA", 354)
            c.send(b"Subject: cut " + tag.encode() + b"\r\n\r\n" + content)
            if len(content) > 256 * 1024:
                assert wait_until(lambda: server.spool_files("incoming"), 10), \
                    "%s: nothing spilled to incoming/" % tag
            if clean:
                try:
                    c.sock = c.sock.unwrap()
                except (OSError, ssl.SSLError):
                    pass        # the server may answer the close_notify by closing
        finally:
            c.close()
    assert wait_until(lambda: not server.spool_files("incoming") and
                      not server.spool_files("queue"), 10.0), \
        (server.spool_files("incoming"), server.spool_files("queue"))
    assert server.healthy()
    assert not server.find_mail("Subject: cut ")
    assert "received from=<cut@example.org>" not in server.log


def test_smtps_implicit_tls(make_server, tmp_path):
    pw = make_passwd(str(tmp_path / "passwd"))
    p3 = free_port()
    server = make_server(extra=["smtps_listen = 127.0.0.1:%d" % p3,
                                "auth_passwd_file = %s" % pw])
    assert server.wait_log(r"listening on 127\.0\.0\.1:%d \(smtps\)" % p3)
    # no plaintext greeting: the server waits for a ClientHello
    with TClient(server.host, p3, greet=False) as c:
        assert c.no_reply(0.6), "plaintext before the handshake: %r" % c.buf
        c.wrap(client_ctx(cafile=selfsigned(server)), server_hostname=HOSTNAME)
        g = c.reply()
        assert g.text == "220 mx.test ESMTP postel", g
        kw = ehlo_keywords(c.ehlo())
        assert "AUTH PLAIN LOGIN" in kw and "STARTTLS" not in kw
        assert c.cmd("STARTTLS").code == 503
        r = c.cmd("MAIL FROM:<alice@localhost>")
        assert r.text == "530 5.7.0 Authentication required", r
    assert server.wait_log(r"TLS established: TLSv1\.[23]")
    # a plaintext SMTP client on the smtps port gets no SMTP answer
    with TClient(server.host, p3, greet=False) as c:
        c.send(b"EHLO plain.test\r\n")
        assert c.wait_closed(10.0)
        assert not re.search(rb"^\d{3}[ -]", c.buf), c.buf
    assert server.wait_log(r"TLS handshake failed")
    # openssl s_client, implicit TLS
    subj, r = s_client_subject(server.host, p3, starttls=False)
    assert subj is not None and "mx.test" in subj, r.stdout + r.stderr
    assert server.healthy()


# ---- certificate reload ------------------------------------------------------------------

def _peer_der(host, port):
    with TClient(host, port) as c:
        c.ehlo()
        c.starttls(ehlo=False)
        der = c.sock.getpeercert(binary_form=True)
        c.ehlo()
        return der


def test_sighup_reloads_certificate(make_server, tmp_path):
    a = make_cert(str(tmp_path), "a.test")
    b = make_cert(str(tmp_path), "b.test")
    crt, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    shutil.copy(a[0], crt)
    shutil.copy(a[1], key)
    server = make_server(extra=["tls_cert = %s" % crt, "tls_key = %s" % key])
    assert not os.path.exists(selfsigned(server))       # configured pair, no self-signed one
    assert _peer_der(server.host, server.port) == cert_der(a[0])
    subj, r = s_client_subject(server.host, server.port)
    assert subj is not None and "a.test" in subj, r.stdout + r.stderr
    # a session that started before the reload keeps working
    old = TClient(server.host, server.port)
    try:
        old.ehlo()
        old.starttls()
        shutil.copy(b[0], crt + ".new")
        shutil.copy(b[1], key + ".new")
        os.replace(key + ".new", key)
        os.replace(crt + ".new", crt)
        mark = len(server.log)
        os.kill(server.pid, signal.SIGHUP)
        assert wait_until(lambda: "SIGHUP: certificate and key reloaded" in server.log[mark:],
                          5.0), server.log[-1500:]
        assert _peer_der(server.host, server.port) == cert_der(b[0])
        subj, r = s_client_subject(server.host, server.port)
        assert subj is not None and "b.test" in subj, r.stdout + r.stderr
        r = old.send_message("old@example.org", ["alice@localhost"], msg("old session"),
                             ehlo=False)
        assert r.code == 250, r
    finally:
        old.close()
    assert len(server.maildir("alice", wait_for=1)) == 1


def test_sighup_with_a_broken_pair_keeps_the_old_certificate(make_server, tmp_path):
    """Half-renewed files (new certificate, old key) on SIGHUP: a warning, the daemon runs on
    with the certificate it has."""
    a = make_cert(str(tmp_path), "a.test")
    b = make_cert(str(tmp_path), "b.test")
    crt, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    shutil.copy(a[0], crt)
    shutil.copy(a[1], key)
    server = make_server(extra=["tls_cert = %s" % crt, "tls_key = %s" % key])
    shutil.copy(b[0], crt)                      # the key is still a's
    os.kill(server.pid, signal.SIGHUP)
    assert server.wait_log(r"warning: SIGHUP: certificate not reloaded: .*"), server.log[-1500:]
    assert server.running()
    assert _peer_der(server.host, server.port) == cert_der(a[0])
    assert server.healthy()


def test_tls_cert_unreadable_at_start_is_fatal(make_server, tmp_path):
    server = make_server(extra=["tls_cert = %s" % (tmp_path / "missing.crt"),
                                "tls_key = %s" % (tmp_path / "missing.key")], start=False)
    server.expect_down = True
    with pytest.raises(RuntimeError):
        server.start(timeout=5)
    assert server.proc.wait(5) != 0
    assert re.search(r"tls: certificate .*missing\.crt", server.log), server.log


# ---- the sending side --------------------------------------------------------------------

def _relay_one(snd, subject, to="alice@example.test"):
    r = snd.send("alice@sender.test", [to], msg_text(subject, to=to))
    assert r.code == 250, r
    return queue_id(r)


def test_outbound_starttls_to_posteld(make_server):
    rcv = receiver(make_server)
    snd = sender(make_server, rcv.port)
    qid = _relay_one(snd, "outbound tls")
    m = rcv.maildir("alice", wait_for=1)
    assert len(m) == 1, snd.log[-2000:]
    rx = (r"Received: from sender\.test \(\[127\.0\.0\.1\]\)\n\t\(using TLSv1\.[23] with "
          r"cipher \S+ \(\d+/\d+ bits\)\)\n\tby mx\.test \(postel\) with ESMTPS id ")
    assert re.search(rx, m[0].text), m[0].header_block()
    assert rcv.wait_log(r"client=\[127\.0\.0\.1\] TLS established: TLSv1\.[23]")
    assert snd.wait_log(r"%s to=<alice@example.test> relay=127\.0\.0\.2\[127\.0\.0\.2\] .*"
                        r"dsn=2\.0\.0 status=sent" % qid)


def test_outbound_tls_policy_none_stays_plaintext(make_server):
    rcv = receiver(make_server)
    snd = sender(make_server, rcv.port, extra=["tls_policy = none"])
    qid = _relay_one(snd, "outbound plain")
    m = rcv.maildir("alice", wait_for=1)
    assert len(m) == 1, snd.log[-2000:]
    assert "with ESMTP id" in m[0].text and "(using TLS" not in m[0].text
    assert snd.wait_log(r"%s to=<alice@example.test> .*status=sent" % qid)
    assert "TLS established" not in rcv.log


@pytest.mark.parametrize("how", ["tls_policy", "tls_policy_map"])
def test_outbound_encrypt_towards_a_server_without_tls_defers(make_server, how):
    rcv = receiver(make_server, extra=["tls = off"])
    extra = ["tls_policy = encrypt"] if how == "tls_policy" else \
        ["tls_policy = may", "tls_policy_map = other.test=none [%s]:%d=encrypt" %
         (RECEIVER_IP, rcv.port)]
    snd = sender(make_server, rcv.port, extra=extra)
    qid = _relay_one(snd, "must encrypt")
    assert snd.wait_log(r"%s to=<alice@example.test> relay=127\.0\.0\.2\[127\.0\.0\.2\] .*"
                        r"dsn=4\.7\.4 status=deferred \(TLS required but not offered" % qid), \
        snd.log[-2000:]
    assert qid in snd.spool_files("queue")
    assert "received from=" not in rcv.log
    assert not rcv.maildir("alice")


def test_outbound_verify_succeeds_with_the_right_ca_and_name(make_server, tmp_path):
    # the relayhost is [127.0.0.2]: the name checked is that IP address (an IP SAN)
    crt, key = make_cert(str(tmp_path), RECEIVER_IP, san="IP:%s" % RECEIVER_IP)
    rcv = receiver(make_server, extra=["tls_cert = %s" % crt, "tls_key = %s" % key])
    snd = sender(make_server, rcv.port, extra=["tls_policy = verify", "tls_ca_file = %s" % crt])
    qid = _relay_one(snd, "verified outbound")
    assert snd.wait_log(r"%s to=<alice@example.test> .*dsn=2\.0\.0 status=sent" % qid), \
        snd.log[-2000:]
    m = rcv.maildir("alice", wait_for=1)
    assert len(m) == 1 and "with ESMTPS id" in m[0].text


@pytest.mark.parametrize("case", ["self-signed", "wrong-name", "wrong-ca"])
def test_outbound_verify_failures_defer(make_server, tmp_path, case):
    t = str(tmp_path)
    rextra, sextra = [], ["tls_policy = verify"]
    if case == "wrong-name":
        crt, key = make_cert(t, "127.0.0.3", san="IP:127.0.0.3")
        rextra = ["tls_cert = %s" % crt, "tls_key = %s" % key]
        sextra.append("tls_ca_file = %s" % crt)
        why = "IP address mismatch"
    elif case == "wrong-ca":
        crt, key = make_cert(t, RECEIVER_IP, san="IP:%s" % RECEIVER_IP)
        other, _ = make_cert(t, "ca.test")
        rextra = ["tls_cert = %s" % crt, "tls_key = %s" % key]
        sextra.append("tls_ca_file = %s" % other)
        why = "certificate verification failed"
    else:
        why = "certificate verification failed: self.signed certificate"
    rcv = receiver(make_server, extra=rextra)
    snd = sender(make_server, rcv.port, extra=sextra)
    qid = _relay_one(snd, "verify " + case)
    assert snd.wait_log(r"%s to=<alice@example.test> .*dsn=4\.7\.5 status=deferred "
                        r"\(TLS handshake failed: .*%s" % (qid, why)), snd.log[-2000:]
    assert qid in snd.spool_files("queue")
    assert "received from=" not in rcv.log
    assert rcv.wait_log(r"TLS handshake failed")


@pytest.mark.parametrize("reply", [b"220 2.0.0 go\r\n250 2.0.0 fake injected\r\n",
                                   b"220 2.0.0 go\r\n"])
def test_outbound_starttls_response_injection(make_server, tmp_path, reply):
    """The client side of CVE-2011-0411: what a server sends after its 220 to STARTTLS (in the
    same write) is dropped; inside TLS the client starts again with EHLO."""
    crt, key = make_cert(str(tmp_path), "fake.test")
    port = free_port(RECEIVER_IP)
    fake = FakeSmtp(RECEIVER_IP, port, crt, key, starttls_reply=reply)
    try:
        snd = sender(make_server, port)
        qid = _relay_one(snd, "injection")
        assert fake.done.wait(15), snd.log[-2000:]
        assert fake.errors == [], fake.errors
        assert [ln.split()[0] for ln in fake.lines] == ["EHLO", "STARTTLS"], fake.lines
        assert fake.leftover == b"", "client pipelined after STARTTLS: %r" % fake.leftover
        assert fake.tls_lines == ["EHLO sender.test"], fake.tls_lines
        assert snd.wait_log(r"%s to=<alice@example.test> .*dsn=4\.3\.0 status=deferred "
                            r"\(421 4\.3\.0 fake\.test test over\)" % qid), snd.log[-2000:]
    finally:
        fake.stop()
