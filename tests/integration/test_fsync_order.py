"""Durability order, observed from inside the daemon: an LD_PRELOAD recorder (syscall_rec.c,
compiled here with cc) logs every fsync/fdatasync, rename, unlink, spool/Maildir file write
and every socket write carrying "queued as ID", each with a sequence number taken before and
after the call. kill -9 keeps the page cache, so only the order of these calls shows whether
an acknowledged message would survive a power loss.

Checked per message, under concurrent load:
  spool    data written, then fdatasync'd, then renamed incoming/ -> queue/, then queue/
           fsync'd (by any thread: group commit), all before the 250 that names its id;
  group    fewer queue/ fsyncs than messages (commits share directory flushes);
  Maildir  the file in tmp/ written, synced, renamed to new/, new/ fsync'd, all before the
           queue records the recipient as done (unlink of the queue file or its status).
"""
import os
import re
import subprocess
import threading

import pytest

from helpers import Client, msg, queue_id, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = 8
PER_THREAD = 25
USERS = ["alice", "bob", "carol", "dave"]


@pytest.fixture(scope="module")
def recorder(tmp_path_factory):
    """The recorder library, built from syscall_rec.c into a temp directory."""
    d = tmp_path_factory.mktemp("rec")
    so = str(d / "syscall_rec.so")
    r = subprocess.run(["cc", "-shared", "-fPIC", "-std=c11", "-O2", "-Wall", "-Wextra",
                        "-Werror", "-o", so, os.path.join(HERE, "syscall_rec.c"), "-ldl",
                        "-lpthread"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "cannot build the recorder: %s" % r.stderr
    return so


class Rec:
    """One recorded call: begin/end sequence numbers, the operation and its arguments."""

    def __init__(self, line):
        f = line.rstrip("\n").split("\t")
        self.begin, self.end, self.op, self.args = int(f[0]), int(f[1]), f[2], f[3:]

    def ok(self):
        return self.args[-1] == "0" if self.op in ("fsync", "fdatasync", "rename",
                                                    "unlink") else True

    def __repr__(self):
        return "Rec(%d..%d %s %s)" % (self.begin, self.end, self.op, " ".join(self.args))


class Trace:
    def __init__(self, path):
        with open(path) as f:
            self.recs = [Rec(ln) for ln in f if ln.strip()]
        self.by_op = {}
        for r in self.recs:
            self.by_op.setdefault(r.op, []).append(r)

    def ops(self, op, pred=lambda r: True):
        return [r for r in self.by_op.get(op, []) if r.ok() and pred(r)]

    def syncs(self, path):
        return [r for op in ("fsync", "fdatasync") for r in self.ops(op)
                if r.args[0] == path]


def start_recorded(make_server, recorder, tmp_path, extra=()):
    log = str(tmp_path / "calls.log")
    s = make_server(extra=list(extra), start=False)
    base = os.path.realpath(s.base)
    # a directory flush takes 2 ms at least, as on a disk: on tmpfs (make test-clean's /tmp)
    # it would cost nothing and no commit could ever share one
    s.env = {"LD_PRELOAD": recorder, "SYSCALL_REC_LOG": log,
             "SYSCALL_REC_PREFIX": "%s/spool/:%s/mail/" % (base, base),
             "SYSCALL_REC_DIRSYNC_US": "2000"}
    # build-san: the sanitizer runtime is not the first library when another is preloaded
    s.env["ASAN_OPTIONS"] = ":".join(x for x in (os.environ.get("ASAN_OPTIONS", ""),
                                                  "verify_asan_link_order=0") if x)
    s.start()
    return s, base, log


def send_concurrently(s):
    """THREADS sessions of PER_THREAD messages each; returns [(qid, user)] of every 250."""
    acked, errors = [], []
    lock = threading.Lock()

    def run(k):
        try:
            with Client(s.host, s.port, timeout=60) as c:
                c.ehlo()
                for i in range(PER_THREAD):
                    user = USERS[(k + i) % len(USERS)]
                    r = c.send_message("t%d@example.org" % k, ["%s@localhost" % user],
                                       msg("order %d-%d" % (k, i)), ehlo=False)
                    assert r.code == 250, r
                    with lock:
                        acked.append((queue_id(r), user))
                c.cmd("QUIT")
        except Exception as e:      # reported by the main thread
            with lock:
                errors.append("session %d: %r" % (k, e))

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "sessions still running after 120 s"
    assert not errors, errors
    assert len(acked) == THREADS * PER_THREAD
    return acked


def delivered_files(s):
    """{qid: (mailbox, file name)} from the delivery log lines."""
    out = {}
    for m in re.finditer(r"([0-9A-F]{16}) to=<[^>]*> mailbox=(\w+) relay=local .*"
                         r"status=delivered file=(\S+)", s.log):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


def check_file_synced(t, path, before, what):
    """path's data was written, then synced (completed) before the call `before` began.
    Returns the sync record."""
    writes = [r for r in t.ops("write") if r.args[0] == path]
    assert writes, "%s: no write to %s recorded" % (what, path)
    last = max(r.end for r in writes)
    syncs = [r for r in t.syncs(path) if r.begin > last and r.end < before.begin]
    assert syncs, ("%s: %s not fdatasync'd/fsync'd after its last write (seq %d) and before "
                   "%r; its syncs: %s" % (what, path, last, before, t.syncs(path)))
    return syncs[0]


def check_dir_synced(t, d, after, before, what):
    """An fsync of directory d began after `after` completed and ended before `before`
    began."""
    ok = [r for r in t.syncs(d) if r.begin > after.end and r.end < before.begin]
    assert ok, ("%s: no fsync of %s between %r and %r (%d fsyncs of it in all)"
                % (what, d, after, before, len(t.syncs(d))))


def test_spool_sync_before_250_and_group_commit(make_server, recorder, tmp_path):
    s, base, log = start_recorded(make_server, recorder, tmp_path)
    acked = send_concurrently(s)
    t = Trace(log)
    incoming, queue = base + "/spool/incoming", base + "/spool/queue"
    replies = {r.args[1]: r for r in t.ops("reply")}
    renames = {r.args[1]: r for r in t.ops("rename") if r.args[1].startswith(queue + "/")}
    for qid, _ in acked:
        what = "message %s" % qid
        reply = replies.get(qid)
        assert reply is not None, "%s: no socket write with its 250 recorded" % what
        mv = renames.get(queue + "/" + qid)
        assert mv is not None and mv.args[0] == incoming + "/" + qid, \
            "%s: never renamed from incoming/ into queue/: %r" % (what, mv)
        assert mv.end < reply.begin, "%s: renamed into queue/ after the 250: %r" % (what, mv)
        check_file_synced(t, incoming + "/" + qid, mv, what)
        check_dir_synced(t, queue, mv, reply, what)
    # group commit: concurrent commits share the directory flushes
    n = len(t.syncs(queue))
    assert 0 < n < len(acked), "%d fsyncs of queue/ for %d messages" % (n, len(acked))
    assert s.settle(60)


def test_maildir_sync_before_queue_done(make_server, recorder, tmp_path):
    s, base, log = start_recorded(make_server, recorder, tmp_path)
    acked = send_concurrently(s)
    assert s.settle(60), s.spool_files("queue")
    files = wait_for(lambda: len(delivered_files(s)) >= len(acked) and delivered_files(s),
                     10, "a delivery log line for every message")
    t = Trace(log)
    queue = base + "/spool/queue"
    done_ops = t.ops("unlink") + t.ops("rename")
    for qid, user in acked:
        what = "message %s" % qid
        assert qid in files, "%s: no delivery logged" % what
        box, name = files[qid]
        assert box == user, (what, box, user)
        tmp, new = "%s/mail/%s/tmp/%s" % (base, box, name), "%s/mail/%s/new/%s" % (base, box,
                                                                                  name)
        mv = [r for r in t.ops("rename") if r.args == [tmp, new, "0"]]
        assert len(mv) == 1, "%s: rename %s -> new/ recorded %d times" % (what, tmp, len(mv))
        mv = mv[0]
        check_file_synced(t, tmp, mv, what)
        # the queue notes the recipient done: queue file removed, or its status rewritten
        done = sorted((r for r in done_ops
                       if (r.op == "unlink" and r.args[0] == queue + "/" + qid) or
                       (r.op == "rename" and r.args[1] == queue + "/" + qid + ".st")),
                      key=lambda r: r.begin)
        assert done, "%s: the queue never recorded the delivery" % what
        assert mv.end < done[0].begin, "%s: queue updated before the Maildir rename" % what
        check_dir_synced(t, "%s/mail/%s/new" % (base, box), mv, done[0], what)
