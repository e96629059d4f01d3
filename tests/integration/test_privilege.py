"""Privilege drop: started as root with "user = nobody", posteld binds, reads its keys, hands
the spool directories, the mail store directory and the control socket to nobody (never
walking a tree, never following a link, never touching files it did not make), and runs as
nobody for good (every thread, no supplementary groups, no capabilities). Without "user" it
warns; "user = root" and unknown users are refused at start.

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

from helpers import POSTELD, Postel, msg, queue_id, wait_until

POSTEL_CLI = os.path.join(os.path.dirname(POSTELD), "postel")
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
        # the directories of a root-run daemon (or made by hand) are taken over, not their
        # contents
        os.makedirs(os.path.join(base, "mail"), 0o700)
        os.makedirs(os.path.join(base, "spool", "queue"), 0o700)
    p = start(pub, extra=["relay_networks = 127.0.0.0/8"], precreate=precreate)
    nob = (NOBODY.pw_uid, NOBODY.pw_gid)
    for d in (p.spool, p.mail, os.path.join(p.spool, "queue"),
              os.path.join(p.spool, "incoming"), os.path.join(p.spool, "corrupt"),
              os.path.join(p.spool, "maildrop"), os.path.join(p.spool, "tls")):
        assert owner(d) == nob, d
    assert stat.S_IMODE(os.lstat(os.path.join(p.spool, "maildrop")).st_mode) == 0o1733
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
        assert owner(os.path.join(p.mail, user, "new")) == nob
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


# ---- what the start touches -----------------------------------------------------------------

DAEMON = pwd.getpwnam("daemon")


def wait_new(p, pattern, timeout=5.0):
    """Wait for a regex in what p logged since it started (the log file is shared with an
    earlier daemon in the same directory)."""
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(p.log_since(p._log_mark)), timeout)


def secret_file(path, text="root only\n"):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    return path


def test_start_touches_no_file_it_did_not_make(pub):
    """Links in the world-writable maildrop/ lead nowhere, files submitters left there keep
    their owner (and so their submitter), and what is in mail_dir is not the daemon's to
    take."""
    base = os.path.join(pub.path, "touch")
    os.mkdir(base)
    os.chmod(base, 0o755)
    outside = os.path.join(pub.path, "outside")
    os.mkdir(outside, 0o700)
    victim_dir = os.path.join(outside, "dir")
    os.mkdir(victim_dir, 0o700)
    victims = [secret_file(os.path.join(outside, "linked")),
               secret_file(os.path.join(outside, "hardlinked")),
               secret_file(os.path.join(victim_dir, "inner"))]
    spool, mail = os.path.join(base, "spool"), os.path.join(base, "mail")
    drop = os.path.join(spool, "maildrop")
    os.makedirs(drop)
    os.chmod(spool, 0o755)
    os.chmod(drop, 0o1733)
    # what any local user can leave in maildrop/ before the daemon starts
    os.symlink(victims[0], os.path.join(drop, "link"))
    os.symlink(victim_dir, os.path.join(drop, "dirlink"))
    os.link(victims[1], os.path.join(drop, "hardlink"))
    # a mail store that holds someone else's files (a home-like tree)
    homey = os.path.join(mail, "homey")
    os.makedirs(homey)
    foreign = os.path.join(homey, "foreign.txt")
    with open(foreign, "w") as f:
        f.write("not postel's\n")
    for x in (homey, foreign):
        os.chown(x, DAEMON.pw_uid, DAEMON.pw_gid)
    p = Postel(base, extra=["user = nobody"])
    pub.daemons.add(p, start=False)
    # a message dropped by the user "daemon" while posteld is down
    def as_daemon():
        os.setgroups([])
        os.setgid(DAEMON.pw_gid)
        os.setuid(DAEMON.pw_uid)
    env = dict(os.environ, POSTEL_CONF=p.config)
    r = subprocess.run(["sendmail", "-v", "-f", "d@example.org", "alice@localhost"],
                       executable=POSTEL_CLI, input=b"Subject: dropped by daemon\n\nhi\n",
                       capture_output=True, timeout=15, env=env, cwd="/",
                       preexec_fn=as_daemon)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, (out, r.stderr)
    m = re.search(r"message left in (\S+/maildrop/[0-9A-F]{16});", out)
    assert m, out
    assert os.lstat(m.group(1)).st_uid == DAEMON.pw_uid
    p.start()
    assert p.wait_log(r"running as nobody")
    # picked up with its submitter's uid: the file was not re-owned first
    assert p.wait_log(r"received from=<d@example\.org> .*user=uid %d \(maildrop\)" %
                      DAEMON.pw_uid, 15), p.log[-2000:]
    got = p.maildir("alice", wait_for=1, timeout=15)
    assert got and "Subject: dropped by daemon" in got[0].text
    for v in victims + [victim_dir, outside]:
        assert owner(v) == (0, 0), v
    assert owner(homey) == (DAEMON.pw_uid, DAEMON.pw_gid)
    assert owner(foreign) == (DAEMON.pw_uid, DAEMON.pw_gid)
    nob = (NOBODY.pw_uid, NOBODY.pw_gid)
    assert owner(mail) == nob and owner(spool) == nob and owner(drop) == nob
    assert stat.S_IMODE(os.lstat(drop).st_mode) == 0o1733
    assert p.healthy()


def test_root_queue_files_of_an_earlier_run_are_taken_over(pub):
    """A message queued by a root-run daemon is the daemon's to deliver once it runs as
    nobody: queue/ files of root's (regular, one link) change hands at start; a hard link to
    a file outside the spool does not."""
    base = os.path.join(pub.path, "earlier")
    os.mkdir(base)
    os.chmod(base, 0o755)
    first = pub.daemons.add(Postel(base, extra=["relay_networks = 127.0.0.0/8"]))
    r = first.send("a@example.org", ["far@remote.test"], msg("queued by root"))
    assert r.code == 250
    qid = queue_id(r)
    assert first.wait_log(r"%s to=<far@remote.test> .*status=deferred" % qid, 10.0)
    assert first.stop() == 0
    qf = os.path.join(first.spool, "queue", qid)
    assert owner(qf) == (0, 0)
    outside = os.path.join(pub.path, "outside-q")
    os.mkdir(outside, 0o700)
    victim = secret_file(os.path.join(outside, "victim"))
    os.link(victim, os.path.join(first.spool, "queue", "hardlink"))
    second = pub.daemons.add(Postel(base, extra=["relay_networks = 127.0.0.0/8",
                                                 "user = nobody"]))
    assert wait_new(second, r"running as nobody")
    assert wait_new(second, r"queue: [0-9]+ file\(s\) of root's from an earlier run given "
                    r"to uid %d" % NOBODY.pw_uid), second.log[-2000:]
    assert owner(qf) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert owner(victim) == (0, 0)
    # the daemon, as nobody, can use the message: tried again now, it stays queued
    assert wait_new(second, r"postel started: .* queued=1\b"), second.log[-2000:]
    r = subprocess.run([POSTEL_CLI, "queue", "flush"], capture_output=True, timeout=15,
                       env=dict(os.environ, POSTEL_CONF=second.config))
    assert r.returncode == 0, r
    assert wait_new(second, r"%s to=<far@remote.test> .*status=deferred" % qid, 15.0), \
        second.log[-2000:]
    assert os.path.exists(qf) and owner(qf) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert second.healthy()


def test_selfsigned_pair_is_never_written_through_a_link(pub):
    """tls/ belongs to the daemon's user, and root makes the self-signed pair there at start:
    a link the user left in place of the key must not make root write through it."""
    victim = os.path.join(pub.path, "root-only")
    with open(victim, "w") as f:
        f.write("root's file\n")
    os.chmod(victim, 0o600)

    def plant(base):
        tls = os.path.join(base, "spool", "tls")
        os.makedirs(tls)
        os.symlink(victim, os.path.join(tls, "selfsigned.key"))
        os.chown(tls, NOBODY.pw_uid, NOBODY.pw_gid)

    p = start(pub, precreate=plant)
    assert p.wait_log(r"tls: made a self-signed certificate")
    with open(victim) as f:
        assert f.read() == "root's file\n", "root wrote the key through the link"
    assert owner(victim) == (0, 0)
    key = os.path.join(p.spool, "tls", "selfsigned.key")
    assert not os.path.islink(key) and stat.S_IMODE(os.lstat(key).st_mode) == 0o600
