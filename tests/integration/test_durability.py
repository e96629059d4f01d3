"""Durability: kill -9 at bad moments, restart, and check that every acknowledged message is
delivered (at least once; exactly once where no crash window applies) and that no message
whose end of data was never sent is ever delivered. A full spool disk gets 452 4.3.1."""
import os
import random
import re
import subprocess
import threading
import time

import pytest

from helpers import Client, Closed, msg, queue_id, wait_until


def mids_in(server, user):
    out = []
    for m in server.maildir(user):
        out += re.findall(r"^Message-Id: (<[^>]+>)$", m.text, re.M)
    return out


# ---- (a) kill -9 during DATA ----------------------------------------------------------------

@pytest.mark.parametrize("size", [2000, 2 * 1024 * 1024])
def test_kill9_during_data_message_never_appears(server, size):
    tag = "killed-in-data-%d" % size
    c = server.client(timeout=30)
    c.ehlo()
    c.expect("MAIL FROM:<a@example.org>", 250)
    c.expect("RCPT TO:<alice@localhost>", 250)
    c.expect("DATA", 354)
    c.send("Subject: %s\r\n\r\n" % tag)
    line = b"k" * 98 + b"\r\n"
    c.send(line * (size // len(line)))
    if size > 1024 * 1024:
        # part of it is in the spool's incoming/ already
        assert wait_until(lambda: server.spool_files("incoming"), 5)
    else:
        time.sleep(0.3)
    server.kill9()
    c.close()
    server.start()
    # unacknowledged leftovers are removed at startup
    assert server.spool_files("incoming") == []
    if size > 1024 * 1024:
        assert "removed 1 unacknowledged incoming file" in server.log
    server.healthy()
    assert server.settle()
    assert not server.find_mail(tag)


# ---- (b) kill -9 right after the 250 --------------------------------------------------------

def test_kill9_right_after_250_delivered_exactly_once(server):
    ids = []
    windows = set()
    for i in range(5):
        with server.client() as c:
            c.ehlo()
            c.expect("MAIL FROM:<a@example.org>", 250)
            c.expect("RCPT TO:<bob@localhost>", 250)
            c.expect("DATA", 354)
            c.send(msg("acked-%d" % i, extra_headers=["Message-Id: <acked-%d@dur.test>" % i])
                   + ".\r\n")
            r = c.reply()
            assert r.code == 250
            server.kill9()
            qid = queue_id(r)
            ids.append(qid)
        # the documented duplicate window: in the Maildir already, queue not yet updated
        if mids_in(server, "bob").count("<acked-%d@dur.test>" % i) and \
                not re.search(r"%s removed" % qid, server.log):
            windows.add(i)
        server.start()
    assert server.settle(20)
    got = mids_in(server, "bob")
    for i in range(5):
        n = got.count("<acked-%d@dur.test>" % i)
        if i in windows:
            assert n in (1, 2), (i, n)
        else:
            assert n == 1, (i, n, server.log[-3000:])
    assert server.spool_files("corrupt") == []


@pytest.mark.postel_config("relay_networks = 127.0.0.0/8")
def test_kill9_with_queued_remote_recipient_survives(server):
    """A message with a recipient that cannot be delivered yet (remote) stays queued across
    a crash and is recovered on restart; its local recipient, already delivered and recorded
    in the status file, is not delivered again."""
    with server.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("RCPT TO:<far@remote.example>", 250)
        c.expect("DATA", 354)
        c.send(msg("stays queued") + ".\r\n")
        qid = queue_id(c.reply())
    assert len(server.maildir("bob", wait_for=1)) == 1
    assert server.wait_log(r"%s to=<far@remote\.example> .*status=deferred" % qid)
    # the status file records the progress
    assert wait_until(lambda: "%s.st" % qid in server.spool_files("queue"), 5)
    server.kill9()
    server.start()
    assert server.wait_log(r"%s recovered from=<a@example.org> nrcpt=2" % qid)
    assert qid in server.spool_files("queue")
    # the retry after the restart runs at once and defers the remote recipient again
    assert wait_until(lambda: len(re.findall(r"%s to=<far@remote\.example> .*status=deferred"
                                             % qid, server.log)) >= 2, 5)
    assert len(server.maildir("bob")) == 1
    assert qid in server.spool_files("queue")


# ---- (c) concurrent senders, random kill -9, 20 rounds ----------------------------------------

class Sender(threading.Thread):
    """One client sending messages in a loop until stop is set or the daemon goes away.

    Each message gets a record: state "started" until the end of data is sent, then
    "in_doubt" until its reply comes, then "acked" (250) or "refused". A connection that
    fails (the daemon was killed or is not up yet) ends the thread quietly; any other
    surprise (a reply that is not the expected one before the end of data) is kept in
    errors and fails the test."""
    USERS = ["alice", "bob", "carol", "dave"]

    def __init__(self, server, name, records, stop, errors, acked):
        super().__init__(daemon=True)
        self.server = server
        self.tag = name
        self.records = records
        self.stop = stop
        self.errors = errors
        self.acked = acked          # a callback for each 250

    def run(self):
        n = 0
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            n += 1
            user = self.USERS[n % len(self.USERS)]
            mid = "<%s-%d@crash.test>" % (self.tag, n)
            rec = {"mid": mid, "user": user, "state": "started"}
            self.records.append(rec)
            try:
                c = Client(self.server.host, self.server.port, timeout=30)
            except (OSError, Closed):
                return
            try:
                c.ehlo()
                c.expect("MAIL FROM:<%s@example.org>" % self.tag, 250)
                c.expect("RCPT TO:<%s@localhost>" % user, 250)
                c.expect("DATA", 354)
                body = msg("crash test %s" % mid,
                           body=("y" * 76 + "\r\n") * random.randint(1, 2000),
                           extra_headers=["Message-Id: " + mid])
                c.send(body)
                rec["state"] = "in_doubt"       # from here on it may be accepted
                c.send(".\r\n")
                r = c.reply()
                rec["reply"] = r.first
                if r.code == 250:
                    rec["state"] = "acked"
                    rec["qid"] = queue_id(r)
                    self.acked()
                else:
                    rec["state"] = "refused"
                c.send("QUIT\r\n")
            except (OSError, Closed):
                return                          # the daemon went away: the kill
            except AssertionError as e:
                self.errors.append("%s: %s" % (mid, e))
                return
            finally:
                c.close()


def test_random_kill9_rounds(server):
    """20 rounds of 4 concurrent senders and a kill -9 at a random point after at least one
    more message of the round was acknowledged; then every acknowledged message must be in
    its mailbox exactly once, every message whose end of data got no reply at most once,
    and no refused or unfinished message at all."""
    rng = random.Random(20240611)
    records, errors = [], []
    for rnd in range(20):
        stop = threading.Event()
        lock = threading.Lock()
        got = [0]

        def one_more():
            with lock:
                got[0] += 1

        senders = [Sender(server, "r%02ds%d" % (rnd, k), records, stop, errors, one_more)
                   for k in range(4)]
        for s in senders:
            s.start()
        want = rng.randint(1, 4)
        ok = wait_until(lambda: got[0] >= want or errors, 60)
        assert ok and not errors, ("round %d: %d of %d acknowledgements; errors %s"
                                   % (rnd, got[0], want, errors[:5]))
        # a random moment after that: in DATA, at end of data, in the commit, after a 250
        time.sleep(rng.uniform(0, 0.05))
        server.kill9()
        stop.set()
        for s in senders:
            s.join(60)
            assert not s.is_alive()
        server.start()
    assert not errors, errors[:5]
    assert server.settle(60), (server.spool_files("queue"), server.log[-3000:])
    delivered = {}
    for u in Sender.USERS:
        for mid in mids_in(server, u):
            delivered[mid] = delivered.get(mid, 0) + 1
    by_state = {}
    for r in records:
        by_state.setdefault(r["state"], []).append(r)
    acked = by_state.get("acked", [])
    assert len(acked) >= 20, "too few messages got through to test anything: %d" % len(acked)
    refused = by_state.get("refused", [])
    assert not refused, "refused messages: %s" % refused[:5]
    lost = [r for r in acked if delivered.get(r["mid"], 0) < 1]
    assert not lost, "acknowledged but never delivered: %s" % lost[:5]
    dups = [(r, delivered[r["mid"]]) for r in acked + by_state.get("in_doubt", [])
            if delivered.get(r["mid"], 0) > 1]
    # For the report: a duplicate whose copies were written by different posteld processes
    # (the P<pid> of the Maildir names) was delivered again after a restart -- the crash
    # window between the Maildir write and the queue update.
    pids = {}
    for u in Sender.USERS:
        for m in server.maildir(u):
            pm = re.search(r"\.M\d+P(\d+)Q", m.name)
            for mid in re.findall(r"^Message-Id: (<[^>]+>)$", m.text, re.M):
                pids.setdefault(mid, set()).add(pm.group(1) if pm else "?")
    again = [r["mid"] for r, _ in dups if len(pids.get(r["mid"], ())) > 1]
    assert not dups, ("%d of %d acknowledged/in-doubt messages delivered more than once, %d "
                      "of them again after a restart: %s" % (len(dups), len(acked) +
                      len(by_state.get("in_doubt", [])), len(again), dups[:3]))
    ghosts = [r for r in by_state.get("started", []) if delivered.get(r["mid"], 0) > 0]
    assert not ghosts, "delivered although the end of data was never sent: %s" % ghosts[:5]
    # every delivered message is one we sent, in the right mailbox
    known = {r["mid"]: r["user"] for r in records}
    for u in Sender.USERS:
        for mid in mids_in(server, u):
            assert known.get(mid) == u, (mid, u)
    assert server.spool_files("corrupt") == []
    assert server.spool_files("incoming") == []


# ---- (d) full disk ----------------------------------------------------------------------

@pytest.fixture
def tmpfs_spool(tmp_path):
    d = tmp_path / "tmpfs-spool"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)],
                       capture_output=True, text=True)
    assert r.returncode == 0, "cannot mount a tmpfs (root needed): %s" % r.stderr
    yield str(d)
    r = None
    for _ in range(50):
        r = subprocess.run(["umount", str(d)], capture_output=True, text=True)
        if r.returncode == 0:
            break
        time.sleep(0.1)
    assert r.returncode == 0, "umount failed: %s" % r.stderr


def test_full_disk_big_message(tmpfs_spool, make_server):
    s = make_server(extra=["message_size_limit = 50M"], spool_dir=tmpfs_spool)
    with s.client(timeout=60) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        line = b"f" * 98 + b"\r\n"
        c.send(b"Subject: does not fit\r\n\r\n" + line * 20000)    # 2 MB > 1 MB tmpfs
        c.send(b".\r\n")
        r = c.reply(timeout=60)
        assert r.code == 452 and r.first.startswith("452 4.3.1"), r
        # nothing half-stored remains
        assert wait_until(lambda: not s.spool_files("incoming"), 5), s.spool_files("incoming")
        assert s.spool_files("queue") == []
        # the session goes on, and a small message works
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@localhost>", 250)
        c.expect("DATA", 354)
        c.send(msg("fits") + ".\r\n")
        assert c.reply().code == 250
    m = s.maildir("alice", wait_for=1)
    assert len(m) == 1 and "Subject: fits" in m[0].text
    assert s.settle()
    assert not s.find_mail("does not fit")


def test_full_disk_at_commit(tmpfs_spool, make_server):
    s = make_server(extra=["message_size_limit = 50M"], spool_dir=tmpfs_spool)
    # fill the tmpfs so that about 100 kB stay free
    filler = os.path.join(tmpfs_spool, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (1024 * 1024 - 200 * 1024))
    st = os.statvfs(tmpfs_spool)
    free = st.f_bavail * st.f_frsize
    assert free < 220 * 1024, free
    with s.client(timeout=30) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: no room at commit\r\n\r\n" + (b"g" * 98 + b"\r\n") * 2400 + b".\r\n")
        r = c.reply(timeout=30)
        assert r.code == 452 and r.first.startswith("452 4.3.1"), r
        assert s.spool_files("incoming") == [] and s.spool_files("queue") == []
        os.unlink(filler)
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: room again\r\n\r\n" + (b"g" * 98 + b"\r\n") * 2400 + b".\r\n")
        assert c.reply(timeout=30).code == 250
    m = s.maildir("bob", wait_for=1)
    assert len(m) == 1 and "Subject: room again" in m[0].text
    assert s.settle()
