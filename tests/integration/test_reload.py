"""postel reload: the configuration file and its aliases are read again; new sessions and
deliveries use them, open sessions finish with the old ones, nothing is dropped."""
import os
import subprocess

from helpers import BUILD

POSTEL = os.path.join(BUILD, "postel")


def reload(srv):
    return subprocess.run([POSTEL, "-C", srv.config, "reload"], capture_output=True,
                          text=True, timeout=30)


def append(srv, *lines):
    with open(srv.config, "a") as f:
        f.write("\n".join(lines) + "\n")


def test_reload_applies_to_new_sessions_only(server):
    old = server.client()
    old.ehlo()
    assert old.cmd("MAIL FROM:<a@remote.test>").code == 250
    assert old.cmd("RCPT TO:<zed@localhost>").code == 550
    append(server, "local_users = alice bob zed", "alias helpdesk: zed")
    r = reload(server)
    assert r.returncode == 0, r.stderr
    assert "configuration reloaded" in r.stdout + r.stderr
    assert server.wait_log(r"configuration reloaded: \d+ aliases", 5)
    # the session opened before keeps its configuration, and keeps working
    assert old.cmd("RCPT TO:<zed@localhost>").code == 550
    assert old.cmd("RCPT TO:<alice@localhost>").code == 250
    old.close()
    r = server.send("a@remote.test", ["zed@localhost", "helpdesk@localhost"],
                    "Subject: after reload\r\n\r\nhello zed\r\n")
    assert r.code == 250, r
    mails = server.maildir("zed", wait_for=1, timeout=10)
    assert len(mails) == 1 and "hello zed" in mails[0].text


def test_reload_keeps_settings_that_need_a_restart(server):
    append(server, "listen = 127.0.0.1:1", "max_recipients = 2")
    r = reload(server)
    assert r.returncode == 0, r.stderr
    assert "take a restart: listen" in r.stdout + r.stderr
    with server.client() as c:      # still on the old port
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@remote.test>").code == 250
        assert c.cmd("RCPT TO:<alice@localhost>").code == 250
        assert c.cmd("RCPT TO:<bob@localhost>").code == 250
        assert c.cmd("RCPT TO:<carol@localhost>").code == 452    # the new limit applies


def test_reload_with_a_broken_file_changes_nothing(server):
    append(server, "no_such_setting = 1")
    r = reload(server)
    assert r.returncode != 0
    assert "unknown setting" in r.stdout + r.stderr
    assert server.send("a@remote.test", ["alice@localhost"], "Subject: x\r\n\r\nx\r\n").code == 250


def test_reload_logs_the_configuration_warnings(server):
    """A reload that makes a risky setup logs the same warning a start would."""
    append(server, "relayhost_auth = user:secret", "relayhost_auth_unverified_tls = yes")
    mark = server._log_size()
    r = reload(server)
    assert r.returncode == 0, r.stderr
    assert server.wait_log(r"configuration reloaded", 5)
    log = server.log_since(mark)
    assert "config: " in log and "relayhost_auth_unverified_tls" in log, log
    assert "secret" not in log
