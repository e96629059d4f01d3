"""The remote duplicate window: from the next hop's final 250 to the queue update.

A posteld relays N messages over STARTTLS to a second posteld on 127.0.0.2 while strace
records the sender's reads and unlinks. For each message the window is the time from the last
TLS record read before the queue file's unlink (the receiver's 250 for the content) to the
end of that unlink: a crash of the process inside it sends the message again at restart.
(A power loss can also undo an unlink that the file system has not committed yet, which
stretches the window to the file system's commit interval, 5 s on ext4 by default.)

Usage: crash_window.py POSTEL_BUILD_DIR WORK_DIR [N]. Prints one line. strace slows the
daemon, so the figures are upper bounds. Everything runs on 127.0.0.1/127.0.0.2.
"""
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def ts(s):
    h, m, x = s.split(":")
    return int(h) * 3600 + int(m) * 60 + float(x)


def windows(trace):
    last_tls, pending, out = None, {}, []
    for line in open(trace, errors="replace"):
        p = line.split(None, 2)
        if len(p) < 3:
            continue
        pid, t, rest = p
        if re.match(r'readv\(\d+, \[\{iov_base="\\27', rest):
            last_tls = ts(t)            # a TLS record: only the outbound session has TLS
        elif re.match(r'unlink\("[^"]+/queue/[0-9A-F]{16}"', rest) and last_tls is not None:
            if rest.rstrip().endswith("= 0"):
                out.append(ts(t) - last_tls)
            else:
                pending[pid] = last_tls
        elif "<... unlink resumed>) = 0" in rest and pid in pending:
            out.append(ts(t) - pending.pop(pid))
    return sorted(out)


def main():
    build, work = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    os.environ["POSTEL_BUILD"] = os.path.abspath(build)
    from helpers import Postel, free_port, msg, wait_until
    if shutil.which("strace") is None:
        print("crash window: strace is missing (make deps installs it)")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "r"))
    os.makedirs(os.path.join(work, "s"))
    rport = free_port("127.0.0.2")
    r = Postel(os.path.join(work, "r"), extra=["listen = 127.0.0.2:%d" % rport], port=rport)
    s = Postel(os.path.join(work, "s"), hostname="sender.test",
               extra=["local_domains = sender.test", "relay_networks = 127.0.0.0/8",
                      "relayhost = [127.0.0.2]:%d" % rport, "connection_cache_time = 0"])
    st = None
    try:
        r.start()
        s.start()
        trace = os.path.join(work, "trace")
        st = subprocess.Popen(["strace", "-f", "-tt", "-e", "trace=readv,unlink", "-o", trace,
                               "-p", str(s.pid)], stderr=subprocess.DEVNULL)
        time.sleep(1.0)                 # strace attaches to every thread
        for i in range(n):
            rep = s.send("a@sender.test", ["alice@example.test"], msg("window-%d" % i))
            if rep.code != 250:
                print("crash window: message %d refused: %s" % (i, rep))
                return 1
        if not wait_until(lambda: not s.spool_files("queue"), 60):
            print("crash window: the queue did not drain")
            return 1
        time.sleep(0.3)
    finally:
        if st is not None:
            st.terminate()
            st.wait(10)
        s.stop()
        r.stop()
    w = windows(trace)
    if len(w) < n * 9 // 10:
        print("crash window: only %d of %d deliveries seen in the trace" % (len(w), n))
        return 1
    ms = [x * 1000 for x in w]
    print("crash window (remote 250 -> queue file removed, under strace): %d deliveries, "
          "median %.2f ms, p90 %.2f ms, max %.2f ms" % (len(ms), ms[len(ms) // 2],
                                                         ms[int(len(ms) * 0.9)], ms[-1]))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
