"""postel passwd: the hash it writes is accepted by posteld's AUTH."""
import base64
import os
import smtplib
import subprocess

from helpers import BUILD

POSTEL = os.path.join(BUILD, "postel")


def test_passwd_lines_are_usable_and_updated(tmp_path, make_server):
    pw = tmp_path / "passwd"
    for user, secret in (("alice", "first"), ("bob", "bobpw"), ("alice", "second")):
        r = subprocess.run([POSTEL, "passwd", user, str(pw)], input=secret + "\n",
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    lines = pw.read_text().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["alice", "bob"]
    assert lines[0].split(":", 1)[1].startswith(("$y$", "$6$"))
    srv = make_server(extra=["auth_passwd_file = %s" % pw, "auth_plaintext = on"])
    with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
        c.ehlo("t.test")
        code, _ = c.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice\0first").decode())
        assert code == 535
        code, _ = c.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice\0second").decode())
        assert code == 235


def test_passwd_refuses_bad_names(tmp_path):
    r = subprocess.run([POSTEL, "passwd", "a:b"], input="x\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 64 and "may not contain" in r.stderr
