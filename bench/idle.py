#!/usr/bin/python3
"""bench/idle.py - open COUNT idle SMTP connections, read each 220 greeting, hold them.

  idle.py --port P --count N [--host 127.0.0.1] [--source 127.0.0.2]
          [--ready FILE] [--hold 120] [--connect-time 60] [--inflight 200]

Connects with at most --inflight connections waiting for their greeting at a time
(so the server's listen queue is not flooded), from --source if given (each source
address has its own ephemeral ports).  When every connection has its 220, or has
failed, or --connect-time has passed, it prints one line

  greeted=G failed=F pending=P seconds=S [reason=count ...]

and creates --ready FILE.  It then holds the connections, saying nothing, until
SIGTERM/SIGINT or --hold seconds, notes any the server closes, prints

  held=H dropped=D

and closes them all.  Python 3 standard library only.
"""
import argparse
import errno
import os
import resource
import selectors
import signal
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--source")
    ap.add_argument("--ready")
    ap.add_argument("--hold", type=float, default=120)
    ap.add_argument("--connect-time", type=float, default=60)
    ap.add_argument("--inflight", type=int, default=200)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    if soft < want:
        print("idle.py: open-file limit %d is too low for %d connections" % (soft, a.count),
              file=sys.stderr)
        a.count = max(0, soft - 64)

    sel = selectors.DefaultSelector()
    state = {}          # sock -> [phase, buffer]; phase: conn, greet, held
    reasons = {}
    greeted = failed = started = 0
    waiting = 0         # connecting or waiting for the greeting
    t0 = time.monotonic()
    deadline = t0 + a.connect_time

    def fail(sock, why):
        nonlocal failed, waiting
        reasons[why] = reasons.get(why, 0) + 1
        failed += 1
        waiting -= 1
        sel.unregister(sock)
        del state[sock]
        sock.close()

    while not stop and time.monotonic() < deadline:
        while started < a.count and waiting < a.inflight:
            s = socket.socket(socket.AF_INET6 if ":" in a.host else socket.AF_INET,
                              socket.SOCK_STREAM)
            s.setblocking(False)
            started += 1
            try:
                if a.source:
                    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    s.bind((a.source, 0))
                e = s.connect_ex((a.host, a.port))
            except OSError as ex:
                e = ex.errno
            if e not in (0, errno.EINPROGRESS):
                reasons["connect:" + errno.errorcode.get(e, str(e))] = \
                    reasons.get("connect:" + errno.errorcode.get(e, str(e)), 0) + 1
                failed += 1
                s.close()
                continue
            state[s] = ["conn", b""]
            waiting += 1
            sel.register(s, selectors.EVENT_WRITE)
        if waiting == 0 and started >= a.count:
            break
        for key, ev in sel.select(timeout=0.5):
            s = key.fileobj
            st = state[s]
            if st[0] == "conn":
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    fail(s, "connect:" + errno.errorcode.get(e, str(e)))
                    continue
                st[0] = "greet"
                sel.modify(s, selectors.EVENT_READ)
                continue
            if st[0] == "greet":
                try:
                    data = s.recv(1024)
                except OSError as ex:
                    fail(s, "recv:" + errno.errorcode.get(ex.errno, str(ex.errno)))
                    continue
                if not data:
                    fail(s, "closed before greeting")
                    continue
                st[1] += data
                while b"\n" in st[1]:
                    line, st[1] = st[1].split(b"\n", 1)
                    if line.startswith(b"220 "):
                        st[0] = "held"
                        greeted += 1
                        waiting -= 1
                        sel.unregister(s)       # watched again while holding
                        break
                    if not line.startswith(b"220-"):
                        fail(s, "reply:" + line[:3].decode("ascii", "replace"))
                        break
                continue
    pending = waiting
    secs = time.monotonic() - t0
    extra = "".join(" %s=%d" % (k.replace(" ", "_"), v) for k, v in sorted(reasons.items()))
    print("greeted=%d failed=%d pending=%d seconds=%.2f%s" % (greeted, failed, pending, secs,
                                                            extra), flush=True)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%d\n" % greeted)

    # Hold: watch the greeted connections only.
    for s, st in list(state.items()):
        if st[0] == "held":
            sel.register(s, selectors.EVENT_READ)
        else:
            sel.unregister(s)
            s.close()
            del state[s]
    dropped = 0
    hold_end = time.monotonic() + a.hold
    while not stop and time.monotonic() < hold_end and state:
        for key, ev in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(1024)
            except OSError:
                data = b""
            if not data:
                dropped += 1
                sel.unregister(s)
                del state[s]
                s.close()
    print("held=%d dropped=%d" % (len(state), dropped), flush=True)
    for s in state:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
