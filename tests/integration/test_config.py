"""Configuration: posteld -n prints the effective settings; errors name FILE:LINE and exit 78."""
import os
import re
import socket
import subprocess

import pytest

from helpers import POSTELD, free_port, run_posteld

KEYS = ["hostname", "listen", "spool_dir", "mail_dir", "local_domains", "local_users",
        "aliases_file", "relay_networks", "trusted_networks", "message_size_limit",
        "max_recipients", "max_errors", "max_connections", "max_connections_per_ip",
        "max_line_length", "timeout_command", "timeout_data", "greet_pause", "vrfy", "expn",
        "workers", "retry_min", "retry_max", "max_queue_lifetime", "log_debug"]


def settings(text):
    """{key: value} from posteld -n output (comments dropped)."""
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        k, _, v = line.partition("=")
        out[k.strip()] = v.strip()
    return out


def write(tmp_path, lines, name="postel.conf"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return str(p)


GOOD = ["# a test config",
        "hostname = mx.test",
        "listen = 127.0.0.1:2600 [::1]:2600",
        "spool_dir = /tmp/x/spool",
        "mail_dir = /tmp/x/mail",
        "local_domains = localhost, example.test",
        "local_users = Alice bob",
        "",
        "alias team: alice, bob   # inline alias",
        "relay_networks = 192.0.2.0/24 2001:db8::/32",
        "message_size_limit = 64k",
        "timeout_command = 90",
        "timeout_data = 2m",
        "greet_pause = 250ms",
        "vrfy = on",
        "workers = 3",
        "max_queue_lifetime = 2d"]


def test_check_config_prints_settings(tmp_path):
    r = run_posteld(["-n", "-f", write(tmp_path, GOOD)])
    assert r.returncode == 0, r.stderr
    s = settings(r.stdout)
    for k in KEYS:
        assert k in s, "%s missing from posteld -n output" % k
    assert s["hostname"] == "mx.test"
    assert s["listen"] == "127.0.0.1:2600 [::1]:2600"
    assert s["local_domains"] == "localhost example.test"
    assert s["local_users"] == "alice bob"          # stored lower-cased
    assert s["relay_networks"] == "192.0.2.0/24 2001:db8::/32"
    assert s["trusted_networks"] == "127.0.0.0/8 ::1/128"   # the default
    assert s["message_size_limit"] == "65536"
    assert s["timeout_command"] == "90s"
    assert s["timeout_data"] == "2m"
    assert s["greet_pause"] == "250ms"
    assert s["vrfy"] == "on" and s["expn"] == "off"
    assert s["workers"] == "3"
    # setting workers must not disturb its neighbours
    assert s["retry_min"] == "5m" and s["retry_max"] == "30m"
    assert s["max_queue_lifetime"] == "2d"
    assert "# aliases: 1 entries" in r.stdout


def test_check_config_defaults(tmp_path):
    r = run_posteld(["-n", "-f", write(tmp_path, ["# nothing set"])])
    assert r.returncode == 0, r.stderr
    s = settings(r.stdout)
    assert s["message_size_limit"] == "10485760"
    assert s["max_recipients"] == "1000"
    assert s["max_errors"] == "10"
    assert s["max_connections"] == "15000"
    assert s["max_connections_per_ip"] == "50"
    assert s["max_line_length"] == "998"
    assert s["timeout_command"] == "5m" and s["timeout_data"] == "5m"
    assert s["greet_pause"] == "1000ms"
    assert s["vrfy"] == "off" and s["expn"] == "off"
    assert s["workers"] == "8"
    assert s["retry_min"] == "5m" and s["retry_max"] == "30m"
    assert s["max_queue_lifetime"] == "5d"
    assert s["log_debug"] == "off"
    assert s["relay_networks"] == ""


def test_check_config_builtin(tmp_path):
    r = run_posteld(["-n"], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    s = settings(r.stdout)
    assert s["local_domains"] == "localhost"
    assert s["local_users"] == "alice bob"
    assert s["listen"] == "127.0.0.1:2525"
    assert s["spool_dir"] == "var/spool" and s["mail_dir"] == "var/mail"
    assert s["relay_networks"] == ""
    assert "# aliases: 2 entries" in r.stdout
    # -n does not create anything
    assert list(tmp_path.iterdir()) == []


def test_check_config_output_is_a_valid_config(tmp_path):
    r = run_posteld(["-n", "-f", write(tmp_path, GOOD)])
    assert r.returncode == 0, r.stderr
    again = tmp_path / "again.conf"
    again.write_text(r.stdout)
    r2 = run_posteld(["-n", "-f", str(again)])
    assert r2.returncode == 0, r2.stderr
    # the same settings (inline aliases are not printed, so their count differs)
    assert settings(r2.stdout) == settings(r.stdout)


@pytest.mark.parametrize("value", ["300", "300s", "5m", "1h", "5d"])
def test_durations(tmp_path, value):
    r = run_posteld(["-n", "-f", write(tmp_path, ["timeout_command = " + value])])
    assert r.returncode == 0, r.stderr
    assert settings(r.stdout)["timeout_command"] == {"300": "5m", "300s": "5m", "5m": "5m",
                                                     "1h": "1h", "5d": "5d"}[value]


def test_unknown_setting(tmp_path):
    conf = write(tmp_path, ["hostname = mx.test", "# comment", "", "no_such_key = 1"])
    r = run_posteld(["-n", "-f", conf])
    assert r.returncode == 78
    assert r.stdout == ""
    assert re.match(r"^posteld: %s:4: unknown setting" % re.escape(conf), r.stderr), r.stderr


@pytest.mark.parametrize("line,what", [
    ("listen = 127.0.0.1", "listen"),
    ("listen = 127.0.0.1:", "listen"),
    ("listen = 127.0.0.1:70000", "listen"),
    ("listen = localhost:25", "listen"),
    ("listen = [::1]25", "listen"),
    ("listen = " + " ".join("127.0.0.1:%d" % (2000 + i) for i in range(9)), "listen"),
    ("timeout_command = 5x", "timeout_command"),
    ("timeout_data = -1", "timeout_data"),
    ("timeout_command = ", "timeout_command"),
    ("greet_pause = soon", "greet_pause"),
    ("retry_max = 1w", "retry_max"),
    ("message_size_limit = 10Q", "message_size_limit"),
    ("max_recipients = many", "max_recipients"),
    ("max_errors = -3", "max_errors"),
    ("workers = 0", "workers"),
    ("workers = 1000", "workers"),
    ("vrfy = maybe", "vrfy"),
    ("log_debug = 2", "log_debug"),
    ("relay_networks = 10.0.0.0/33", "relay_networks"),
    ("trusted_networks = not-a-network", "trusted_networks"),
    ("hostname =", "hostname"),
    ("tls_policy = verfy", "tls_policy"),
    ("tls_policy_map = example.org=verfy", "tls_policy_map: example.org: unknown policy 'verfy'"),
    ("tls_policy_map = a.example=verify example.org", "tls_policy_map: 'example.org'"),
    ("tls_policy_map = a.example=none A.EXAMPLE=verify", "listed twice"),
    ("relayhost_auth = no-colon", "relayhost_auth: want user:password"),
    ("relayhost_auth = user:", "relayhost_auth: want user:password"),
    ("relayhost_auth_unverified_tls = perhaps", "relayhost_auth_unverified_tls"),
    ("just some words", None),
    ("alias broken", None),
    ("alias dup: alice\nalias dup: bob", None),
])
def test_bad_values(tmp_path, line, what):
    lines = ["# line 1", "hostname = mx.test", "local_users = alice bob", "", line]
    conf = write(tmp_path, lines)
    bad_line = 5 if not line.startswith("alias dup") else 6
    r = run_posteld(["-n", "-f", conf])
    assert r.returncode == 78, (line, r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("posteld: %s:%d: " % (conf, bad_line)), (line, r.stderr)
    if what:
        assert what in r.stderr, r.stderr
    assert r.stdout == ""


def test_long_tls_policy_map_is_parsed_whole(tmp_path):
    # one line of about 5,000 characters: every entry is kept, the last one too
    entries = ["d%03d.example=%s" % (i, ("none", "may", "encrypt")[i % 3]) for i in range(250)]
    entries.append("last.example=verify")
    value = ", ".join(entries)
    assert len(value) > 4096
    r = run_posteld(["-n", "-f", write(tmp_path, ["tls_policy_map = " + value])])
    assert r.returncode == 0, r.stderr
    printed = settings(r.stdout)["tls_policy_map"].split()
    assert printed == entries, printed[-3:]
    assert printed[-1] == "last.example=verify"
    # and a typo in the very last entry is still found
    r = run_posteld(["-n", "-f", write(tmp_path, ["", "tls_policy_map = " + value + "x"])])
    assert r.returncode == 78
    assert "postel.conf:2: tls_policy_map: last.example: unknown policy 'verifyx'" in r.stderr


RELAY = ["relayhost = [192.0.2.25]:587", "relayhost_auth = user:secret-pw"]


@pytest.mark.parametrize("extra,warning", [
    ([], "relayhost_auth is set but the TLS policy for relayhost [192.0.2.25]:587 is may, "
         "not verify: the credentials are not sent"),
    (["tls_policy = encrypt"], "TLS policy for relayhost [192.0.2.25]:587 is encrypt"),
    (["tls_policy = verify", "tls_policy_map = [192.0.2.25]:587=may"], "is may, not verify"),
    (["relayhost_auth_unverified_tls = yes"], "relayhost_auth_unverified_tls = yes: the "
     "relayhost_auth password goes to any server that answers for relayhost "
     "[192.0.2.25]:587 with any certificate"),
    (["tls_policy = verify"], None),
    (["tls_policy_map = [192.0.2.25]:587=verify"], None),
])
def test_check_config_warns_about_relayhost_auth_without_verify(tmp_path, extra, warning):
    r = run_posteld(["-n", "-f", write(tmp_path, RELAY + extra)])
    assert r.returncode == 0, r.stderr
    assert "secret-pw" not in r.stdout + r.stderr
    assert settings(r.stdout)["relayhost_auth"] == "(set, not shown)"
    if warning is None:
        assert r.stderr == ""
    else:
        assert r.stderr.startswith("posteld: warning: "), r.stderr
        assert warning in r.stderr, r.stderr


def test_missing_config_file(tmp_path):
    r = run_posteld(["-n", "-f", str(tmp_path / "nope.conf")])
    assert r.returncode == 78
    assert "nope.conf" in r.stderr


def test_missing_aliases_file(tmp_path):
    conf = write(tmp_path, ["aliases_file = %s" % (tmp_path / "no-aliases")])
    r = run_posteld(["-n", "-f", conf])
    assert r.returncode == 78
    assert "no-aliases" in r.stderr


def test_bad_usage():
    r = run_posteld(["-x"])
    assert r.returncode == 64
    r = run_posteld(["extra-argument"])
    assert r.returncode == 64


def test_daemon_refuses_bad_config_and_listens_nowhere(tmp_path):
    port = free_port()
    conf = write(tmp_path, ["listen = 127.0.0.1:%d" % port, "spool_dir = %s" % (tmp_path / "s"),
                            "mail_dir = %s" % (tmp_path / "m"), "bogus = yes"])
    r = run_posteld(["-f", conf])
    assert r.returncode == 78
    assert "%s:4: unknown setting" % conf in r.stderr
    s = socket.socket()
    try:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        s.close()
    assert not (tmp_path / "s").exists()


def test_config_settings_take_effect(make_server):
    s = make_server(extra=["hostname = other.example", "message_size_limit = 12345",
                           "vrfy = on", "expn = on", "alias crew: bob"])
    with s.client() as c:
        assert c.greeting.first == "220 other.example ESMTP postel"
        r = c.ehlo()
        assert r.lines[0] == "250-other.example Hello client.test"
        assert "250-SIZE 12345" in r.lines
        assert c.cmd("VRFY bob").code == 250
        assert c.cmd("EXPN crew").code == 250


def test_later_setting_wins(make_server):
    s = make_server(extra=["max_recipients = 1", "max_recipients = 2"])
    with s.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        assert c.cmd("RCPT TO:<carol@localhost>").code == 452


def test_relay_networks_allow_relaying(make_server):
    s = make_server(extra=["relay_networks = 127.0.0.0/8"])
    with s.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<someone@remote.example>", 250)
        c.expect("RCPT TO:<x@[192.0.2.1]>", 250)
        c.expect("RSET", 250)


def test_log_debug(make_server):
    s = make_server(extra=["log_debug = on"])
    with s.client() as c:
        c.ehlo()
    assert s.wait_log(r"sid=\w+ connect from \[127\.0\.0\.1\] trusted")


# ---- the settings table: every error, duplicate keys, postel config -d / -n ----

POSTEL = os.path.join(os.path.dirname(POSTELD), "postel")


def run_postel(args, env_conf=None):
    env = dict(os.environ)
    env.pop("POSTEL_CONF", None)
    if env_conf:
        env["POSTEL_CONF"] = env_conf
    return subprocess.run([POSTEL] + list(args), capture_output=True, text=True, timeout=30,
                          env=env)


def test_every_error_of_a_file_is_reported(tmp_path):
    conf = write(tmp_path, ["hostname = mx.test", "no_such_key = 1", "workers = 0",
                            "# fine", "vrfy = maybe", "max_errors = 3"])
    r = run_posteld(["-n", "-f", conf])
    assert r.returncode == 78
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines == ["posteld: %s:2: unknown setting 'no_such_key'" % conf,
                     "%s:3: workers: must be 1 to 256" % conf,
                     "%s:5: vrfy: want on or off, not 'maybe'" % conf], r.stderr
    # the daemon refuses it the same way, and so does the command line
    r = run_postel(["config", "-f", conf])
    assert r.returncode == 78
    assert [x.split(": ", 1)[-1] for x in r.stderr.splitlines()[:1]] == \
        ["%s:2: unknown setting 'no_such_key'" % conf]
    assert "%s:5: vrfy" % conf in r.stderr


def test_a_key_set_twice_is_warned_and_the_last_counts(tmp_path):
    conf = write(tmp_path, ["max_recipients = 1", "hostname = mx.test", "max_recipients = 2"])
    r = run_posteld(["-n", "-f", conf])
    assert r.returncode == 0, r.stderr
    assert settings(r.stdout)["max_recipients"] == "2"
    assert ("posteld: warning: %s:3: max_recipients set again (first at line 1); the last "
            "value counts" % conf) in r.stderr.splitlines(), r.stderr


def test_postel_config_d_prints_the_defaults(tmp_path):
    # the file (given by $POSTEL_CONF) plays no part
    conf = write(tmp_path, ["workers = 3", "listen = 127.0.0.1:2600"])
    r = run_postel(["config", "-d"], env_conf=conf)
    assert r.returncode == 0, r.stderr
    s = settings(r.stdout)
    for k in KEYS:
        assert k in s, "%s missing from postel config -d" % k
    assert s["workers"] == "8"
    assert s["listen"] == "127.0.0.1:25"
    assert s["spool_dir"] == "/var/spool/postel"
    assert s["trusted_networks"] == "127.0.0.0/8 ::1/128"
    assert s["greet_pause"] == "1000ms" and s["max_queue_lifetime"] == "5d"
    assert s["local_users"] == "" and s["relayhost"] == ""
    # the defaults are what a file that sets nothing gives
    empty = write(tmp_path, ["# nothing"], name="empty.conf")
    r2 = run_posteld(["-n", "-f", empty])
    assert r2.returncode == 0, r2.stderr
    assert settings(r2.stdout) == s
    assert run_postel(["config", "-d", "-n"]).returncode == 64
    assert run_postel(["config", "-d", "-f", conf]).returncode == 64


def test_postel_config_n_prints_what_the_file_changes(tmp_path):
    conf = write(tmp_path, GOOD + ["max_recipients = 1000", "retry_min = 300s",
                                   "relayhost_auth = u:secret"])
    r = run_postel(["config", "-n", "-f", conf])
    assert r.returncode == 0, r.stderr
    s = settings(r.stdout)
    # set to their defaults: not shown
    assert "max_recipients" not in s and "retry_min" not in s
    assert s == {"hostname": "mx.test", "listen": "127.0.0.1:2600 [::1]:2600",
                 "spool_dir": "/tmp/x/spool", "mail_dir": "/tmp/x/mail",
                 "local_domains": "localhost example.test", "local_users": "alice bob",
                 "relay_networks": "192.0.2.0/24 2001:db8::/32", "message_size_limit": "65536",
                 "timeout_command": "90s", "timeout_data": "2m", "greet_pause": "250ms",
                 "vrfy": "on", "workers": "3", "max_queue_lifetime": "2d",
                 "relayhost_auth": "(set, not shown)"}, r.stdout
    assert "secret" not in r.stdout
    assert "# aliases: 1 entries" in r.stdout
    # the same file through $POSTEL_CONF; plain config prints everything, as posteld -n does
    r2 = run_postel(["config", "-n"], env_conf=conf)
    assert r2.returncode == 0 and r2.stdout == r.stdout
    full = run_postel(["config", "-f", conf])
    assert full.returncode == 0, full.stderr
    assert full.stdout == run_posteld(["-n", "-f", conf]).stdout
    assert run_postel(["config", "-x"]).returncode == 64
