"""Exactly once into each local mailbox, across kill -9.

- The crash window replayed on purpose: a message is delivered, then its queue file is put
  back as it was before the delivery (what a kill between the Maildir write and the queue
  update leaves), and the daemon restarts. The copy in new/ (or in cur/, where a reader moved
  it) is found and no second one is written.
- The kill -9 matrix: eight senders keep sending while the daemon is killed three times in the
  middle of deliveries and restarted; afterwards every acknowledged message is in its mailbox
  exactly once, a message whose end of data got no reply at most once, and a refused one
  never.
Every socket is on 127.0.0.1; every loop is bounded in count and time.
"""
import os
import re
import shutil
import threading
import time

from helpers import Closed, msg, queue_id, wait_until


def copies(server, user, needle):
    """Files in user's Maildir (new/ and cur/) whose text contains needle."""
    n = 0
    for sub in ("new", "cur"):
        d = os.path.join(server.mail, user, sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for name in names:
            try:
                with open(os.path.join(d, name), "rb") as f:
                    if needle.encode() in f.read():
                        n += 1
            except FileNotFoundError:
                pass
    return n


def _queue_file_before_delivery(server, tmp_path, tag):
    """Queue a message for alice while her mailbox cannot be made (a file stands where the
    Maildir goes), keep a copy of its queue file, then let it be delivered. Returns the copy
    and the queue id."""
    mbox = os.path.join(server.mail, "alice")
    os.makedirs(server.mail, exist_ok=True)
    with open(mbox, "w") as f:
        f.write("not a directory\n")
    r = server.send("once@example.org", ["alice@localhost"], msg(tag))
    assert r.code == 250, r
    qid = queue_id(r)
    assert server.wait_log(r"%s to=<alice@localhost> mailbox=alice status=deferred" % qid, 10)
    server.stop()
    saved = str(tmp_path / "saved")
    shutil.copytree(os.path.join(server.spool, "queue"), saved)
    assert any(n.startswith(qid) for n in os.listdir(saved))
    os.unlink(mbox)
    server.start()
    assert server.wait_log(r"%s to=<alice@localhost> mailbox=alice relay=local .*"
                           r"status=delivered" % qid, 15)
    assert server.settle(15)
    assert copies(server, "alice", tag) == 1
    return saved, qid


def _replay(server, saved):
    """What a kill -9 after the Maildir write and before the queue update leaves."""
    server.stop()
    qdir = os.path.join(server.spool, "queue")
    for n in os.listdir(saved):
        shutil.copy2(os.path.join(saved, n), os.path.join(qdir, n))
    server.start()


def test_crash_after_the_maildir_write_delivers_no_second_copy(server, tmp_path):
    tag = "replayed-%d" % os.getpid()
    saved, qid = _queue_file_before_delivery(server, tmp_path, tag)
    _replay(server, saved)
    assert server.wait_log(r"%s recovered" % qid, 10)
    assert server.wait_log(r"%s to=<alice@localhost> .*status=delivered .*"
                           r"\(delivered by an earlier attempt\)" % qid, 15)
    assert server.settle(15)
    assert copies(server, "alice", tag) == 1, "delivered twice after the replayed crash"


def test_crash_window_with_the_copy_already_read(server, tmp_path):
    """The reader (an IMAP server, mutt) moved the copy to cur/ with its flags before the
    restart: it is found there."""
    tag = "replayed-read-%d" % os.getpid()
    saved, qid = _queue_file_before_delivery(server, tmp_path, tag)
    new = os.path.join(server.mail, "alice", "new")
    cur = os.path.join(server.mail, "alice", "cur")
    for n in os.listdir(new):
        os.rename(os.path.join(new, n), os.path.join(cur, n + ":2,S"))
    _replay(server, saved)
    assert server.wait_log(r"%s to=<alice@localhost> .*\(delivered by an earlier attempt\)"
                           % qid, 15)
    assert server.settle(15)
    assert copies(server, "alice", tag) == 1, "delivered twice after the replayed crash"
    assert os.listdir(new) == []


# ---- the kill -9 matrix ------------------------------------------------------------------------

USERS = ["alice", "bob", "carol", "dave"]


def _sender(server, tid, stop, results, deadline):
    """Send one-recipient messages until stop is set; record each one's fate."""
    i = 0
    while not stop.is_set() and time.monotonic() < deadline and i < 2000:
        tag = "eo-%d-%d" % (tid, i)
        user = USERS[(tid + i) % len(USERS)]
        i += 1
        state = "refused"
        try:
            with server.client(timeout=10) as c:
                c.ehlo()
                if c.cmd("MAIL FROM:<eo@example.org>").code != 250:
                    raise Closed()
                if c.cmd("RCPT TO:<%s@localhost>" % user).code != 250:
                    raise Closed()
                if c.cmd("DATA").code != 354:
                    raise Closed()
                c.send(msg(tag) + ".\r\n")
                state = "doubt"      # end of data sent: from here on it may be stored
                r = c.reply(timeout=10)
                state = "acked" if r.code == 250 else "refused"
                if r.code not in (250, 421, 451, 452):
                    results.append((tag, user, "bad-reply %s" % r))
                    continue
        except (Closed, OSError):
            pass
        results.append((tag, user, state))
        if state == "refused":
            time.sleep(0.05)    # the daemon is down: wait for it


def test_kill9_matrix_every_acked_message_exactly_once(server):
    results = []
    stop = threading.Event()
    deadline = time.monotonic() + 90
    threads = [threading.Thread(target=_sender, args=(server, t, stop, results, deadline))
               for t in range(8)]
    for t in threads:
        t.start()
    try:
        for kill in range(3):
            # kill in the middle of deliveries: after enough new acknowledgements, and
            # while the log shows deliveries going on
            target = len([r for r in results if r[2] == "acked"]) + 150
            assert wait_until(lambda: len([r for r in results if r[2] == "acked"]) >= target,
                              40), "senders stalled: %d results" % len(results)
            mark = server._log_size()
            assert wait_until(lambda: "status=delivered" in server.log_since(mark), 10)
            server.kill9()
            time.sleep(0.2)     # senders see the refusals
            server.start()
        target = len([r for r in results if r[2] == "acked"]) + 50
        wait_until(lambda: len([r for r in results if r[2] == "acked"]) >= target, 20)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    bad = [r for r in results if r[2].startswith("bad-reply")]
    assert not bad, bad[:5]
    assert server.settle(60), "queue did not drain: %s" % server.spool_files("queue")[:5]
    # one pass over every mailbox: tag -> number of copies
    seen = {}
    for user in USERS:
        for sub in ("new", "cur"):
            d = os.path.join(server.mail, user, sub)
            for name in os.listdir(d) if os.path.isdir(d) else []:
                with open(os.path.join(d, name), "rb") as f:
                    m = re.search(rb"^Subject: (eo-\d+-\d+)$", f.read(), re.M)
                if m:
                    key = (m.group(1).decode(), user)
                    seen[key] = seen.get(key, 0) + 1
    acked = [(t, u) for t, u, s in results if s == "acked"]
    doubt = [(t, u) for t, u, s in results if s == "doubt"]
    refused = [(t, u) for t, u, s in results if s == "refused"]
    assert len(acked) >= 450, "too few acknowledged messages to mean anything: %d" % len(acked)
    lost = [k for k in acked if seen.get(k, 0) == 0]
    twice = [(k, seen[k]) for k in acked + doubt if seen.get(k, 0) > 1]
    ghosts = [k for k in refused if seen.get(k, 0) > 0]
    assert not lost, "acknowledged and lost: %d of %d, e.g. %s" % (len(lost), len(acked),
                                                                  lost[:5])
    assert not twice, "delivered more than once: %d, e.g. %s" % (len(twice), twice[:5])
    assert not ghosts, "refused but delivered: %s" % ghosts[:5]
    print("exactly once: %d acknowledged, %d in doubt (%d delivered), %d refused, 3 kills" % (
        len(acked), len(doubt), len([k for k in doubt if seen.get(k)]), len(refused)))
