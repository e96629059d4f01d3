"""AUTH (RFC 4954, PLAIN and LOGIN) and submission: only inside TLS (538 before it), success
with smtplib and swaks, failures that never tell a wrong password from an unknown user,
throttling and lockout per client address, submission ports that need AUTH before MAIL, sender
ownership (the default rule and sender_login_file), the AUTH= MAIL parameter, ESMTPA/ESMTPSA
Received headers, plaintext AUTH for trusted networks only, and smarthost AUTH
(relayhost_auth) from one posteld to another.

Different tests use different loopback source addresses where the throttle (keyed by client
address) would otherwise let one check's failures slow the next.
"""
import base64
import ctypes
import re
import smtplib
import subprocess
import threading
import time

import pytest

from helpers import VALGRIND, Closed, free_port, msg, queue_id, wait_until
from trusthelp import (PASSWORDS, RECEIVER_IP, TClient, client_ctx, ehlo_keywords, implicit,
                       make_cert, make_passwd, msg_text, receiver, sender)

ALICE, ALICE_PW = "alice", PASSWORDS["alice"]
BOB, BOB_PW = "bob", PASSWORDS["bob"]
INVALID = "535 5.7.8 Authentication credentials invalid"
TEMPFAIL = "454 4.7.0 Temporary authentication failure"


@pytest.fixture
def passwd(tmp_path):
    return make_passwd(str(tmp_path / "passwd"))


@pytest.fixture
def sub(make_server, passwd):
    """A posteld with a submission port (s.sub) and an smtps port (s.smtps)."""
    p2, p3 = free_port(), free_port()
    s = make_server(extra=["submission_listen = 127.0.0.1:%d" % p2,
                           "smtps_listen = 127.0.0.1:%d" % p3,
                           "auth_passwd_file = %s" % passwd])
    s.sub, s.smtps = p2, p3
    return s


def tls_session(server, port, source=None):
    c = TClient(server.host, port, source=source)
    c.ehlo()
    c.starttls()
    return c


def queued(server, qid, timeout=5.0):
    return wait_until(lambda: qid in server.spool_files("queue"), timeout)


def slow_passwd(path, rounds, users=None):
    """A password file of SHA-512 crypt hashes with `rounds` rounds: each check takes long
    enough for the tests of parallel and queued checks (libcrypt through ctypes, as the
    daemon uses it)."""
    users = PASSWORDS if users is None else users
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lines = []
    for i, (u, pw) in enumerate(users.items()):
        h = lib.crypt(pw.encode(), ("$6$rounds=%d$slowsalt%08d" % (rounds, i)).encode())
        assert h is not None and h.startswith(b"$6$rounds="), h
        lines.append("%s:%s" % (u, h.decode()))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def auth_all_at_once(server, port, creds, source=None, timeout=120.0, may_close=False):
    """Open one TLS session per (user, password) in creds, then send AUTH PLAIN in all of
    them at the same moment. Returns (sessions, got, wait): got fills with (reply, monotonic
    time it arrived) in the order of creds; wait() joins the readers and returns got and the
    time AUTH was sent. may_close: a session closed before its reply gets (None, time)."""
    n = len(creds)
    sessions = [None] * n

    def connect(i):
        sessions[i] = tls_session(server, port, source=source)

    openers = [threading.Thread(target=connect, args=(i,)) for i in range(n)]
    for t in openers:
        t.start()
    for t in openers:
        t.join(timeout)
    assert all(sessions), "not every session could be opened"
    gate = threading.Barrier(n + 1, timeout=timeout)
    got = [None] * n

    def run(i):
        user, pw = creds[i]
        tok = base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode()
        gate.wait()
        try:
            sessions[i].send("AUTH PLAIN %s\r\n" % tok)
            r = sessions[i].reply(timeout=timeout)
        except (Closed, OSError):
            if not may_close:
                raise
            r = None
        got[i] = (r, time.monotonic())

    readers = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in readers:
        t.start()
    gate.wait()
    sent = time.monotonic()

    def wait():
        for t in readers:
            t.join(timeout)
        assert all(got), "a session got no reply to AUTH"
        return got, sent

    return sessions, got, wait


# ---- before TLS ----------------------------------------------------------------------------

def test_auth_before_tls_is_refused_538(sub):
    for port in (sub.port, sub.sub):
        with TClient(sub.host, port) as c:
            kw = ehlo_keywords(c.ehlo())
            assert "STARTTLS" in kw
            assert not [k for k in kw if k.startswith("AUTH")], kw
            tok = base64.b64encode(b"\0alice\0" + ALICE_PW.encode()).decode()
            r = c.cmd("AUTH PLAIN " + tok)
            assert r.text == ("538 5.7.11 Encryption required for requested authentication "
                              "mechanism"), r
            r = c.cmd("AUTH LOGIN")
            assert r.code == 538, r
            # nothing was checked: no failure counted, no login
    assert "authenticated as" not in sub.log and "authentication failed" not in sub.log


def test_submission_needs_auth_before_mail(sub):
    with TClient(sub.host, sub.sub) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<alice@localhost>")
        assert r.text == "530 5.7.0 Authentication required", r
        c.starttls()
        r = c.cmd("MAIL FROM:<alice@localhost>")
        assert r.text == "530 5.7.0 Authentication required", r
        assert c.cmd("RCPT TO:<alice@localhost>").code == 503
    # the SMTP port takes mail for local users without AUTH
    assert sub.healthy()


# ---- success -------------------------------------------------------------------------------

@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_smtplib_login_on_submission_then_relay(sub, mech):
    with smtplib.SMTP(sub.host, sub.sub, local_hostname="mua.test", timeout=20) as s:
        s.ehlo()
        s.starttls(context=client_ctx())
        s.ehlo()
        assert s.has_extn("auth") and "PLAIN" in s.esmtp_features["auth"].split()
        s.user, s.password = ALICE, ALICE_PW
        meth = s.auth_plain if mech == "PLAIN" else s.auth_login
        code, text = s.auth(mech, meth, initial_response_ok=(mech == "PLAIN"))
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        # relaying to any domain is allowed now
        s.mail("alice@localhost")
        code, text = s.rcpt("far@remote.test")
        assert (code, text) == (250, b"2.1.5 Ok")
        code, text = s.data(msg("submitted " + mech).encode())
        assert code == 250, text
        qid = re.search(rb"queued as ([0-9A-F]{16})", text).group(1).decode()
        # and mail for a local user in the same session
        assert s.sendmail("alice@localhost", ["bob@localhost"], msg("local " + mech)) == {}
    assert queued(sub, qid), sub.log[-2000:]
    assert sub.wait_log(r"%s received from=<alice@localhost> .* proto=ESMTPSA "
                        r"sasl_username=alice" % qid)
    assert sub.wait_log(r"client=\[127\.0\.0\.1\] authenticated as alice")
    m = sub.maildir("bob", wait_for=1)
    assert len(m) == 1
    assert re.search(r"Received: from mua\.test \(\[127\.0\.0\.1\]\)\n\t\(using TLSv1\.[23] "
                     r"[^\n]*\)\n\tby mx\.test \(postel\) with ESMTPSA id ", m[0].text), \
        m[0].header_block()


def test_auth_login_exchange_and_cancel(sub):
    with tls_session(sub, sub.sub) as c:
        r = c.expect("AUTH LOGIN", 334)
        assert r.text == "334 VXNlcm5hbWU6"
        r = c.cmd("*")
        assert r.code == 501 and "cancel" in r.text.lower(), r
        # LOGIN with the user name as initial response
        r = c.expect("AUTH LOGIN " + base64.b64encode(b"alice").decode(), 334)
        assert r.text == "334 UGFzc3dvcmQ6"
        r = c.cmd("*")
        assert r.code == 501, r
        assert c.auth_login(ALICE, ALICE_PW).text == "235 2.7.0 Authentication successful"
        assert c.auth_plain(ALICE, ALICE_PW).code == 503          # already authenticated
        assert "AUTH PLAIN LOGIN" not in ehlo_keywords(c.ehlo())
    assert "authentication failed" not in sub.log       # a cancel is not a failed login


def test_swaks_auth_on_submission(sub):
    r = subprocess.run(["swaks", "--server", "%s:%d" % (sub.host, sub.sub), "--tls",
                        "--auth", "LOGIN", "--auth-user", ALICE, "--auth-password", ALICE_PW,
                        "--timeout", "20", "--from", "alice@localhost", "--to", "bob@localhost",
                        "--header", "Subject: swaks auth"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  235 2.7.0 Authentication successful" in r.stdout
    m = sub.maildir("bob", wait_for=1)
    assert len(m) == 1 and "with ESMTPSA id" in m[0].text


def test_smtps_auth_and_received_esmtpsa(sub):
    c = implicit(sub, sub.smtps)
    with c:
        assert c.greeting.code == 220
        c.ehlo("mua.test")
        assert c.auth_plain(BOB, BOB_PW).code == 235
        r = c.send_message("bob@example.test", ["far@remote.test", "alice@localhost"],
                           msg("over smtps"), ehlo=False)
        assert r.code == 250, r
        qid = queue_id(r)
    assert sub.wait_log(r"%s received from=<bob@example.test> .* proto=ESMTPSA "
                        r"sasl_username=bob" % qid)
    m = sub.maildir("alice", wait_for=1)
    assert len(m) == 1 and "with ESMTPSA id %s" % qid in m[0].text
    assert "(using TLSv1." in m[0].text
    assert queued(sub, qid)             # far@remote.test waits for its relayhost


def test_auth_mail_parameter(sub, make_server):
    with tls_session(sub, sub.sub) as c:
        assert c.auth_plain(ALICE, ALICE_PW).code == 235
        r = c.cmd("MAIL FROM:<alice@localhost> AUTH=<alice@localhost>")
        assert r.code == 250, r
        c.expect("RSET", 250)
        assert c.cmd("MAIL FROM:<alice@localhost> AUTH=<>").code == 250
        c.expect("RSET", 250)
        # xtext: '+' is encoded as +2B
        assert c.cmd("MAIL FROM:<alice@localhost> AUTH=alice+2Bx@localhost").code == 250
    # without an auth_passwd_file AUTH is not an extension here: AUTH= is unknown
    plain = make_server()
    with plain.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.org> AUTH=<>")
        assert r.code == 555, r


# ---- failures ------------------------------------------------------------------------------

def test_wrong_password_and_unknown_user_look_the_same(sub):
    replies = {}
    for src, (user, pw, how) in zip(("127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"),
                                    [(ALICE, "wrong", "plain"), ("mallory", "wrong", "plain"),
                                     (ALICE, "wrong", "login"), ("mallory", "x", "login")]):
        with tls_session(sub, sub.sub, source=src) as c:
            r = c.auth_plain(user, pw) if how == "plain" else c.auth_login(user, pw)
            replies[(user, how)] = r.text
            # the session goes on: MAIL still needs AUTH
            assert c.cmd("MAIL FROM:<alice@localhost>").code == 530
    assert set(replies.values()) == {INVALID}, replies
    for src in ("127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"):
        assert sub.wait_log(r"client=\[%s\] authentication failed" % re.escape(src))
    assert "mallory" not in sub.log          # the tried name is not logged either
    assert "authenticated as" not in sub.log


def test_plain_authzid_other_than_authcid_is_refused(sub):
    with tls_session(sub, sub.sub, source="127.0.0.25") as c:
        r = c.auth_plain(ALICE, ALICE_PW, authz="bob")
        assert r.text == INVALID, r
        assert c.auth_plain(ALICE, ALICE_PW, authz="alice").code == 235  # same name: fine
    with tls_session(sub, sub.sub, source="127.0.0.26") as c:
        r = c.cmd("AUTH PLAIN %s" % base64.b64encode(b"no nul bytes").decode())
        assert r.code == 501, r
        r = c.cmd("AUTH CRAM-MD5")
        assert r.text.startswith("504 5.5.4"), r


def test_bruteforce_is_slowed_then_locked_out(make_server, passwd):
    p2 = free_port()
    s = make_server(extra=["submission_listen = 127.0.0.1:%d" % p2,
                           "auth_passwd_file = %s" % passwd, "auth_max_failures = 4",
                           "auth_lockout = 10m"])
    src = "127.0.0.31"
    c = tls_session(s, p2, source=src)
    took = []
    with c:
        for i in range(4):
            t0 = time.monotonic()
            r = c.auth_plain(ALICE, "guess-%d" % i)
            took.append(time.monotonic() - t0)
            assert r.text == INVALID, (i, r)
        # 1 s, 2 s, 4 s, then the 4th failure locks (no point in waiting)
        assert took[0] >= 0.8, took
        assert took[1] >= 1.6, took
        assert took[2] >= 2.0, took
        # locked: even the right password is refused, with 421, and the session ends
        r = c.auth_plain(ALICE, ALICE_PW)
        assert r.code == 421 and r.text.startswith("421 4.7.0 ") and \
            "too many failed logins" in r.text, r
        assert c.wait_closed(5.0)
    assert s.wait_log(r"client=\[127\.0\.0\.31\] authentication refused: locked out")
    # a new connection from the same address is refused at AUTH, at once
    with tls_session(s, p2, source=src) as c:
        r = c.auth_login(ALICE, ALICE_PW)
        assert r.code == 421 and "too many failed logins" in r.text, r
        assert c.wait_closed(5.0)
    # the same on the SMTP port (the lockout is per address, not per listener)
    with tls_session(s, s.port, source=src) as c:
        assert c.auth_plain(BOB, BOB_PW).code == 421
    # another address is not affected
    with tls_session(s, p2, source="127.0.0.32") as c:
        assert c.auth_plain(ALICE, ALICE_PW).code == 235
    assert s.log.count("authenticated as alice") == 1


def test_failure_counter_is_per_address_and_success_resets(make_server, passwd):
    p2 = free_port()
    s = make_server(extra=["submission_listen = 127.0.0.1:%d" % p2,
                           "auth_passwd_file = %s" % passwd, "auth_max_failures = 2"])
    with tls_session(s, p2, source="127.0.0.41") as c:
        assert c.auth_plain(ALICE, "wrong").text == INVALID       # 1 of 2
        assert c.auth_plain(ALICE, ALICE_PW).code == 235          # success forgets it
    with tls_session(s, p2, source="127.0.0.41") as c:
        assert c.auth_plain(ALICE, "wrong").text == INVALID       # 1 of 2 again
        assert c.auth_plain(ALICE, ALICE_PW).code == 235


def test_login_of_one_user_does_not_reset_guesses_at_another(make_server, passwd):
    """A valid account must not buy its owner's address unlimited guesses at other users'
    passwords: alice's successes forgive only alice's own failures from that address."""
    p2 = free_port()
    s = make_server(extra=["submission_listen = 127.0.0.1:%d" % p2,
                           "auth_passwd_file = %s" % passwd, "auth_max_failures = 5",
                           "auth_lockout = 10m"])
    src = "127.0.0.51"
    # alice mistypes twice, then logs in: those two are forgiven
    with tls_session(s, p2, source=src) as c:
        assert c.auth_plain(ALICE, "typo-1").text == INVALID
        assert c.auth_plain(ALICE, "typo-2").text == INVALID
        assert c.auth_plain(ALICE, ALICE_PW).code == 235
    # now guesses at bob, each followed by alice's login from the same address
    for i in range(5):
        with tls_session(s, p2, source=src) as c:
            r = c.auth_plain(BOB, "guess-%d" % i)
            assert r.text == INVALID, (i, r)
            r = c.auth_plain(ALICE, ALICE_PW)
            if i < 4:
                assert r.code == 235, (i, r)
            else:
                # the fifth failure from this address locked it: alice's login no longer
                # clears it
                assert r.code == 421 and "too many failed logins" in r.text, (i, r)
                assert c.wait_closed(5.0)
    with tls_session(s, p2, source=src) as c:
        r = c.auth_plain(BOB, "guess-5")
        assert r.code == 421 and "too many failed logins" in r.text, r
    assert s.log.count("client=[127.0.0.51] authentication failed") == 7
    # another address is not affected
    with tls_session(s, p2, source="127.0.0.52") as c:
        assert c.auth_plain(BOB, BOB_PW).code == 235


def test_parallel_attempts_do_not_pass_the_limit(make_server, tmp_path):
    """Checks in progress count: 30 sessions from one address that try a password at the
    same moment get at most auth_max_failures real checks; the others are refused at once,
    without a check."""
    passwd = slow_passwd(str(tmp_path / "passwd"), 20000 if VALGRIND else 300000)
    p2 = free_port()
    s = make_server(extra=["submission_listen = 127.0.0.1:%d" % p2,
                           "auth_passwd_file = %s" % passwd, "auth_max_failures = 5",
                           "auth_lockout = 10m"])
    src = "127.0.0.61"
    n = 30
    sessions, _, wait = auth_all_at_once(s, p2, [(BOB, "guess-%d" % i) for i in range(n)],
                                         source=src)
    try:
        got, _ = wait()
    finally:
        for c in sessions:
            c.close()
    texts = [r.text for r, _ in got]
    checked = texts.count(INVALID)
    assert 1 <= checked <= 5, texts
    # the rest were refused without a check: busy (454) or, once the failures were in, locked
    for t in texts:
        assert t == INVALID or t == TEMPFAIL or t.startswith("421 4.7.0 "), texts
    assert s.wait_log(r"client=\[127\.0\.0\.61\] authentication refused: checks in "
                      r"progress")
    assert wait_until(lambda: s.log.count("client=[127.0.0.61] authentication failed") ==
                      checked, 5.0), s.log[-3000:]
    # five failures, counted as they finished: the address is locked now
    with tls_session(s, p2, source=src) as c:
        r = c.auth_plain(BOB, BOB_PW)
        assert r.code == 421, r


def test_auth_flood_does_not_hold_up_commits(make_server, tmp_path):
    """Password checks have their own small pool and a bounded queue: while a flood of AUTH
    attempts waits for its slow hashes, a message commit on port 25 still gets its 250 at
    once, and AUTH beyond the queue's bound is answered 454 4.7.0 at once."""
    passwd = slow_passwd(str(tmp_path / "passwd"), 20000 if VALGRIND else 300000)
    p2 = free_port()
    # throttling off (auth_lockout = 0): only the queue bound limits the flood
    s = make_server(extra=["submission_listen = 127.0.0.1:%d" % p2,
                           "auth_passwd_file = %s" % passwd, "auth_lockout = 0"])
    n = 40
    # a transaction on port 25, all but the end of its content sent
    m = TClient(s.host, s.port)
    m.ehlo()
    m.expect("MAIL FROM:<carol@example.org>", 250)
    m.expect("RCPT TO:<bob@localhost>", 250)
    m.expect("DATA", 354)
    m.send(msg("during the flood").encode())
    creds = [("user%02d" % i if i % 2 else BOB, "wrong-%d" % i) for i in range(n)]
    sessions, got, wait = auth_all_at_once(s, p2, creds)
    try:
        # the checks are queued once the first answer to them is in
        assert wait_until(lambda: any(got), 60.0)
        t0 = time.monotonic()
        r = m.cmd(".", timeout=60)
        t_commit = time.monotonic() - t0
        at_250 = time.monotonic()
        assert r.code == 250, r
        waiting = sum(1 for x in got if x is None)
        result, sent = wait()
    finally:
        for c in sessions:
            c.close()
        m.close()
    texts = [x.text for x, _ in result]
    busy = texts.count(TEMPFAIL)
    checked = texts.count(INVALID)
    assert busy >= 1 and busy + checked == n, texts
    assert checked >= 2, texts
    assert s.wait_log(r"authentication refused: too many checks queued")
    # the 454s came at once, not after a hash: before the first failure was answered
    first_fail = min(t for x, t in result if x.text == INVALID)
    last_fail = max(t for x, t in result if x.text == INVALID)
    assert max(t for x, t in result if x.text == TEMPFAIL) < first_fail, texts
    # the commit did not queue behind the hashes: many checks were still to be answered when
    # its 250 came, and it took far less than the checks took (measured here, in the daemon)
    per_check = (last_fail - sent) / checked
    assert waiting >= checked // 2, (waiting, checked)
    assert at_250 < last_fail
    assert t_commit < 4 * per_check, (t_commit, per_check, checked)
    assert s.maildir("bob", wait_for=1)


def test_shutdown_does_not_run_queued_checks(make_server, tmp_path):
    """On SIGTERM the password checks still queued are dropped, not run one by one for
    sessions that are going away."""
    rounds = 100000 if VALGRIND else 3000000
    passwd = slow_passwd(str(tmp_path / "passwd"), rounds)
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    t0 = time.monotonic()
    lib.crypt(b"x", ("$6$rounds=%d$measure" % rounds).encode())
    per_check = time.monotonic() - t0
    p2 = free_port()
    s = make_server(extra=["submission_listen = 127.0.0.1:%d" % p2,
                           "auth_passwd_file = %s" % passwd, "auth_lockout = 0"])
    n = 16
    sessions, got, wait = auth_all_at_once(s, p2, [("user%02d" % i, "x") for i in range(n)],
                                           may_close=True)
    try:
        assert wait_until(lambda: s.log.count("authentication failed") >= 1, 60.0)
        queued_work = (n - 1) * per_check
        t0 = time.monotonic()
        rc = s.stop(timeout=60.0)
        took = time.monotonic() - t0
    finally:
        for c in sessions:
            c.close()
        wait()
    assert rc == 0, s.log[-2000:]
    # up to 5 s for sessions to finish, the check running then, and not the queued ones
    if not VALGRIND:
        assert queued_work > 10.0, queued_work
        assert took < 5.0 + 3 * per_check + 2.0, (took, per_check)
    assert s.log.count("authentication failed") < n


# ---- sender ownership ----------------------------------------------------------------------

def test_spoofed_sender_is_refused_553(sub):
    with tls_session(sub, sub.sub) as c:
        assert c.auth_plain(ALICE, ALICE_PW).code == 235
        r = c.cmd("MAIL FROM:<bob@localhost>")
        assert r.text == ("553 5.7.1 <bob@localhost>: Sender address rejected: not owned by "
                          "user alice"), r
        for other in ("alice@remote.test", "alicex@localhost", "postmaster@localhost"):
            r = c.cmd("MAIL FROM:<%s>" % other)
            assert r.code == 553 and r.text.startswith("553 5.7.1 "), (other, r)
        # her own address in any local domain, any case
        for own in ("alice@localhost", "alice@example.test", "ALICE@LOCALHOST"):
            assert c.cmd("MAIL FROM:<%s>" % own).code == 250, own
            c.expect("RSET", 250)


def test_sender_login_file(make_server, passwd, tmp_path):
    p2 = free_port()
    logins = tmp_path / "senders"
    logins.write_text("sales@localhost alice\nteam@localhost alice, bob\n"
                      "@partner.test bob\n")
    s = make_server(extra=["submission_listen = 127.0.0.1:%d" % p2,
                           "auth_passwd_file = %s" % passwd,
                           "sender_login_file = %s" % logins])
    cases = {
        ALICE: {"sales@localhost": 250, "SALES@localhost": 250, "team@localhost": 250,
                "alice@localhost": 250, "x@partner.test": 553, "bob@localhost": 553},
        BOB: {"sales@localhost": 553, "team@localhost": 250, "x@partner.test": 250,
              "bob@localhost": 250},
    }
    for user, want in cases.items():
        with tls_session(s, p2) as c:
            assert c.auth_plain(user, PASSWORDS[user]).code == 235
            for addr, code in want.items():
                r = c.cmd("MAIL FROM:<%s>" % addr)
                assert r.code == code, (user, addr, r)
                if code == 553:
                    assert "not owned by user %s" % user in r.text
                else:
                    c.expect("RSET", 250)
    # alice sends as sales@ and it is delivered
    with tls_session(s, p2) as c:
        assert c.auth_plain(ALICE, ALICE_PW).code == 235
        r = c.send_message("sales@localhost", ["bob@localhost"], msg("from sales"), ehlo=False)
        assert r.code == 250
    m = s.maildir("bob", wait_for=1)
    assert len(m) == 1 and "Return-Path: <sales@localhost>" in m[0].text


# ---- plaintext AUTH for trusted networks ---------------------------------------------------

def test_auth_plaintext_for_trusted_networks_only(make_server, passwd):
    s = make_server(extra=["auth_passwd_file = %s" % passwd, "auth_plaintext = on",
                           "trusted_networks = 127.0.0.0/24"])
    with TClient(s.host, s.port) as c:          # 127.0.0.1: trusted
        assert "AUTH PLAIN LOGIN" in ehlo_keywords(c.ehlo("mua.test"))
        assert c.auth_plain(ALICE, ALICE_PW).code == 235
        r = c.send_message("alice@localhost", ["bob@localhost"], msg("plain auth"), ehlo=False)
        assert r.code == 250
        qid = queue_id(r)
    m = s.maildir("bob", wait_for=1)
    assert len(m) == 1 and "with ESMTPA id %s" % qid in m[0].text, m[0].header_block()
    assert "(using TLS" not in m[0].text
    # 127.0.1.5 is outside trusted_networks: TLS first
    with TClient(s.host, s.port, source="127.0.1.5") as c:
        assert "AUTH PLAIN LOGIN" not in ehlo_keywords(c.ehlo())
        assert c.auth_plain(ALICE, ALICE_PW).code == 538
        c.starttls()
        assert c.auth_plain(ALICE, ALICE_PW).code == 235


def test_plaintext_auth_does_not_survive_starttls(make_server, passwd):
    s = make_server(extra=["auth_passwd_file = %s" % passwd, "auth_plaintext = on"])
    with TClient(s.host, s.port) as c:
        c.ehlo()
        assert c.auth_plain(ALICE, ALICE_PW).code == 235
        c.expect("MAIL FROM:<alice@localhost>", 250)
        c.expect("RCPT TO:<far@remote.test>", 250)
        c.expect("RSET", 250)
        c.starttls()
        # everything from before TLS is forgotten, the login too (RFC 3207 4.2)
        assert "AUTH PLAIN LOGIN" in ehlo_keywords(c.ehlo())
        c.expect("MAIL FROM:<alice@localhost>", 250)
        r = c.cmd("RCPT TO:<far@remote.test>")
        assert r.code == 554 and "Relay access denied" in r.text, r


# ---- smarthost AUTH (relayhost_auth) -------------------------------------------------------

def test_relayhost_auth_over_starttls(make_server, passwd, tmp_path):
    # relayhost_auth goes only over verified TLS: the receiver's certificate is for its
    # address ([127.0.0.2] is the relayhost) and the sender trusts it
    crt, key = make_cert(str(tmp_path), RECEIVER_IP, san="IP:%s" % RECEIVER_IP)
    sport = free_port(RECEIVER_IP)
    rcv = receiver(make_server, extra=["submission_listen = %s:%d" % (RECEIVER_IP, sport),
                                       "auth_passwd_file = %s" % passwd,
                                       "tls_cert = %s" % crt, "tls_key = %s" % key])
    snd = sender(make_server, sport, extra=["relayhost_auth = alice:%s" % ALICE_PW,
                                            "tls_policy = verify", "tls_ca_file = %s" % crt])
    assert ALICE_PW not in snd.log
    r = snd.send("alice@localhost", ["far@remote.test"],
                 msg_text("via smarthost", frm="alice@localhost", to="far@remote.test"))
    assert r.code == 250
    qid = queue_id(r)
    assert snd.wait_log(r"%s to=<far@remote.test> relay=127\.0\.0\.2\[127\.0\.0\.2\] .*"
                        r"dsn=2\.0\.0 status=sent" % qid), snd.log[-2000:]
    assert rcv.wait_log(r"client=\[127\.0\.0\.1\] authenticated as alice")
    assert rcv.wait_log(r"received from=<alice@localhost> .* proto=ESMTPSA sasl_username=alice")
    assert ALICE_PW not in snd.log and ALICE_PW not in rcv.log


def test_relayhost_auth_never_in_plaintext(make_server, passwd):
    sport = free_port(RECEIVER_IP)
    rcv = receiver(make_server, extra=["submission_listen = %s:%d" % (RECEIVER_IP, sport),
                                       "auth_passwd_file = %s" % passwd,
                                       "auth_plaintext = on", "tls = off"])
    # even with unverified TLS allowed, no TLS at all means no credentials
    snd = sender(make_server, sport, extra=["relayhost_auth = alice:%s" % ALICE_PW,
                                            "relayhost_auth_unverified_tls = yes"])
    r = snd.send("alice@localhost", ["far@remote.test"],
                 msg_text("no tls", frm="alice@localhost", to="far@remote.test"))
    qid = queue_id(r)
    assert snd.wait_log(r"%s to=<far@remote.test> .*dsn=4\.7\.0 status=deferred .*without TLS"
                        % qid), snd.log[-2000:]
    assert "authenticated as" not in rcv.log and "authentication failed" not in rcv.log
    assert qid in snd.spool_files("queue")
