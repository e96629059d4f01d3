"""Privilege drop: started as root with "user = nobody", posteld binds, reads its keys, hands
the spool, the mail store and the control socket to nobody, and runs as nobody for good
(every thread, no supplementary groups, no capabilities). Without "user" it warns; "user =
root" and unknown users are refused at start.

These daemons live in a directory under /tmp made here with mode 0755 (pytest's own temp base
is 0700 and nobody could not reach the spool), removed afterwards.
"""
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess

import pytest

from helpers import POSTELD, Postel, msg, queue_id
from trusthelp import (Daemons, PubDir, TClient, cert_der, make_cert, proc_status, run_once)


NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def pub():
    d = PubDir()
    daemons = Daemons()
    d.daemons = daemons
    yield d
    problems = daemons.finish()
    d.cleanup()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def start(pub, extra=(), name="p", precreate=None):
    base = os.path.join(pub.path, name)
    os.mkdir(base)
    os.chmod(base, 0o755)
    if precreate:
        precreate(base)
    p = Postel(base, extra=["user = nobody"] + list(extra))
    return pub.daemons.add(p)


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def test_runs_as_nobody_in_every_thread(pub):
    p = start(pub)
    assert p.wait_log(r"running as nobody \(uid %d, gid %d\)" % (NOBODY.pw_uid, NOBODY.pw_gid))
    assert "running as root" not in p.log
    tasks = os.listdir("/proc/%d/task" % p.pid)
    assert len(tasks) > 1          # the worker threads were started before the drop
    want_ids = "\t".join([str(NOBODY.pw_uid)] * 4)
    want_gids = "\t".join([str(NOBODY.pw_gid)] * 4)
    for t in tasks:
        st = proc_status(int(t))
        assert st["Uid"] == want_ids, (t, st["Uid"])           # real, effective, saved, fs
        assert st["Gid"] == want_gids, (t, st["Gid"])
        assert st["Groups"] == str(NOBODY.pw_gid), (t, st["Groups"])
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert int(st[cap], 16) == 0, (t, cap, st[cap])
    assert p.healthy()


def test_delivers_and_queues_as_nobody(pub):
    def precreate(base):
        # a store left by a root-run daemon (or made by hand) is taken over
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(base, "mail", "alice", sub), 0o700)
        os.makedirs(os.path.join(base, "spool", "queue"), 0o700)
    p = start(pub, extra=["relay_networks = 127.0.0.0/8"], precreate=precreate)
    nob = (NOBODY.pw_uid, NOBODY.pw_gid)
    for d in (p.spool, p.mail, os.path.join(p.spool, "queue"),
              os.path.join(p.mail, "alice"), os.path.join(p.mail, "alice", "new")):
        assert owner(d) == nob, d
    ctl = os.path.join(p.spool, "control")
    assert stat.S_ISSOCK(os.lstat(ctl).st_mode) and owner(ctl) == nob
    # the self-signed pair made at start belongs to nobody too (so SIGHUP can reload it)
    assert owner(os.path.join(p.spool, "tls", "selfsigned.key")) == nob
    assert p.send("a@example.org", ["alice@localhost"], msg("as nobody")).code == 250
    assert p.send("a@example.org", ["bob@localhost"], msg("new maildir")).code == 250
    for user in ("alice", "bob"):
        m = p.maildir(user, wait_for=1)
        assert len(m) == 1, p.log[-2000:]
        assert owner(m[0].path) == nob, (user, owner(m[0].path))
        assert owner(os.path.join(p.mail, user)) == nob
    # a remote message waits in the queue (relayhost 127.0.0.1:1 refuses): nobody's file
    r = p.send("a@example.org", ["far@remote.test"], msg("queued as nobody"))
    assert r.code == 250
    qid = queue_id(r)
    assert p.wait_log(r"%s to=<far@remote.test> .*status=deferred" % qid, 10.0), p.log[-2000:]
    qf = os.path.join(p.spool, "queue", qid)
    assert os.path.exists(qf) and owner(qf) == nob
    st_files = [n for n in os.listdir(os.path.join(p.spool, "queue")) if n.endswith(".st")]
    for n in st_files:
        assert owner(os.path.join(p.spool, "queue", n)) == nob


def test_sighup_after_the_drop_cannot_read_a_root_only_key(pub, tmp_path):
    """Keys readable by root only are read before the drop; a reload after it fails with a
    warning and the daemon goes on with the certificate it has."""
    a = make_cert(pub.path, "a.test")
    b = make_cert(pub.path, "b.test")
    crt, key = os.path.join(pub.path, "live.crt"), os.path.join(pub.path, "live.key")
    shutil.copy(a[0], crt)
    shutil.copy(a[1], key)
    os.chmod(key, 0o600)
    os.chown(key, 0, 0)
    p = start(pub, extra=["tls_cert = %s" % crt, "tls_key = %s" % key])
    shutil.copy(b[0], crt)
    shutil.copy(b[1], key)
    os.kill(p.pid, signal.SIGHUP)
    assert p.wait_log(r"warning: SIGHUP: certificate not reloaded: .*live\.key"), p.log[-1500:]
    assert p.running()
    with TClient(p.host, p.port) as c:
        c.ehlo()
        c.starttls(ehlo=False)
        assert c.sock.getpeercert(binary_form=True) == cert_der(a[0])
        c.ehlo()
    assert p.healthy()


def test_without_user_root_is_warned_about(server):
    assert server.wait_log(r"warning: running as root: set 'user' in the configuration to "
                           r"drop privileges")
    assert "running as nobody" not in server.log
    assert proc_status(server.pid)["Uid"].split("\t")[0] == "0"


@pytest.mark.parametrize("user,why", [("root", r"user = root is root: pick an unprivileged "
                                                r"user"),
                                      ("no-such-user-here", r"user no-such-user-here: no such "
                                                            r"user")])
def test_bad_user_is_refused_at_start(pub, user, why):
    base = os.path.join(pub.path, "bad")
    os.mkdir(base)
    p = Postel(base, extra=["user = %s" % user])       # writes the config only
    rc, out = run_once(p.config)
    assert rc is not None and rc != 0, out
    assert re.search(why, out), out
    assert "postel started" not in out


def test_user_setting_when_not_root_must_match(pub):
    """Started by an unprivileged user with "user = nobody" from another uid: refused (it
    cannot become that user). Run as a different user via a small wrapper: setuid to
    'daemon' before exec."""
    daemon = pwd.getpwnam("daemon")
    base = os.path.join(pub.path, "unpriv")
    os.mkdir(base)
    os.chown(base, daemon.pw_uid, daemon.pw_gid)
    p = Postel(base, extra=["user = nobody"])
    os.chown(p.config, daemon.pw_uid, daemon.pw_gid)
    def demote():
        os.setgroups([])
        os.setgid(daemon.pw_gid)
        os.setuid(daemon.pw_uid)
    r = subprocess.run([POSTELD, "-f", p.config], preexec_fn=demote, capture_output=True,
                       text=True, timeout=15, cwd="/")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert re.search(r"user = nobody, but started as uid %d without root" % daemon.pw_uid,
                     out), out
