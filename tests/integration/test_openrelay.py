"""Open relay: a client that may not relay (untrusted, or trusted but outside relay_networks)
gets every disguised remote recipient refused at RCPT -- percent hack, bang path, source
route, quoted local part with an @, address literal, trailing dot, upper case -- and nothing is
queued or delivered. Relaying is allowed after AUTH, or from relay_networks only.
"""
import pytest

from helpers import Closed, queue_id
from trusthelp import PASSWORDS, TClient, make_passwd, nothing_stored

DISGUISED = [
    "x@remote.test",                    # plain remote
    "x%remote.test@localhost",          # percent hack
    "remote.test!x@localhost",          # bang path (UUCP)
    "@localhost:x@remote.test",         # source route through us
    "@localhost,@localhost:x@remote.test",
    '"x@remote.test"@localhost',        # quoted local part with an @
    '"x%remote.test"@localhost',
    "x@[192.0.2.1]",                    # address literal
    "x@[IPv6:2001:db8::1]",
    "x@[127.0.0.1]",                    # our own address as a literal is not a local domain
    "x@remote.test.",                   # trailing dot
    "x@localhost.remote.test",
    "alice%remote.test@localhost",      # a real user's name in front of the hack
    "remote.test!alice@localhost",
    "postmaster@remote.test",
]
DISGUISED += [a.upper() for a in DISGUISED]


def attempt(server, rcpt, source=None):
    """One session: MAIL, RCPT <rcpt>, DATA. Returns (rcpt reply, data reply)."""
    with TClient(server.host, server.port, source=source) as c:
        c.ehlo()
        c.expect("MAIL FROM:<spammer@example.org>", 250)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        d = c.cmd("DATA")
        if d.code == 354:               # must not happen; finish so the damage is visible
            c.send(b"Subject: relayed\r\n\r\nspam\r\n.\r\n")
            c.reply()
        try:
            c.cmd("QUIT")
        except (Closed, OSError):
            pass
        return r, d


def expected_refusal(rcpt):
    """The start of the RCPT reply README promises: 554 5.7.1 Relay access denied for a
    domain that is not ours, 550 5.1.1 for a disguise inside our own domain's local part,
    501 5.1.3 for a domain with a trailing dot (no valid domain at all)."""
    domain = rcpt.rsplit("@", 1)[1]
    if domain.endswith("."):
        return "501 5.1.3 "
    if domain.lower() == "localhost":
        return "550 5.1.1 "
    return "554 5.7.1 "


def check_all_refused(server, source=None):
    bad = []
    for rcpt in DISGUISED:
        r, d = attempt(server, rcpt, source)
        want = expected_refusal(rcpt)
        if not r.first.startswith(want) or d.code != 503 or \
                (want.startswith("554") and "Relay access denied" not in r.first):
            bad.append((rcpt, want, r.text, d.text))
    assert not bad, "not refused as documented:\n" + "\n".join(map(repr, bad))
    assert nothing_stored(server), (server.spool_files("queue"), server.all_mail())
    assert "received from=" not in server.log


def test_untrusted_client_cannot_relay(make_server):
    s = make_server(trusted=False, greet_pause="50ms")
    check_all_refused(s)
    # the refusals say why: relay denied for remote domains, unknown user for local ones
    assert "Relay access denied" in attempt(s, "x@remote.test")[0].text
    assert attempt(s, "x%remote.test@localhost")[0].text.startswith("550 5.1.1 ")


def test_trusted_network_is_not_a_relay_network(server):
    """trusted_networks (loopback, the default) only exempts from limits: it grants no
    relaying."""
    check_all_refused(server)


def test_relay_networks_are_exact(make_server):
    s = make_server(extra=["relay_networks = 127.0.0.8/30"], trusted=False, greet_pause="50ms")
    check_all_refused(s, source="127.0.0.12")           # just outside the /30
    r, d = attempt(s, "x@remote.test", source="127.0.0.9")
    assert r.code == 250 and d.code == 354, (r, d)
    assert len(s.spool_files("queue")) >= 1


def test_relaying_only_after_auth(make_server, tmp_path):
    pw = make_passwd(str(tmp_path / "passwd"))
    s = make_server(extra=["auth_passwd_file = %s" % pw], trusted=False, greet_pause="50ms")
    with TClient(s.host, s.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@localhost>", 250)
        r = c.cmd("RCPT TO:<far@remote.test>")
        assert r.first.startswith("554 5.7.1 ") and "Relay access denied" in r.text, r
        c.expect("RSET", 250)
        c.starttls()
        c.expect("MAIL FROM:<alice@localhost>", 250)
        assert c.cmd("RCPT TO:<far@remote.test>").first.startswith("554 5.7.1 ")  # TLS: no
        c.expect("RSET", 250)
        assert c.auth_plain("alice", "wrong").code == 535
        c.expect("MAIL FROM:<alice@localhost>", 250)
        assert c.cmd("RCPT TO:<far@remote.test>").first.startswith("554 5.7.1 ")  # bad AUTH
        c.expect("RSET", 250)
        assert c.auth_plain("alice", PASSWORDS["alice"]).code == 235
        r = c.send_message("alice@localhost", ["far@remote.test"],
                           "Subject: relayed after auth\r\n\r\nhi\r\n", ehlo=False)
        assert r.code == 250, r
        qid = queue_id(r)
    assert qid in s.spool_files("queue")
    assert not any(s.all_mail().values())
    assert s.wait_log(r"%s received from=<alice@localhost> .* proto=ESMTPSA "
                      r"sasl_username=alice" % qid)


@pytest.mark.parametrize("rcpt", ["x%remote.test@localhost", "remote.test!x@localhost",
                                  '"x@remote.test"@localhost'])
def test_hacks_are_not_routed_even_for_relay_clients(make_server, rcpt):
    """A relay client may send anywhere, but a local-domain address is never re-routed off
    host by its local part: it is an unknown local user."""
    s = make_server(extra=["relay_networks = 127.0.0.0/8"])
    r, d = attempt(s, rcpt)
    assert r.code == 550 and r.text.startswith("550 5.1.1 "), r
    assert nothing_stored(s)
