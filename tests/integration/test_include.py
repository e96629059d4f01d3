""":include: files: what is read, what is refused, and what an error may say.

An :include: file is read at delivery time (and by "postel verify") only if it is a regular file
(a symbolic link is not followed), owned by root or by the owner of the file that names it, not
writable by group or others, and, when it is root's but named by another user's file, readable
by everyone. A refused file bounces the recipient ("mail system configuration error", as
Postfix's local(8) does) and logs a warning naming the file and the reason. No error, log line
or bounce quotes bytes of an :include: file.

The daemons run as root (no "user"), the mode in which a nested :include: could read any file.
Files owned by the user "daemon" are made here and removed with the test's temp directory.
"""
import os
import pwd
import re
import subprocess

from helpers import POSTELD, msg, queue_id, wait_until

POSTEL_CLI = os.path.join(os.path.dirname(POSTELD), "postel")
DAEMON = pwd.getpwnam("daemon")
SECRET = "$6$SECRETHASHsalt$Zq0oWv9bYqk1rTf3c8mN2pLx7sHd5gJ4eR6tU1iO0aS"


def write(path, text, mode=0o644, uid=0, gid=0):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return str(path)


def password_file(path):
    """A root-only file in /etc/shadow's format, holding a fake hash."""
    return write(path, "root:%s:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n" % SECRET,
                 0o600)


def send_from_bob(server, rcpt, subject):
    """One message from a local sender (so the bounce lands in bob's Maildir)."""
    r = server.send("bob@localhost", [rcpt], msg(subject))
    assert r.code == 250, r
    return queue_id(r)


def verify(server, addr):
    r = subprocess.run([POSTEL_CLI, "verify", addr], capture_output=True, timeout=15,
                       env=dict(os.environ, POSTEL_CONF=server.config))
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def bounce_for(server, qid_subject):
    got = server.maildir("bob", wait_for=1, timeout=15)
    return [m for m in got if qid_subject in m.text]


def assert_bounced(server, qid, rcpt, why):
    line = server.wait_log(r"%s to=<%s> .*status=bounced.*" % (qid, re.escape(rcpt)), 10.0)
    assert line, server.log[-2000:]
    assert why in line.group(0), line.group(0)


def test_nested_password_file_is_never_quoted(make_server, tmp_path):
    secret = password_file(tmp_path / "shadow")
    inner = write(tmp_path / "list.txt", "carol\n:include:%s\n" % secret)
    aliases = write(tmp_path / "aliases", "list: :include:%s\n" % inner)
    s = make_server(extra=["aliases_file = %s" % aliases])
    qid = send_from_bob(s, "list@localhost", "to the list")
    # the password file is malformed as a list: the recipient bounces, naming file and line
    assert_bounced(s, qid, "list@localhost", "%s:1: bad address" % secret)
    bounce = bounce_for(s, "to the list")
    assert bounce, s.log[-2000:]
    # the bounce folds long lines
    assert "%s:1: bad address" % secret in " ".join(bounce[0].text.split())
    rc, out = verify(s, "list@localhost")
    assert rc != 0 and "%s:1: bad address" % secret in out, out
    assert s.maildir("carol") == []
    for text in [s.log, out] + [m.text for m in s.maildir("bob")]:
        assert "SECRETHASH" not in text
        assert "19000:0:99999" not in text


def test_list_of_a_user_cannot_include_a_file_that_user_cannot_read(make_server, tmp_path):
    """The audit's case: a list owned by a user names root's password file. The daemon (root)
    could read it; the list's owner could not, so it is refused unread."""
    secret = password_file(tmp_path / "shadow")
    os.chmod(str(tmp_path), 0o755)
    inner = write(tmp_path / "list.txt", "carol\n:include:%s\n" % secret, uid=DAEMON.pw_uid,
                  gid=DAEMON.pw_gid)
    aliases = write(tmp_path / "aliases", "list: :include:%s\n" % inner, uid=DAEMON.pw_uid,
                    gid=DAEMON.pw_gid)
    s = make_server(extra=["aliases_file = %s" % aliases])
    qid = send_from_bob(s, "list@localhost", "user list")
    why = "not readable by uid %d (the owner of the file that names it)" % DAEMON.pw_uid
    assert s.wait_log(r"warning: :include: file %s refused: %s" % (re.escape(secret),
                                                                   re.escape(why)), 10.0)
    assert_bounced(s, qid, "list@localhost", "mail system configuration error")
    assert bounce_for(s, "user list"), s.log[-2000:]
    rc, out = verify(s, "list@localhost")
    assert rc != 0 and why in out, out
    for text in [s.log, out] + [m.text for m in s.maildir("bob")]:
        assert "SECRETHASH" not in text
    assert s.maildir("carol") == []


def refused(make_server, tmp_path, inc, why):
    aliases = write(tmp_path / "aliases", "list: :include:%s\n" % inc)
    s = make_server(extra=["aliases_file = %s" % aliases])
    qid = send_from_bob(s, "list@localhost", "refused include")
    assert s.wait_log(r"warning: :include: file %s refused: %s" % (re.escape(inc),
                                                                   re.escape(why)), 10.0), \
        s.log[-2000:]
    assert_bounced(s, qid, "list@localhost", "mail system configuration error")
    assert wait_until(lambda: s.wait_log(r"%s removed" % qid, 0.1), 10.0)
    assert s.maildir("carol") == []
    rc, out = verify(s, "list@localhost")
    assert rc != 0 and why in out, out
    return s


def test_group_writable_include_is_refused(make_server, tmp_path):
    inc = write(tmp_path / "list.txt", "carol\n", 0o664)
    refused(make_server, tmp_path, inc, "writable by group or others")


def test_world_writable_include_is_refused(make_server, tmp_path):
    inc = write(tmp_path / "list.txt", "carol\n", 0o646)
    refused(make_server, tmp_path, inc, "writable by group or others")


def test_include_of_another_user_is_refused(make_server, tmp_path):
    inc = write(tmp_path / "list.txt", "carol\n", uid=DAEMON.pw_uid, gid=DAEMON.pw_gid)
    refused(make_server, tmp_path, inc,
            "owned by uid %d, not by root or by uid 0 (the owner of the file that names it)"
            % DAEMON.pw_uid)


def test_symlinked_include_is_refused(make_server, tmp_path):
    target = write(tmp_path / "real.txt", "carol\n")
    link = str(tmp_path / "list.txt")
    os.symlink(target, link)
    refused(make_server, tmp_path, link, "is a symbolic link")


def test_safe_include_still_works(make_server, tmp_path):
    nested = write(tmp_path / "nested.txt", "dave\n", 0o600)
    inc = write(tmp_path / "list.txt", "carol\n:include:nested.txt\n")
    aliases = write(tmp_path / "aliases", "list: :include:%s\n" % inc)
    s = make_server(extra=["aliases_file = %s" % aliases])
    send_from_bob(s, "list@localhost", "safe include")
    assert [m for m in s.maildir("carol", wait_for=1) if "Subject: safe include" in m.text]
    assert [m for m in s.maildir("dave", wait_for=1) if "Subject: safe include" in m.text]
    assert "refused" not in s.log
    rc, out = verify(s, "list@localhost")
    assert rc == 0, out
