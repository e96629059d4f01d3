"""The world the sending-side tests (test_relay.py, test_interop.py) run posteld in.

Unbound     a private unbound on 127.0.0.1 (a free port) serving zones/test.zone, plus an
            always-REFUSED zone; the sending posteld resolves MX/A/AAAA through it
SmtpSink    a scripted SMTP server on 127.0.0.x (or ::1): it records every command line and
            the content of every transaction, and answers as the test says (4xx, 5xx,
            EHLO 500, no PIPELINING/8BITMIME/DSN, drops, stalls, junk); with tls= it
            does STARTTLS, and it answers AUTH
Mta         a posteld with a config written here: the sender (127.0.0.1, relays for
            loopback, resolves through Unbound) or a receiver on 127.0.0.x
Postfix     a private Postfix instance (own config and queue directories) for interop
fixtures    dns (one unbound per test module), mtas, sinks: the test modules load this file
            as a plugin (pytest_plugins = ("relayenv",)); smtp_port() picks a port per test

Every socket here is on the loopback range, every wait is bounded, and every process is
stopped by its own PID.
"""
import email
import email.policy
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from helpers import Client, Closed, Postel, free_port, queue_id, wait_until  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
ZONE_FILE = os.path.join(HERE, "zones", "test.zone")
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"

SENDER_HOSTNAME = "mta.test"

# Addresses of the mail hosts named in zones/test.zone.
IP = {
    "b": "127.0.0.2", "c": "127.0.0.3", "two1": "127.0.0.4", "two2": "127.0.0.5",
    "eqa": "127.0.0.6", "eqb": "127.0.0.7", "implicit": "127.0.0.8", "self1": "127.0.0.9",
    "self3": "127.0.0.10", "v6": "127.0.0.11", "pf": "127.0.0.12", "smarthost": "127.0.0.13",
    "pb": "127.0.0.14",
}


# ---------------------------------------------------------------------------------------------
# DNS


def dns_query(port, name, qtype=1, timeout=1.0):
    """One UDP query to 127.0.0.1:port; returns the rcode, or None on no answer."""
    q = struct.pack(">HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        d = s.recv(4096)
    except OSError:
        return None
    finally:
        s.close()
    if len(d) < 12 or d[:2] != q[:2]:
        return None
    return struct.unpack(">H", d[2:4])[0] & 0xF


def _free_udp_tcp_port():
    """A port free for both UDP and TCP on 127.0.0.1 (a moment ago)."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free UDP+TCP port")


class Unbound:
    """A private unbound: auth-zone test. from zones/test.zone, no upstream at all."""

    def __init__(self, base_dir):
        self.base = base_dir
        self.proc = None
        self.port = None
        self.logfile = os.path.join(base_dir, "unbound.log")

    def _write_conf(self):
        conf = os.path.join(self.base, "unbound.conf")
        # The zone is used by the iterator (for-upstream), so CNAMEs are followed across
        # names and a delegation to a server it may not query (127.0.0.1, the default
        # do-not-query-localhost) answers SERVFAIL at once.
        text = """server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{base}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    rrset-roundrobin: no
    local-zone: "test." nodefault
    local-zone: "refused.test." always_refuse
auth-zone:
    name: "test."
    zonefile: "{zone}"
    for-upstream: yes
    for-downstream: no
    fallback-enabled: no
remote-control:
    control-enable: no
""".format(port=self.port, base=self.base, zone=ZONE_FILE)
        with open(conf, "w") as f:
            f.write(text)
        return conf

    def start(self):
        last = ""
        for _ in range(5):
            self.port = _free_udp_tcp_port()
            conf = self._write_conf()
            logf = open(self.logfile, "ab")
            try:
                self.proc = subprocess.Popen([UNBOUND, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                             stdout=logf, stderr=logf, cwd=self.base)
            finally:
                logf.close()
            ok = wait_until(lambda: self.proc.poll() is not None or
                            dns_query(self.port, "ns.test", timeout=0.3) == 0, 10.0, 0.05)
            if self.proc.poll() is None and ok:
                return self
            last = self.log[-2000:]
            self.stop()
        raise RuntimeError("unbound did not start:\n%s" % last)

    @property
    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def servers(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# ---------------------------------------------------------------------------------------------
# A scripted SMTP server

DEFAULT_EXT = ("PIPELINING", "SIZE 10485760", "8BITMIME", "DSN", "SMTPUTF8",
               "ENHANCEDSTATUSCODES")
DROP = object()         # as a reply: close the connection without answering
MAX_DATA = 32 * 1024 * 1024


def ext_without(*names):
    """DEFAULT_EXT without the named extensions."""
    drop = {n.upper() for n in names}
    return tuple(e for e in DEFAULT_EXT if e.split()[0].upper() not in drop)


def seq(*replies):
    """A reply function giving these replies in turn, then the last one again."""
    state = {"n": 0}
    lock = threading.Lock()

    def f(*_a):
        with lock:
            i = min(state["n"], len(replies) - 1)
            state["n"] += 1
        return replies[i]
    return f


def max_open(*sinks):
    """The most connections the sinks had open at once."""
    ev = []
    for s in sinks:
        for c in list(s.conns):
            ev.append((c.opened, 1))
            ev.append((c.closed if c.closed is not None else float("inf"), -1))
    n = best = 0
    for _, d in sorted(ev, key=lambda e: (e[0], e[1])):
        n += d
        best = max(best, n)
    return best


def angle_addr(arg):
    m = re.match(r"(?i)\s*(?:FROM|TO):\s*<([^>]*)>", arg)
    return m.group(1) if m else None


class Txn:
    """One MAIL transaction as the sink saw it."""

    def __init__(self, mail_line, mail_reply):
        self.mail = mail_line              # the whole MAIL command line
        self.mail_reply = mail_reply
        self.sender = angle_addr(mail_line[4:])
        self.rcpt_lines = []               # every RCPT command line
        self.rcpts = []                    # accepted recipient addresses
        self.data = None                   # content after dot-unstuffing (CRLF lines)
        self.reply = None                  # final reply to the content

    @property
    def accepted(self):
        return self.reply is not None and self.reply[:1] == "2"

    def message(self):
        return email.message_from_bytes(self.data, policy=email.policy.compat32)

    def __repr__(self):
        return "Txn(%r, rcpts=%r, reply=%r, %s octets)" % (
            self.mail, self.rcpts, self.reply, None if self.data is None else len(self.data))


class SinkConn:
    """One connection to the sink."""

    def __init__(self, peer):
        self.peer = peer
        self.opened = time.monotonic()
        self.closed = None
        self.lines = []        # every command line received, in order
        self.early = []        # command lines the client followed up before our reply
        self.txns = []
        self.quit = False
        self.peer_closed = False
        self.tls_from = None   # index in lines of the first command inside TLS
        self.auth_lines = []   # AUTH commands and the responses to their 334s

    def verbs(self):
        return [ln.split(" ", 1)[0].upper() for ln in self.lines]

    def wait_closed(self, timeout=15.0):
        """Wait until the connection is over (QUIT, or closed by either side)."""
        return wait_until(lambda: self.closed is not None, timeout, 0.02)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or len(self.buf) > 1 << 20:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, OSError):
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def pending(self):
        """Is more input already here?"""
        if self.buf:
            return True
        if isinstance(self.sock, ssl.SSLSocket):
            return self.sock.pending() > 0
        try:
            self.sock.settimeout(0.0)
            chunk = self.sock.recv(65536, socket.MSG_PEEK)
            return bool(chunk)
        except (socket.timeout, BlockingIOError, OSError):
            return False


class SmtpSink:
    """A scripted SMTP server on (host, port).

    Each reply below is a string (its lines separated by "\\n"; CRLF is added), raw bytes
    sent as they are, DROP, or a function returning one of those (None: the default):
      greeting(conn)   ehlo(conn, line)   helo(conn, line)   mail(conn, txn)
      rcpt(conn, txn, addr, line)   data(conn, txn)   dot(conn, txn)   auth(conn, line)
    ext: the EHLO keywords offered. delay: seconds to wait before every reply. hold: wait
    for release() before answering the end of data (held is set while waiting).
    tls: (certfile, keyfile): STARTTLS is offered and answered with a real handshake.
    AUTH (offer it in ext) is answered 235 by default; "AUTH LOGIN" or "AUTH PLAIN" without
    an initial response gets 334 until its responses are in.
    """

    def __init__(self, host, port, name="sink.test", ext=DEFAULT_EXT, greeting=None,
                 ehlo=None, helo=None, mail=None, rcpt=None, data=None, dot=None, delay=0.0,
                 hold=False, tls=None, auth=None):
        self.host, self.port, self.name, self.ext = host, port, name, tuple(ext)
        self.tls_ctx = None
        if tls is not None:
            self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_ctx.load_cert_chain(*tls)
            if not any(e.upper() == "STARTTLS" for e in self.ext):
                self.ext += ("STARTTLS",)
        self.auth = auth
        self.greeting, self.ehlo, self.helo = greeting, ehlo, helo
        self.mail, self.rcpt, self.data, self.dot = mail, rcpt, data, dot
        self.delay = delay
        self.hold = hold
        self.held = threading.Event()
        self._release = threading.Event()
        self.conns = []
        self.lock = threading.Lock()
        self._socks = []
        self._threads = []
        self._stopping = False
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lsock = socket.socket(fam, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(64)
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)

    # ---- results
    def txns(self):
        with self.lock:
            return [t for c in self.conns for t in c.txns]

    def accepted(self):
        return [t for t in self.txns() if t.accepted]

    def wait_accepted(self, n=1, timeout=15.0):
        wait_until(lambda: len(self.accepted()) >= n, timeout, 0.02)
        return self.accepted()

    def wait_conns(self, n=1, timeout=15.0):
        wait_until(lambda: len(self.conns) >= n, timeout, 0.02)
        return list(self.conns)

    def release(self):
        self._release.set()

    # ---- server
    def _accept_loop(self):
        self.lsock.settimeout(0.1)      # closing a socket does not wake accept(): poll
        while not self._stopping:
            try:
                s, peer = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.settimeout(None)
            with self.lock:
                if self._stopping:
                    s.close()
                    return
                self._socks.append(s)
            t = threading.Thread(target=self._serve, args=(s, peer), daemon=True)
            t.start()
            self._threads.append(t)

    def _pick(self, spec, *args):
        if callable(spec):
            spec = spec(*args)
        return spec

    def _send(self, sock, r):
        if isinstance(r, str):
            r = "".join(ln + "\r\n" for ln in r.split("\n")).encode("utf-8")
        sock.sendall(r)

    def _reply(self, sock, r, default):
        """Send r (or default); False if the connection is to be dropped."""
        if r is None:
            r = default
        if r is DROP:
            return False
        if self.delay:
            time.sleep(self.delay)
        self._send(sock, r)
        return True

    @staticmethod
    def _text(r, default):
        if r is None:
            r = default
        if isinstance(r, bytes):
            return r.decode("utf-8", "replace")
        return "" if r is DROP else r

    def _read_data(self, rd):
        lines = []
        size = 0
        while True:
            ln = rd.readline(60)
            if ln is None:
                return None
            if ln == b".\r\n":
                return b"".join(lines)
            if ln.startswith(b"."):
                ln = ln[1:]
            size += len(ln)
            if size > MAX_DATA:
                return None
            lines.append(ln)

    def _serve(self, sock, peer):
        c = SinkConn(peer)
        with self.lock:
            self.conns.append(c)
        rd = _Reader(sock)
        auth_due = 0        # responses still due after a 334
        try:
            if not self._reply(sock, self._pick(self.greeting, c),
                               "220 %s ESMTP sink" % self.name):
                return
            txn = None
            while not self._stopping:
                raw = rd.readline(60)
                if raw is None:
                    c.peer_closed = True
                    return
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                c.lines.append(line)
                if rd.pending():
                    c.early.append(line)
                verb = line.split(" ", 1)[0].upper()
                if auth_due:
                    # a response to our 334
                    c.auth_lines.append(line)
                    auth_due -= 1
                    r, dflt = ((None, "334 UGFzc3dvcmQ6") if auth_due else
                               (self._pick(self.auth, c, line), "235 2.7.0 Authenticated"))
                    if not self._reply(sock, r, dflt):
                        return
                    continue
                if verb == "STARTTLS" and self.tls_ctx is not None and c.tls_from is None:
                    if not self._reply(sock, None, "220 2.0.0 Ready to start TLS"):
                        return
                    sock.settimeout(30)
                    sock = self.tls_ctx.wrap_socket(sock, server_side=True)
                    with self.lock:
                        self._socks.append(sock)
                    rd = _Reader(sock)
                    c.tls_from = len(c.lines)
                    txn = None
                    continue
                if verb == "AUTH":
                    c.auth_lines.append(line)
                    words = line.split()
                    mech = words[1].upper() if len(words) > 1 else ""
                    if mech == "LOGIN":
                        auth_due = 2 if len(words) == 2 else 1
                    elif mech == "PLAIN" and len(words) == 2:
                        auth_due = 1
                    if auth_due:
                        r, dflt = None, "334 " if mech == "PLAIN" else "334 VXNlcm5hbWU6"
                    else:
                        r, dflt = self._pick(self.auth, c, line), "235 2.7.0 Authenticated"
                elif verb == "EHLO":
                    ext = "\n".join("250-" + e for e in self.ext)
                    dflt = "250-%s\n%s\n250 HELP" % (self.name, ext) if self.ext else \
                        "250 %s" % self.name
                    r = self._pick(self.ehlo, c, line)
                    txn = None
                elif verb == "HELO":
                    r, dflt = self._pick(self.helo, c, line), "250 %s" % self.name
                    txn = None
                elif verb == "MAIL":
                    if txn is not None:
                        r, dflt = None, "503 5.5.1 Error: nested MAIL command"
                    else:
                        t = Txn(line, None)
                        r, dflt = self._pick(self.mail, c, t), "250 2.1.0 Ok"
                        t.mail_reply = self._text(r, dflt)
                        with self.lock:
                            c.txns.append(t)
                        txn = t if t.mail_reply[:1] == "2" else None
                elif verb == "RCPT":
                    if txn is None:
                        r, dflt = None, "503 5.5.1 Error: need MAIL command"
                    else:
                        addr = angle_addr(line[4:])
                        txn.rcpt_lines.append(line)
                        r, dflt = self._pick(self.rcpt, c, txn, addr, line), "250 2.1.5 Ok"
                        if self._text(r, dflt)[:1] == "2":
                            txn.rcpts.append(addr)
                elif verb == "DATA":
                    if txn is None or not txn.rcpts:
                        r, dflt = None, "554 5.5.1 Error: no valid recipients"
                    else:
                        r, dflt = (self._pick(self.data, c, txn),
                                   "354 End data with <CR><LF>.<CR><LF>")
                        if self._text(r, dflt)[:3] == "354":
                            if not self._reply(sock, r, dflt):
                                return
                            data = self._read_data(rd)
                            if data is None:
                                c.peer_closed = True
                                return
                            txn.data = data
                            if self.hold:
                                self.held.set()
                                self._release.wait(60)
                            r, dflt = self._pick(self.dot, c, txn), "250 2.0.0 Ok: queued"
                            txn.reply = self._text(r, dflt)
                            txn = None
                elif verb == "RSET":
                    r, dflt, txn = None, "250 2.0.0 Ok", None
                elif verb == "NOOP":
                    r, dflt = None, "250 2.0.0 Ok"
                elif verb == "QUIT":
                    c.quit = True
                    self._reply(sock, None, "221 2.0.0 Bye")
                    return
                else:
                    r, dflt = None, "502 5.5.2 Error: command not recognized"
                if not self._reply(sock, r, dflt):
                    return
        except OSError:
            c.peer_closed = True
        finally:
            c.closed = time.monotonic()
            try:
                sock.close()
            except OSError:
                pass

    def stop(self):
        self._stopping = True
        self._release.set()
        self._threads[0].join(5)
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)


# ---------------------------------------------------------------------------------------------
# posteld instances


class Mta(Postel):
    """A posteld whose whole config is written here (helpers.Postel runs it)."""

    def __init__(self, base_dir, host="127.0.0.1", port=None, hostname=SENDER_HOSTNAME,
                 domains=("a.test",), users=("alice", "bob"), aliases=("postmaster: alice",),
                 relay="127.0.0.0/8", dns=None, smtp_port=None, extra=()):
        port = port or free_port(host)
        super().__init__(base_dir, port=port, hostname=hostname, users=list(users))
        self.host = host
        lines = [
            "# written by tests/integration/relayenv.py",
            "hostname = %s" % hostname,
            "listen = %s:%d" % (host, port),
            "spool_dir = %s" % self.spool,
            "mail_dir = %s" % self.mail,
            "local_domains = %s" % " ".join(domains),
            "local_users = %s" % " ".join(users),
            "relay_networks = %s" % relay,
            "workers = 2",
            "retry_min = 2s",
            "retry_max = 4s",
            "connect_timeout = 5s",
        ]
        lines += ["alias %s" % a for a in aliases]
        if dns is not None:
            lines.append("dns_servers = %s" % dns.servers)
        if smtp_port is not None:
            lines.append("smtp_port = %d" % smtp_port)
        lines += list(extra)
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def queue(self):
        """Queue files (messages not yet done)."""
        return [n for n in self.spool_files("queue") if not n.endswith(".st")]

    def wait_log(self, pattern, timeout=15.0):
        return super().wait_log(pattern, timeout)

    def count_log(self, pattern):
        return len(re.findall(pattern, self.log))

    def wait_removed(self, qid, timeout=15.0):
        return self.wait_log(r"%s removed" % qid, timeout)


def smtp_port(hosts=("127.0.0.1",)):
    """A TCP port free on every address in hosts (for the sinks of one test)."""
    for _ in range(50):
        p = free_port("127.0.0.1")
        ok = True
        for h in hosts:
            fam = socket.AF_INET6 if ":" in h else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.bind((h, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise RuntimeError("no port free on %s" % (hosts,))


# ---------------------------------------------------------------------------------------------
# Talking to the sender


def make_msg(subject, body="hello\r\n", frm="alice@a.test", to="x@b.test", headers=()):
    """A small message, CRLF line ends, no terminating dot. body: str or bytes."""
    head = ["From: <%s>" % frm, "To: <%s>" % to, "Subject: %s" % subject,
            "Message-ID: <%s@a.test>" % re.sub(r"[^A-Za-z0-9.-]", "-", subject)]
    head += list(headers)
    hb = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8")
    if isinstance(body, str):
        body = body.encode("utf-8")
    return hb + body


def inject(mta, sender, rcpts, content, mail_params="", rcpt_params=None, ehlo=True):
    """Submit one message to mta over SMTP; returns its queue id. rcpt_params: a string for
    every recipient, or a dict addr -> string."""
    with Client(mta.host, mta.port) as c:
        if ehlo:
            c.ehlo()
        else:
            c.helo()
        c.expect(("MAIL FROM:<%s> %s" % (sender, mail_params)).rstrip(), 250)
        for r in rcpts:
            p = rcpt_params.get(r, "") if isinstance(rcpt_params, dict) else (rcpt_params or "")
            c.expect(("RCPT TO:<%s> %s" % (r, p)).rstrip(), 250)
        c.expect("DATA", 354)
        if isinstance(content, str):
            content = content.encode("utf-8")
        if not content.endswith(b"\r\n"):
            content += b"\r\n"
        # dot-stuff
        content = re.sub(rb"(?m)^\.", b"..", content)
        c.send(content + b".\r\n")
        r = c.reply()
        assert r.code == 250, "message refused: %s" % r
        try:
            c.cmd("QUIT")
        except (Closed, OSError):
            pass
        return queue_id(r)


# ---------------------------------------------------------------------------------------------
# Reading delivery reports


class Report:
    """An RFC 3464 report as delivered into a Maildir (a helpers.Mail)."""

    def __init__(self, mail):
        self.mail = mail
        self.msg = email.message_from_bytes(mail.raw, policy=email.policy.compat32)
        m = self.msg
        assert m.get_content_type() == "multipart/report", m.get_content_type()
        assert m.get_param("report-type") == "delivery-status", m.get_param("report-type")
        self.parts = m.get_payload()
        assert len(self.parts) >= 2, "a report has at least two parts"
        assert self.parts[0].get_content_type() == "text/plain"
        assert self.parts[1].get_content_type() == "message/delivery-status"
        blocks = self.parts[1].get_payload()
        self.per_message = blocks[0]
        self.per_rcpt = blocks[1:]
        self.text = self.parts[0].get_payload(decode=True).decode("utf-8", "replace")
        self.returned = self.parts[2] if len(self.parts) > 2 else None

    def rcpt(self, addr):
        """The per-recipient block whose Final-Recipient is addr."""
        for b in self.per_rcpt:
            fr = b.get("Final-Recipient", "")
            if fr.split(";", 1)[-1].strip().lower() == addr.lower():
                return b
        raise AssertionError("no block for %s in %r" % (addr, [b.items() for b in self.per_rcpt]))

    def actions(self):
        return {b.get("Final-Recipient").split(";", 1)[-1].strip(): b.get("Action")
                for b in self.per_rcpt}


def reports(mta, user="alice", wait_for=1, timeout=15.0):
    """The reports (null Return-Path) in user's Maildir, waiting for at least wait_for."""
    def get():
        return [m for m in mta.maildir(user) if m.raw.startswith(b"Return-Path: <>")]
    wait_until(lambda: len(get()) >= wait_for, timeout, 0.05)
    return [Report(m) for m in get()]


def unfold(v):
    return re.sub(r"\s*\n\s+", " ", v or "").strip()


# ---------------------------------------------------------------------------------------------
# Postfix


POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"


def ensure_postfix():
    """Install Debian's postfix package if it is missing: no system configuration, and no
    system instance is started (debconf "No configuration")."""
    if os.access(POSTFIX, os.X_OK) and os.access(POSTCONF, os.X_OK):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["debconf-set-selections"], input=b"postfix postfix/main_mailer_type select "
                   b"No configuration\n", check=True, timeout=60, env=env)
    for attempt in range(2):
        r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                            "-o", "DPkg::Lock::Timeout=120", "postfix"],
                           capture_output=True, timeout=600, env=env)
        if r.returncode == 0:
            break
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=120"],
                           capture_output=True, timeout=600, env=env)
    if not os.access(POSTFIX, os.X_OK):
        raise RuntimeError("cannot install postfix: %s" %
                           r.stderr.decode(errors="replace")[-2000:])


MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
{listen}  inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix: config_directory, queue_directory and Maildirs under one fresh
    directory; smtpd on host:port only. Virtual domain `domain` with the given users
    (Maildirs under vmail/<user>/); everything else goes to relayhost (if any)."""

    def __init__(self, host, port, hostname="pf.test", domain="pf.test", users=("carol",),
                 relayhost=None, extra=()):
        self.host, self.port, self.domain = host, port, domain
        # pytest's temp dirs are 0700 (root only); the postfix user needs to walk to its queue
        self.base = tempfile.mkdtemp(prefix="postel-postfix-")
        os.chmod(self.base, 0o755)
        self.conf = os.path.join(self.base, "conf")
        self.queue = os.path.join(self.base, "queue")
        self.data = os.path.join(self.base, "data")
        self.vmail = os.path.join(self.base, "vmail")
        self.maillog = os.path.join(self.base, "maillog")
        self.master_pid = None
        for d in (self.conf, self.queue, self.data, self.vmail):
            os.makedirs(d)
            os.chmod(d, 0o755)
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            for u in users:
                f.write("%s@%s %s/\n" % (u, domain, u))
        os.chown(self.vmail, nobody.pw_uid, nobody.pw_gid)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen="%s:%d" % (host, port)))
        open(os.path.join(self.conf, "main.cf"), "w").close()
        settings = [
            "compatibility_level = 3.6",
            "queue_directory = %s" % self.queue,
            "data_directory = %s" % self.data,
            "myhostname = %s" % hostname,
            "mydomain = %s" % domain,
            "myorigin = %s" % domain,
            "mydestination =",
            "inet_interfaces = loopback-only",   # smtpd binds host:port (master.cf)
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "relayhost = %s" % (relayhost or ""),
            "alias_maps =",
            "alias_database =",
            "biff = no",
            "smtp_host_lookup = native",
            "disable_dns_lookups = yes",
            "smtpd_banner = $myhostname ESMTP Postfix",
            "virtual_mailbox_domains = %s" % domain,
            "virtual_mailbox_base = %s" % self.vmail,
            "virtual_mailbox_maps = texthash:%s/vmailbox" % self.conf,
            "virtual_uid_maps = static:%d" % nobody.pw_uid,
            "virtual_gid_maps = static:%d" % nobody.pw_gid,
            "maillog_file = %s" % self.maillog,
            "maillog_file_prefixes = %s" % self.base,
            "queue_run_delay = 2s",
            "minimal_backoff_time = 2s",
            "maximal_backoff_time = 4s",
            "smtp_connect_timeout = 5s",
            "delay_warning_time = 0",
        ] + list(extra)
        self._postconf(*settings)

    def _postconf(self, *settings):
        r = subprocess.run([POSTCONF, "-c", self.conf, "-e"] + list(settings),
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("postconf failed: %s" % r.stderr)

    def _pid_from_file(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def start(self):
        for args in (["check"], ["start"]):
            r = subprocess.run([POSTFIX, "-c", self.conf] + args, capture_output=True,
                               text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("postfix %s failed: %s%s\n%s" % (
                    args[0], r.stdout, r.stderr, self.log[-2000:]))
        pid = wait_until(self._pid_from_file, 10.0, 0.05)
        if not pid:
            raise RuntimeError("postfix master did not come up:\n%s" % self.log[-2000:])
        self.master_pid = pid
        # smtpd is up once the master listens
        ok = wait_until(lambda: _can_connect(self.host, self.port), 10.0, 0.05)
        if not ok:
            raise RuntimeError("postfix does not listen on %s:%d" % (self.host, self.port))
        return self

    @property
    def log(self):
        try:
            with open(self.maillog, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=20.0):
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log), timeout, 0.05)

    def maildir(self, user, wait_for=0, timeout=20.0):
        d = os.path.join(self.vmail, user, "new")

        def files():
            try:
                return sorted(os.listdir(d))
            except FileNotFoundError:
                return []
        if wait_for:
            wait_until(lambda: len(files()) >= wait_for, timeout, 0.05)
        out = []
        for n in files():
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def stop(self):
        subprocess.run([POSTFIX, "-c", self.conf, "stop"], capture_output=True, timeout=60)
        pid = self.master_pid
        if pid is not None:
            gone = wait_until(lambda: not _alive(pid), 10.0, 0.05)
            if not gone:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                wait_until(lambda: not _alive(pid), 5.0, 0.05)
        shutil.rmtree(self.base, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie of ours would still answer kill 0: look at its state
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _can_connect(host, port):
    try:
        s = socket.create_connection((host, port), timeout=1.0)
    except OSError:
        return False
    s.close()
    return True


# ---------------------------------------------------------------------------------------------
# Fixtures (the test modules load this module with pytest_plugins)


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    u = Unbound(str(tmp_path_factory.mktemp("unbound"))).start()
    yield u
    u.stop()


@pytest.fixture
def sinks():
    """sinks(host, port, **behaviour) -> a started SmtpSink, stopped at teardown."""
    made = []

    def make(host, port, **kw):
        s = SmtpSink(host, port, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


@pytest.fixture
def mtas(tmp_path_factory):
    """mtas(**Mta kwargs) -> a started posteld; all stopped by PID at teardown, and a
    daemon that died during the test (or does not stop cleanly) fails it."""
    made = []

    def make(start=True, **kw):
        m = Mta(str(tmp_path_factory.mktemp("mta")), **kw)
        m.expect_down = False
        made.append(m)
        if start:
            m.start()
        return m
    yield make
    problems = []
    for m in made:
        if m.proc is None:
            continue
        # shown by pytest for a failed test only
        print("==== log of posteld %s:%d (%s)\n%s" % (m.host, m.port, m.hostname, m.log[-6000:]))
        rc = m.proc.poll()
        if rc is not None and not m.expect_down and not getattr(m, "_stopped", False):
            problems.append("posteld (pid %d) died during the test with status %s; log tail:\n%s"
                            % (m.proc.pid, rc, m.log[-3000:]))
        elif rc is None:
            rc = m.stop(timeout=8.0)
            if rc != 0:
                problems.append("posteld (pid %d) did not exit cleanly on SIGTERM: status %s; "
                                "log tail:\n%s" % (m.proc.pid, rc, m.log[-3000:]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
