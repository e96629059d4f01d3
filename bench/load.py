#!/usr/bin/python3
"""bench/load.py - throughput runs with smtp-source, /proc probes, and the report.

  load.py run --port P --to RCPT --maildir DIR/new --pid ROOTPID --sessions S
              --count N --label SERVER --out RESULTS [--size 2048] [--timeout 60]
              [--from SENDER] [--clear] [--reuse]
  load.py run ... --sink-out FILE --sink-pid PID --sink-port PORT  (not --maildir)
      Starts smtp-source, polls the Maildir until N new files are there (or, for
      the relay runs, the counter that `smtp-sink -c` writes to FILE until N more
      messages reached smtp-sink; with --sink-port also the sessions it saw), and measures the server's CPU (ROOTPID with all
      its threads, its live descendants, and the children it reaped), the machine's
      CPU and the disk's writes and flushes.  Appends one JSON record to RESULTS;
      prints one line.

  load.py listening PORT [--timeout 5]
      Waits until something listens on 127.0.0.1:PORT (from /proc/net/tcp, without
      connecting); exit 0 if it does.

  load.py fsync DIR [--n 200]
      Costs on this disk of one Maildir-style write of 2 KiB (create, write, fsync,
      close, rename, fsync of the directory) and of the same without the fsyncs:
      prints "wall_median_ms wall_p90_ms cpu_ms cpu_nosync_ms n".

  load.py mem --pid ROOTPID
      Total RSS and PSS in KiB, and the process count, of ROOTPID and descendants.

  load.py busy [--seconds 1]
      How busy the machine is now, in % of one core (200% = both cores of two).

  load.py record RESULTS KEY VALUE [KEY VALUE ...]
      Appends one JSON record of facts (numbers where they parse) to RESULTS.

  load.py summary RESULTS
      Prints, for each server and session count, the details of the median run
      (by delivered rate), the same for the relay runs (by relayed rate), then the
      comparison table and the limiting factors.

Python 3 standard library only; reads /proc.  Every loop is bounded in time.
"""
import argparse
import json
import os
import shutil
import resource
import signal
import statistics
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
SESSIONS = (1, 20, 100)


# ------------------------------------------------------------------ /proc

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def stat_fields(path):
    """/proc/.../stat as a list: [0] pid, [1] comm, [2] state, [3] ppid, ...,
    [13] utime, [14] stime, [15] cutime, [16] cstime (see proc(5))."""
    s = read(path)
    if s is None:
        return None
    lp, rp = s.find("("), s.rfind(")")
    if lp < 0 or rp < 0:
        return None
    return [s[:lp].strip(), s[lp + 1:rp]] + s[rp + 2:].split()


def procset(root):
    """root and all its live descendants: {pid: stat fields}."""
    st = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = stat_fields("/proc/%s/stat" % d)
            if f:
                st[int(d)] = f
    kids = {}
    for pid, f in st.items():
        kids.setdefault(int(f[3]), []).append(pid)
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        if p in st and p not in out:
            out[p] = st[p]
            todo.extend(kids.get(p, []))
    return out


def cpu_split(root):
    """(user, system) ticks of the set: utime, stime of each member (all threads)
    plus cutime, cstime (the children it reaped: Postfix's exited smtpd etc.)."""
    user = system = 0
    for f in procset(root).values():
        user += int(f[13]) + int(f[15])
        system += int(f[14]) + int(f[16])
    return user, system


def components(root):
    """CPU ticks per component: {name: (ticks, single)}.  The threads of a single
    process; or, for several processes, per command name (single: one process of
    that name), plus what the exited children used."""
    ps = procset(root)
    out = {}
    if len(ps) == 1:
        for tid in os.listdir("/proc/%d/task" % root):
            f = stat_fields("/proc/%d/task/%s/stat" % (root, tid))
            if f:
                name = ("main thread (event loop)" if int(tid) == root else
                        "thread %s" % tid)
                out[name] = (int(f[13]) + int(f[14]), True)
    else:
        for f in ps.values():
            t, _ = out.get(f[1], (0, True))
            out[f[1]] = (t + int(f[13]) + int(f[14]), f[1] not in out)
        out["(exited children)"] = (sum(int(f[15]) + int(f[16]) for f in ps.values()), False)
    return out


def mem_kib(root):
    rss = pss = 0
    ps = procset(root)
    for pid in ps:
        for line in (read("/proc/%d/status" % pid) or "").splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
        for line in (read("/proc/%d/smaps_rollup" % pid) or "").splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
    return rss, pss, len(ps)


def sys_cpu():
    """(busy, iowait, total) jiffies over all CPUs from /proc/stat."""
    v = [int(x) for x in read("/proc/stat").splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, iowait, busy + idle + iowait


def disk_of(path):
    """The /proc/diskstats name of the block device holding path (or None)."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    dev = os.stat(path).st_dev
    maj, mnr = os.major(dev), os.minor(dev)
    for line in (read("/proc/diskstats") or "").splitlines():
        f = line.split()
        if int(f[0]) == maj and int(f[1]) == mnr:
            return f[2]
    return None


def disk_stats(name):
    """(writes completed, flushes completed) of a device, or None."""
    if name is None:
        return None
    for line in (read("/proc/diskstats") or "").splitlines():
        f = line.split()
        if f[2] == name:
            return int(f[7]), (int(f[18]) if len(f) > 18 else 0)
    return None


def count_dir(path):
    try:
        with os.scandir(path) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def sink_counts(path):
    """(sessions, messages) that smtp-sink -c last reported in path.  It rewrites one
    counter line "sess=S quit=Q mesg=M\\r" after every session end, QUIT and ".", and
    flushes each; only complete lines (ending in \\r) are read."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256))
            tail = f.read().decode("ascii", "replace")
    except OSError:
        return 0, 0
    for line in reversed(tail.split("\r")[:-1]):
        kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
        try:
            return int(kv["sess"]), int(kv["mesg"])
        except (KeyError, ValueError):
            continue
    return 0, 0


def sink_quiet(port, limit):
    """Wait (at most limit seconds) until no connection to 127.0.0.1:port is open on
    the receiving side (/proc/net/tcp: local port, state other than LISTEN and
    TIME_WAIT).  smtp-sink counts a session when it ends, and Postfix keeps relay
    connections open in its connection cache for a while (2 s idle by default):
    this makes the session counts belong to the run that opened the sessions."""
    want = ":%04X" % port
    stop = time.monotonic() + limit
    while True:
        busy = 0
        for line in (read("/proc/net/tcp") or "").splitlines()[1:]:
            f = line.split()
            if len(f) > 3 and f[1].endswith(want) and f[3] not in ("0A", "06"):
                busy += 1
        if busy == 0 or time.monotonic() > stop:
            return busy
        time.sleep(0.1)


def pid_ticks(pid):
    """utime+stime of one process (all its threads), 0 if it is gone."""
    f = stat_fields("/proc/%d/stat" % pid) if pid else None
    return int(f[13]) + int(f[14]) if f else 0


def clear_dir(path):
    try:
        for e in os.scandir(path):
            os.unlink(e.path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------ run

def cmd_run(a):
    relay = a.sink_out is not None
    if relay:
        # the messages that reached smtp-sink (it runs through all relay runs)
        def arrived():
            return sink_counts(a.sink_out)[1]
        where = a.sink_out
    else:
        if a.clear:
            clear_dir(a.maildir)

        def arrived():
            return count_dir(a.maildir)
        where = a.maildir
    if relay and a.sink_port:
        sink_quiet(a.sink_port, 5)
    sess0 = sink_counts(a.sink_out)[0] if relay else 0
    n0 = arrived()
    target = n0 + a.count
    disk = disk_of(where)
    argv = ["/usr/sbin/smtp-source", "-s", str(a.sessions), "-m", str(a.count),
            "-l", str(a.size), "-f", a.sender, "-t", a.to, "-M", "bench.test",
            "127.0.0.1:%d" % a.port]
    if a.reuse:
        argv.insert(1, "-d")
    errpath = "%s.%s.%ss%d.stderr" % (a.out, a.label, "relay." if relay else "", a.sessions)
    errf = open(errpath, "w")

    sk0 = pid_ticks(a.sink_pid)
    u0, k0 = cpu_split(a.pid)
    c0 = components(a.pid)
    s0 = sys_cpu()
    d0 = disk_stats(disk)
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    child = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, errf.fileno(), 2),
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)])
    t_acc = t_del = None
    rc = None
    client_cpu = 0.0
    killed = False
    n = n0
    while True:
        now = time.monotonic()
        if rc is None:
            pid, status, ru = os.wait4(child, os.WNOHANG)
            if pid == child:
                t_acc = now
                rc = os.waitstatus_to_exitcode(status)
                client_cpu = ru.ru_utime + ru.ru_stime
        n = arrived()
        if n >= target and t_del is None:
            t_del = now
        if t_del is not None and rc is not None:
            break
        if rc is not None and rc != 0 and now - t_acc > 5:
            break               # the client failed: give deliveries 5 s, then stop
        if now - t0 > a.timeout:
            if rc is None:
                os.kill(child, signal.SIGTERM)
                killed = True
                _, status, ru = os.wait4(child, 0)
                rc = os.waitstatus_to_exitcode(status)
                t_acc = time.monotonic()
                client_cpu = ru.ru_utime + ru.ru_stime
            break
        time.sleep(0.02)
    t_end = t_del if t_del is not None else time.monotonic()
    # Let the server finish what follows the Maildir write (queue file removal,
    # log lines) so that its CPU is counted, then sample.
    time.sleep(0.3)
    u1, k1 = cpu_split(a.pid)
    c1 = components(a.pid)
    s1 = sys_cpu()
    d1 = disk_stats(disk)
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    sk1 = pid_ticks(a.sink_pid)
    errf.close()
    if relay:
        n = arrived()
        # after the measurement: let the server close its outbound connections
        left = sink_quiet(a.sink_port, 5) if a.sink_port else -1
        sess1 = sink_counts(a.sink_out)[0]

    delivered = n - n0
    wall_acc = max(t_acc - t0, 1e-6)
    wall_del = max(t_end - t0, 1e-6)
    cpu = (u1 - u0 + k1 - k0) / HZ
    tot = max(1, s1[2] - s0[2])
    comp = sorted(((c1[k][0] - c0.get(k, (0, True))[0], k, c1[k][1]) for k in c1),
                  reverse=True)
    rec = {
        "kind": "run", "mode": "relay" if relay else "local",
        "server": a.label, "sessions": a.sessions, "count": a.count,
        "delivered": delivered, "rc": rc, "killed": killed,
        "ok": rc == 0 and delivered >= a.count and not killed,
        "wall_acc": wall_acc, "wall_del": wall_del,
        "acc_rate": a.count / wall_acc if rc == 0 else 0.0,
        "del_rate": delivered / wall_del,
        "cpu": cpu, "cpu_per_k": 1000.0 * cpu / max(delivered, 1),
        "sys_share": 100.0 * (k1 - k0) / max(1, u1 - u0 + k1 - k0),
        "srv_pct": 100.0 * cpu / wall_del,
        "cli_pct": 100.0 * client_cpu / wall_acc,
        "busy_pct": 100.0 * NCPU * (s1[0] - s0[0]) / tot,
        "iowait_pct": 100.0 * NCPU * (s1[1] - s0[1]) / tot,
        # the Maildir poller, i.e. this process
        "self_pct": 100.0 * (me1.ru_utime - me0.ru_utime + me1.ru_stime - me0.ru_stime)
        / (t_end + 0.3 - t0),
        "top": [[k, 100.0 * t / HZ / wall_del, single] for t, k, single in comp[:3] if t > 0],
        "stderr": (read(errpath) or "").strip().splitlines()[-3:],
        # smtp-sink, the relay runs' receiving end (0 for the local runs)
        "sink_pct": 100.0 * (sk1 - sk0) / HZ / (t_end + 0.3 - t0),
    }
    if relay and left == 0:
        # outbound SMTP sessions that smtp-sink saw, per message relayed: below 1
        # means the server sent several messages over one connection
        rec["out_sess"] = sess1 - sess0
        rec["out_sess_per_msg"] = (sess1 - sess0) / max(delivered, 1)
    # what neither the server, nor smtp-source, nor smtp-sink, nor the poller used: the
    # kernel's own threads (journal, writeback, softirq) and anything else running
    rec["other_pct"] = max(0.0, rec["busy_pct"] - rec["srv_pct"] - rec["cli_pct"]
                           - rec["sink_pct"] - rec["self_pct"])
    if d0 and d1:
        rec["writes_per_msg"] = (d1[0] - d0[0]) / max(delivered, 1)
        rec["flushes_per_msg"] = (d1[1] - d0[1]) / max(delivered, 1)
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print("  %-8s %3d %-8s %5d msgs, accepted %7.1f/s, %s %7.1f/s, "
          "CPU %.2f s/1000 msgs (%.0f%% of a core); machine %.0f%%/%d%%, other %.0f%%%s"
          % (a.label, a.sessions, sess(a.sessions) + ":", a.count, rec["acc_rate"],
             "relayed" if relay else "delivered", rec["del_rate"], rec["cpu_per_k"],
             rec["srv_pct"], rec["busy_pct"], 100 * NCPU, rec["other_pct"],
             "" if rec["ok"] else "  PROBLEM"))
    if not rec["ok"]:
        print("           smtp-source exit %s%s, %d of %d %s%s"
              % (rc, " (killed at the time limit)" if killed else "", delivered, a.count,
                 "reached smtp-sink" if relay else "delivered",
                 (": " + " | ".join(rec["stderr"])) if rec["stderr"] else ""))
    return 0


# ------------------------------------------------------------------ probes

def cmd_fsync(a):
    d = os.path.join(a.dir, "fsync-probe")
    for sub in ("tmp", "new"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    data = b"x" * 2048

    def probe(n, sync):
        times = []
        dfd = os.open(os.path.join(d, "new"), os.O_RDONLY | os.O_DIRECTORY)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        stop = time.monotonic() + 15
        for i in range(n):
            t = time.monotonic()
            p = os.path.join(d, "tmp", str(i))
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            if sync:
                os.fsync(fd)
            os.close(fd)
            os.rename(p, os.path.join(d, "new", str(i)))
            if sync:
                os.fsync(dfd)
            times.append(time.monotonic() - t)
            if time.monotonic() > stop:
                break
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        os.close(dfd)
        clear_dir(os.path.join(d, "new"))
        cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / len(times)
        times.sort()
        return times, cpu

    times, cpu = probe(a.n, True)
    _, cpu_nosync = probe(a.n, False)
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print("%.3f %.3f %.3f %.3f %d" % (1000 * statistics.median(times), 1000 * p90,
                                      1000 * cpu, 1000 * cpu_nosync, len(times)))
    return 0


def cmd_ceilings(a):
    """This machine's physical limits for a spool, each measured for a bounded time:
    durable appends/s (2 KiB write + fdatasync to one file) by 1 and by 8 threads, durable
    file creates/s (create, write, fsync, rename) by 1 and 8 threads, and the same with the
    directory fsync too. Prints "name value" lines."""
    import threading
    d = os.path.join(a.dir, "ceilings")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    data = b"x" * 2048

    def run(threads, seconds, fn):
        count = [0] * threads
        stop = time.monotonic() + seconds

        def worker(k):
            i = 0
            while time.monotonic() < stop and i < 200000:
                fn(k, i)
                i += 1
            count[k] = i
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(count) / (time.monotonic() - t0)

    def append_fn():
        fds = {}

        def fn(k, i):
            fd = fds.get(k)
            if fd is None:
                fd = fds[k] = os.open(os.path.join(d, "append-%d" % k),
                                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(fd, data)
            os.fdatasync(fd)
        return fn, fds

    def create_fn(dirsync):
        dfds = {}

        def fn(k, i):
            sub = os.path.join(d, "c%d" % k)
            if k not in dfds:
                os.makedirs(os.path.join(sub, "tmp"), exist_ok=True)
                os.makedirs(os.path.join(sub, "new"), exist_ok=True)
                dfds[k] = os.open(os.path.join(sub, "new"), os.O_RDONLY | os.O_DIRECTORY)
            p = os.path.join(sub, "tmp", str(i))
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(p, os.path.join(sub, "new", "%d.%d" % (i, dirsync)))
            if dirsync:
                os.fsync(dfds[k])
        return fn, dfds

    out = []
    for threads in (1, 8):
        fn, fds = append_fn()
        out.append(("append_%d" % threads, run(threads, a.seconds, fn)))
        for fd in fds.values():
            os.close(fd)
        for dirsync in (False, True):
            fn, dfds = create_fn(dirsync)
            out.append(("create%s_%d" % ("_dirsync" if dirsync else "", threads),
                        run(threads, a.seconds, fn)))
            for fd in dfds.values():
                os.close(fd)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    shutil.rmtree(d, ignore_errors=True)
    for name, v in out:
        print("%s %.0f" % (name, v))
    return 0


def cmd_listening(a):
    want = ":%04X" % a.port
    stop = time.monotonic() + min(a.timeout, 30)
    while True:
        for line in (read("/proc/net/tcp") or "").splitlines()[1:]:
            f = line.split()
            # local address 0100007F:PORT (127.0.0.1) or 00000000:PORT, state 0A = LISTEN
            if len(f) > 3 and f[1].endswith(want) and f[3] == "0A":
                return 0
        if time.monotonic() > stop:
            return 1
        time.sleep(0.05)


def cmd_record(a):
    rec = {"kind": "fact"}
    for k, v in zip(a.kv[0::2], a.kv[1::2]):
        try:
            rec[k] = float(v)
        except ValueError:
            rec[k] = v
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return 0


# ------------------------------------------------------------------ summary

def diagnose(r, facts):
    """A one-line reading of what bounds a run, from what was measured."""
    txt = diagnose1(r, facts)
    if r["other_pct"] >= 25 and not txt.startswith("starved"):
        txt += ("; NOTE %.0f%% of the machine went to neither server nor client (kernel "
                "threads or other load)" % r["other_pct"])
    return txt


def diagnose1(r, facts):
    cap = 100.0 * NCPU
    relay = r.get("mode") == "relay"
    # the load generators: smtp-source, and for the relay runs smtp-sink too
    gen = "smtp-source %.0f%%" % r["cli_pct"]
    if relay:
        gen += ", smtp-sink %.0f%%" % r.get("sink_pct", 0)
    kernel = ""
    if r["sys_share"] >= 60:
        kernel = ("; %.0f%% of the server's CPU is kernel time (file create/fsync/rename/"
                  "unlink, sockets)" % r["sys_share"])
    fl = ""
    if "flushes_per_msg" in r:
        fl = ", %.2f disk flushes/msg" % r["flushes_per_msg"]
    if r["top"] and r["top"][0][1] >= 85 and r["top"][0][2]:
        return ("one thread saturated: %s at %.0f%% of a core (server %.0f%%, machine "
                "%.0f%% of %.0f%%)" % (r["top"][0][0], r["top"][0][1], r["srv_pct"],
                                       r["busy_pct"], cap))
    if r["busy_pct"] >= 0.85 * cap and r["other_pct"] >= 0.5 * r["busy_pct"]:
        return ("starved: the cores were busy (%.0f%% of %.0f%%) mostly with other work "
                "(%.0f%%; server %.0f%%, %s), so this figure says little"
                % (r["busy_pct"], cap, r["other_pct"], r["srv_pct"], gen))
    if r["busy_pct"] >= 0.85 * cap:
        return ("CPU-bound: both cores busy (%.0f%% of %.0f%%: server %.0f%%, %s)%s"
                % (r["busy_pct"], cap, r["srv_pct"], gen, kernel))
    if r["sessions"] == 1:
        ms = 1000.0 * r["wall_acc"] / max(r["count"], 1)
        txt = ("latency-bound: one message at a time, %.2f ms per message round trip"
               % ms)
        f = facts.get("fsync_ms")
        if f:
            txt += " (= %.1f durable 2 KiB writes on this disk at %.2f ms)" % (ms / f, f)
        return txt + "; server CPU %.0f%%%s" % (r["srv_pct"], fl)
    lag = ""
    if r["wall_del"] > 1.2 * r["wall_acc"]:
        lag = "; %s lags acceptance by %.1f s" % ("relaying" if relay else "delivery",
                                                 r["wall_del"] - r["wall_acc"])
    if r["busy_pct"] >= 0.7 * cap:
        return ("nearly CPU-bound: machine %.0f%% of %.0f%% (server %.0f%%, %s)%s%s%s"
                % (r["busy_pct"], cap, r["srv_pct"], gen, kernel, fl, lag))
    return ("not CPU-bound (machine %.0f%% of %.0f%%, server %.0f%%, iowait %.0f%%): waiting "
            "on fsync/disk or internal hand-offs%s%s" % (r["busy_pct"], cap, r["srv_pct"],
                                                        r["iowait_pct"], fl, lag))


def sess(n):
    return "session" if n == 1 else "sessions"


def fmt(v, spec):
    return "-" if v is None else spec % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    q = a / b
    return "%.2f" % q if q >= 0.1 else "%.2g" % q


def cmd_summary(a):
    runs, facts = [], {}
    for line in open(a.results):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("kind") == "run":
            runs.append(rec)
        elif rec.get("kind") == "fact":
            facts.update({k: v for k, v in rec.items() if k != "kind"})
    servers = [s for s in ("postel", "postfix") if any(r["server"] == s for r in runs)]
    local = [r for r in runs if r.get("mode", "local") == "local"]
    relays = [r for r in runs if r.get("mode") == "relay"]
    med = {}
    for srv in servers:
        for s in SESSIONS:
            rs = sorted((r for r in local if r["server"] == srv and r["sessions"] == s),
                        key=lambda r: r["del_rate"])
            if rs:
                med[srv, s] = (rs[(len(rs) - 1) // 2], rs)
    rmed = {}           # the relay runs: one session count (20), by relayed rate
    for srv in servers:
        rs = sorted((r for r in relays if r["server"] == srv), key=lambda r: r["del_rate"])
        if rs:
            rmed[srv] = (rs[(len(rs) - 1) // 2], rs)

    for srv in servers:
        print()
        print("== %s: the median run of each (by delivered rate) ==" % srv)
        for s in SESSIONS:
            if (srv, s) not in med:
                continue
            r, rs = med[srv, s]
            rng = ""
            if len(rs) > 1:
                rng = " [%d runs: %.0f-%.0f/s]" % (len(rs), rs[0]["del_rate"],
                                                   rs[-1]["del_rate"])
            print("  %3d %s, %d msgs: accepted %.1f/s (%.2f s), delivered %.1f/s (%.2f s)%s"
                  % (s, sess(s), r["count"], r["acc_rate"], r["wall_acc"], r["del_rate"],
                     r["wall_del"], rng))
            print("      server CPU %.2f s = %.3f s/1000 msgs (%.0f%% kernel), %.0f%% of a "
                  "core; smtp-source %.0f%%; machine %.0f%%/%d%% (other %.0f%%), iowait %.0f%%"
                  % (r["cpu"], r["cpu_per_k"], r["sys_share"], r["srv_pct"], r["cli_pct"],
                     r["busy_pct"], 100 * NCPU, r["other_pct"], r["iowait_pct"]))
            if r["top"]:
                print("      busiest: " + ", ".join("%s %.0f%%" % (t[0], t[1]) for t in r["top"]))
            if "flushes_per_msg" in r:
                print("      disk: %.2f flushes, %.2f writes per message"
                      % (r["flushes_per_msg"], r["writes_per_msg"]))
            if not r["ok"]:
                print("      PROBLEM: %d of %d delivered, smtp-source exit %s"
                      % (r["delivered"], r["count"], r["rc"]))

    if rmed:
        print()
        print("== relayed through the server to smtp-sink: the median run of each (by "
              "relayed rate) ==")
    for srv in servers:
        if srv not in rmed:
            continue
        r, rs = rmed[srv]
        rng = ""
        if len(rs) > 1:
            rng = " [%d runs: %.0f-%.0f/s]" % (len(rs), rs[0]["del_rate"], rs[-1]["del_rate"])
        print("  %-7s %d %s, %d msgs: accepted %.1f/s (%.2f s), relayed %.1f/s (%.2f s)%s"
              % (srv, r["sessions"], sess(r["sessions"]), r["count"], r["acc_rate"],
                 r["wall_acc"], r["del_rate"], r["wall_del"], rng))
        print("      server CPU %.2f s = %.3f s/1000 msgs (%.0f%% kernel), %.0f%% of a core; "
              "smtp-source %.0f%%, smtp-sink %.0f%%; machine %.0f%%/%d%% (other %.0f%%), "
              "iowait %.0f%%" % (r["cpu"], r["cpu_per_k"], r["sys_share"], r["srv_pct"],
                                 r["cli_pct"], r.get("sink_pct", 0), r["busy_pct"], 100 * NCPU,
                                 r["other_pct"], r["iowait_pct"]))
        if r["top"]:
            print("      busiest: " + ", ".join("%s %.0f%%" % (t[0], t[1]) for t in r["top"]))
        extra = []
        if "out_sess_per_msg" in r:
            extra.append("%d outbound SMTP sessions to smtp-sink (%.3f per message)"
                         % (r.get("out_sess", 0), r["out_sess_per_msg"]))
        if "flushes_per_msg" in r:
            extra.append("disk %.2f flushes, %.2f writes per message"
                         % (r["flushes_per_msg"], r["writes_per_msg"]))
        if extra:
            print("      " + "; ".join(extra))
        if not r["ok"]:
            print("      PROBLEM: %d of %d reached smtp-sink, smtp-source exit %s"
                  % (r["delivered"], r["count"], r["rc"]))

    def m(srv, s, key):
        return med[srv, s][0][key] if (srv, s) in med else None

    def rm(srv, key):
        return rmed[srv][0][key] if srv in rmed else None
    rsess = next(iter(rmed.values()))[0]["sessions"] if rmed else 20

    print()
    print("== summary: postel vs Postfix (ratio = postel/postfix) ==")
    print("  %-36s %10s %10s %9s" % ("", "postel", "postfix", "ratio"))

    def row(label, x, y, spec, note=""):
        print("  %-36s %10s %10s %9s  %s" % (label, fmt(x, spec), fmt(y, spec), ratio(x, y),
                                             note))
    for s in SESSIONS:
        row("accepted msg/s, %d %s" % (s, sess(s)), m("postel", s, "acc_rate"),
            m("postfix", s, "acc_rate"), "%.1f")
    for s in SESSIONS:
        row("delivered msg/s, %d %s" % (s, sess(s)), m("postel", s, "del_rate"),
            m("postfix", s, "del_rate"), "%.1f", "(>1: postel faster)" if s == 20 else "")
    for s in SESSIONS:
        row("CPU s per 1000 msgs, %d %s" % (s, sess(s)), m("postel", s, "cpu_per_k"),
            m("postfix", s, "cpu_per_k"), "%.3f", "(<1: postel cheaper)" if s == 20 else "")
    if rmed:
        row("relayed msg/s, %d %s" % (rsess, sess(rsess)), rm("postel", "del_rate"),
            rm("postfix", "del_rate"), "%.1f", "(to smtp-sink; >1: postel faster)")
        row("CPU s per 1000 relayed msgs", rm("postel", "cpu_per_k"),
            rm("postfix", "cpu_per_k"), "%.3f", "(%d sessions; <1: postel cheaper)" % rsess)
    row("KiB per idle connection, RSS", facts.get("postel_idle_rss"),
        facts.get("postfix_idle_rss"), "%.2f", "(<1: postel smaller)")
    row("KiB per idle connection, PSS", facts.get("postel_idle_rss"),
        facts.get("postfix_idle_pss"), "%.2f", "(Postfix's shared pages split)")
    if "many_greeted" in facts:
        print("  %d idle connections to one posteld: %d got a 220, RSS %.1f MiB (%.2f KiB each)"
              % (facts["many"], facts["many_greeted"], facts["many_rss"] / 1024,
                 facts["many_per"]))
    print()
    print("  headline: postel/postfix delivered rate at 20 sessions %s; CPU per message %s;"
          " memory per idle connection %s (RSS), %s (PSS)"
          % (ratio(m("postel", 20, "del_rate"), m("postfix", 20, "del_rate")),
             ratio(m("postel", 20, "cpu_per_k"), m("postfix", 20, "cpu_per_k")),
             ratio(facts.get("postel_idle_rss"), facts.get("postfix_idle_rss")),
             ratio(facts.get("postel_idle_rss"), facts.get("postfix_idle_pss"))))
    if rmed:
        print("            relayed rate at %d sessions %s; CPU per relayed message %s"
              % (rsess, ratio(rm("postel", "del_rate"), rm("postfix", "del_rate")),
                 ratio(rm("postel", "cpu_per_k"), rm("postfix", "cpu_per_k"))))
    if "ceil_create_dirsync_8" in facts:
        print()
        print("  this machine's ceilings (durable 2 KiB operations per second, 1 / 8 threads):")
        print("    appends + fdatasync %.0f / %.0f; file creates + fsync %.0f / %.0f; with the "
              "directory fsync too %.0f / %.0f"
              % (facts["ceil_append_1"], facts["ceil_append_8"], facts["ceil_create_1"],
                 facts["ceil_create_8"], facts["ceil_create_dirsync_1"],
                 facts["ceil_create_dirsync_8"]))
        if "ceil_sink" in facts:
            print("    no-disk SMTP sink (smtp-source -> smtp-sink, 20 sessions): %.0f msg/s"
                  % facts["ceil_sink"])
        for s in (20, 100):
            d = m("postel", s, "del_rate")
            if d:
                print("    postel delivered at %d sessions: %.0f msg/s = %.2f x durable creates "
                      "(8 threads), %.2f x durable appends (8 threads)%s"
                      % (s, d, d / max(1, facts["ceil_create_8"]),
                         d / max(1, facts["ceil_append_8"]),
                         ", %.2f x the no-disk sink" % (d / facts["ceil_sink"])
                         if facts.get("ceil_sink") else ""))
    noisy = [r for r in runs if r["other_pct"] >= 25]
    if facts.get("bg_busy", 0) >= 20 or noisy:
        print()
        print("  WARNING: other work shared the machine (%.0f%% busy before the runs; %d of %d "
              "runs with 'other' >= 25%%):" % (facts.get("bg_busy", 0), len(noisy), len(runs)))
        print("  the rates are lower and noisier than on a quiet machine; the ratios, from "
              "alternating runs, hold up better")
    print()
    print("  what limits the rate (median runs):")
    for srv in servers:
        for s in SESSIONS:
            if (srv, s) in med:
                print("    %-7s %3d %-8s %s"
                      % (srv, s, sess(s) + ":", diagnose(med[srv, s][0], facts)))
    for srv in servers:
        if srv in rmed:
            r = rmed[srv][0]
            txt = diagnose(r, facts)
            lag = r["wall_del"] - r["wall_acc"]
            if lag <= 0.05 * r["wall_acc"]:
                txt += ("; relayed as fast as accepted, so the inbound side (accept, fsync, "
                        "250) sets the rate")
            elif "lags acceptance" not in txt:
                txt += ("; the last message reached smtp-sink %.2f s after the last 250"
                        % lag)
            if "out_sess_per_msg" in r:
                txt += "; %.3f outbound sessions/msg" % r["out_sess_per_msg"]
            print("    %-7s relay, %d %s: %s" % (srv, r["sessions"], sess(r["sessions"]), txt))
    if "fsync_cpu_ms" in facts:
        print("    (this machine: a 2 KiB create+write+rename costs %.2f ms of CPU without "
              "fsync, %.2f ms with fsync of file and directory)"
              % (facts["nosync_cpu_ms"], facts["fsync_cpu_ms"]))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--to", required=True)
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--maildir", help="count the files in this Maildir new/")
    where.add_argument("--sink-out", help="count what smtp-sink -c reports in this file")
    r.add_argument("--sink-pid", type=int, default=0, help="smtp-sink, for its CPU")
    r.add_argument("--sink-port", type=int, default=0,
                   help="smtp-sink's port, to count the outbound sessions per message")
    r.add_argument("--from", dest="sender", default="bench@bench.test")
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--sessions", type=int, required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--label", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--size", type=int, default=2048)
    r.add_argument("--timeout", type=float, default=60)
    r.add_argument("--clear", action="store_true", help="empty the Maildir first")
    r.add_argument("--reuse", action="store_true", help="smtp-source -d: many msgs/session")
    f = sub.add_parser("fsync")
    f.add_argument("dir")
    f.add_argument("--n", type=int, default=200)
    ce = sub.add_parser("ceilings")
    ce.add_argument("dir")
    ce.add_argument("--seconds", type=float, default=2.0)
    mm = sub.add_parser("mem")
    mm.add_argument("--pid", type=int, required=True)
    rc = sub.add_parser("record")
    rc.add_argument("results")
    rc.add_argument("kv", nargs="+")
    bg = sub.add_parser("busy")
    bg.add_argument("--seconds", type=float, default=1.0)
    ls = sub.add_parser("listening")
    ls.add_argument("port", type=int)
    ls.add_argument("--timeout", type=float, default=5)
    sm = sub.add_parser("summary")
    sm.add_argument("results")
    a = ap.parse_args()
    if a.cmd == "run":
        return cmd_run(a)
    if a.cmd == "fsync":
        return cmd_fsync(a)
    if a.cmd == "ceilings":
        return cmd_ceilings(a)
    if a.cmd == "mem":
        print("%d %d %d" % mem_kib(a.pid))
        return 0
    if a.cmd == "busy":
        s0 = sys_cpu()
        time.sleep(min(a.seconds, 10))
        s1 = sys_cpu()
        print("%.0f" % (100.0 * NCPU * (s1[0] - s0[0]) / max(1, s1[2] - s0[2])))
        return 0
    if a.cmd == "record":
        return cmd_record(a)
    if a.cmd == "listening":
        return cmd_listening(a)
    if a.cmd == "summary":
        return cmd_summary(a)
    return 2


if __name__ == "__main__":
    sys.exit(main())
