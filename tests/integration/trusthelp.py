"""Helpers for the trust tests (test_tls.py, test_auth.py, test_openrelay.py,
test_privilege.py): certificates, password files, TLS clients, a scripted fake SMTP server for
the client side, and a posteld that runs in a directory an unprivileged user can reach.

Every socket here is on 127.0.0.0/8, every wait is bounded, and every process started here is
stopped by its own PID.
"""
import base64
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

from helpers import Client, Closed, free_port

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-2"}


# ---------------------------------------------------------------------------------------------
# files


def make_passwd(path, users=None):
    """A user:crypt-hash file ($6$, made by openssl passwd -6)."""
    users = PASSWORDS if users is None else users
    lines = []
    for u, pw in users.items():
        r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=pw, text=True,
                           capture_output=True, timeout=10, check=True)
        h = r.stdout.strip()
        assert h.startswith("$6$"), h
        lines.append("%s:%s" % (u, h))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def make_cert(dirpath, cn, san=None, name=None):
    """A self-signed P-256 certificate for cn (SAN DNS:cn unless san is given, e.g.
    "IP:127.0.0.2"). Returns (crt, key)."""
    name = name or re.sub(r"[^A-Za-z0-9.-]", "_", cn)
    crt = os.path.join(dirpath, name + ".crt")
    key = os.path.join(dirpath, name + ".key")
    san = san or "DNS:%s" % cn
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=%s" % cn, "-days", "1",
                    "-addext", "subjectAltName=%s" % san, "-keyout", key, "-out", crt],
                   capture_output=True, timeout=30, check=True)
    return crt, key


def cert_der(crt):
    with open(crt) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


# ---------------------------------------------------------------------------------------------
# TLS clients


def client_ctx(cafile=None, minv=None, maxv=None, seclevel0=False):
    """A client context: no verification unless cafile is given (then the certificate and the
    host name are checked)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if seclevel0:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # TLS 1.1 on purpose
        if minv is not None:
            ctx.minimum_version = minv
        if maxv is not None:
            ctx.maximum_version = maxv
    return ctx


class TClient(Client):
    """helpers.Client plus STARTTLS, implicit TLS and AUTH."""

    def __init__(self, host, port, timeout=10.0, greet=True, source=None):
        if source is None:
            super().__init__(host, port, timeout=timeout, greet=greet)
            return
        # connect from a chosen loopback address (a separate throttling key)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        try:
            self.sock.bind((source, 0))
            self.sock.connect((host, port))
            self.greeting = self.reply() if greet else None
        except BaseException:
            self.sock.close()
            raise

    def wrap(self, ctx=None, server_hostname=None):
        """Handshake on the connection as it is now (nothing may be buffered)."""
        assert self.buf == b"", "plaintext left over before the handshake: %r" % self.buf
        ctx = ctx or client_ctx()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        return self.sock

    def starttls(self, ctx=None, server_hostname=None, ehlo=True):
        r = self.expect("STARTTLS", 220)
        assert r.text == "220 2.0.0 Ready to start TLS", r
        self.wrap(ctx, server_hostname)
        if ehlo:
            return self.ehlo()
        return None

    def auth_plain(self, user, pw, authz=""):
        tok = base64.b64encode(("%s\0%s\0%s" % (authz, user, pw)).encode()).decode()
        return self.cmd("AUTH PLAIN " + tok, timeout=30)

    def auth_login(self, user, pw):
        r = self.expect("AUTH LOGIN", 334)
        assert r.text == "334 VXNlcm5hbWU6", r
        r = self.expect(base64.b64encode(user.encode()).decode(), 334)
        assert r.text == "334 UGFzc3dvcmQ6", r
        return self.cmd(base64.b64encode(pw.encode()).decode(), timeout=30)

    def tls_version(self):
        return self.sock.version()


def ehlo_keywords(reply):
    return [ln[4:] for ln in reply.lines[1:]]


def implicit(server, port, ctx=None, server_hostname=None, source=None):
    """A TClient on an implicit-TLS port: handshake first, then the greeting."""
    c = TClient(server.host, port, greet=False, source=source)
    try:
        c.wrap(ctx, server_hostname)
        c.greeting = c.reply()
    except BaseException:
        c.close()
        raise
    return c


def s_client_subject(host, port, starttls=True, timeout=20):
    """The peer certificate's subject as openssl s_client prints it."""
    cmd = ["openssl", "s_client", "-connect", "%s:%d" % (host, port), "-servername",
           "mx.test", "-brief"]
    if starttls:
        cmd[2:2] = ["-starttls", "smtp"]
    r = subprocess.run(cmd, input="QUIT\r\n", capture_output=True, text=True, timeout=timeout)
    m = re.search(r"^Peer certificate: (.*)$", r.stderr + r.stdout, re.M)
    if m is None:
        m = re.search(r"^subject=(.*)$", r.stderr + r.stdout, re.M)
    return (m.group(1) if m else None), r


# ---------------------------------------------------------------------------------------------
# spool and mail checks


def nothing_stored(server):
    """No queue file, no incoming file, no delivered mail."""
    mails = {u: m for u, m in server.all_mail().items() if m}
    return not server.spool_files("queue") and not server.spool_files("incoming") and \
        not mails


# ---------------------------------------------------------------------------------------------
# a scripted SMTP server on a loopback address (for the sending side)


class FakeSmtp:
    """One-connection-at-a-time SMTP server on host:port, run in a thread.

    It greets, answers EHLO with STARTTLS, answers STARTTLS with starttls_reply (bytes, sent in
    ONE write), then does a real server-side TLS handshake (cert, key) and records the first
    line the client sends inside TLS in .tls_lines; then it answers 421 and waits for the client
    to close. Plaintext command lines are kept in .lines, what the client had sent after
    STARTTLS (before our reply) in .leftover, exceptions in .errors."""

    def __init__(self, host, port, cert, key, starttls_reply=b"220 2.0.0 go\r\n"):
        self.host, self.port = host, port
        self.starttls_reply = starttls_reply
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lines = []
        self.tls_lines = []
        self.leftover = None
        self.errors = []
        self.conns = 0
        self.done = threading.Event()
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((host, port))
        self.ls.listen(8)
        self.ls.settimeout(0.2)
        self.stopping = False
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        deadline = time.monotonic() + 60
        while not self.stopping and time.monotonic() < deadline:
            try:
                s, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns += 1
            try:
                self._serve(s)
            except Exception as e:      # recorded, checked by the test
                self.errors.append(repr(e))
            finally:
                try:
                    s.close()
                except OSError:
                    pass
                self.done.set()

    @staticmethod
    def _readline(sock, buf):
        while b"\r\n" not in buf[0]:
            d = sock.recv(4096)
            if not d:
                raise Closed("client closed")
            buf[0] += d
        line, buf[0] = buf[0].split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def _serve(self, s):
        s.settimeout(10)
        buf = [b""]
        s.sendall(b"220 fake.test ESMTP\r\n")
        while True:
            line = self._readline(s, buf)
            self.lines.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                s.sendall(b"250-fake.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            elif verb == "STARTTLS":
                self.leftover = buf[0]
                s.sendall(self.starttls_reply)          # one write
                ts = self.ctx.wrap_socket(s, server_side=True)
                tbuf = [b""]
                first = self._readline(ts, tbuf)
                self.tls_lines.append(first)
                ts.sendall(b"421 4.3.0 fake.test test over\r\n")
                # let the client close first (bounded): posteld's client loses a reply that
                # arrives in the same read as the server's TLS close (libevent reports the
                # EOF before the data), and the test checks the 421 text in its log
                ts.settimeout(5)
                try:
                    while ts.recv(4096):
                        pass
                except (OSError, ssl.SSLError):
                    pass
                try:
                    ts.unwrap()
                except (OSError, ValueError, ssl.SSLError):
                    pass
                return
            elif verb == "QUIT":
                s.sendall(b"221 bye\r\n")
                return
            else:
                s.sendall(b"502 5.5.1 no\r\n")

    def stop(self):
        self.stopping = True
        self.t.join(5)
        self.ls.close()


# ---------------------------------------------------------------------------------------------
# a posteld in a directory an unprivileged user can traverse (for the privilege tests)


class PubDir:
    """tempfile.mkdtemp under /tmp, mode 0755, removed at exit."""

    def __init__(self, prefix="postel-trust-"):
        self.path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        os.chmod(self.path, 0o755)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Daemons:
    """Start Postel instances and stop each by its PID at the end; reports daemons that
    died on their own or did not exit 0 on SIGTERM."""

    def __init__(self):
        self.all = []

    def add(self, p, start=True):
        p.expect_down = False
        self.all.append(p)
        if start:
            p.start()
        return p

    def finish(self):
        problems = []
        for s in self.all:
            if s.proc is None:
                continue
            rc = s.proc.poll()
            if rc is not None and not s.expect_down and rc != 0 and \
                    not getattr(s, "_stopped", False):
                problems.append("posteld (pid %d) died with status %s; log:\n%s" %
                                (s.proc.pid, rc, s.log[-2000:]))
            if s.proc.poll() is None:
                rc = s.stop(timeout=8.0)
                if rc != 0:
                    problems.append("posteld (pid %d) did not exit cleanly: %s; log:\n%s" %
                                    (s.proc.pid, rc, s.log[-2000:]))
        return problems


def run_once(config, timeout=10):
    """Start posteld -f config expecting it to exit by itself; returns (rc, output).
    Killed by PID if it is still running after timeout."""
    from helpers import POSTELD
    p = subprocess.Popen([POSTELD, "-f", config], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd="/")
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, _ = p.communicate(timeout=10)
        return None, out.decode("utf-8", "replace")
    return p.returncode, out.decode("utf-8", "replace")


def proc_status(pid):
    """/proc/PID/status as a dict of its fields."""
    d = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            d[k] = v.strip()
    return d


# ---------------------------------------------------------------------------------------------
# a sending posteld on 127.0.0.1 whose relayhost is a receiver on 127.0.0.2


RECEIVER_IP = "127.0.0.2"


def receiver(make_server, extra=(), port=None, start=True):
    """A posteld listening on 127.0.0.2 (made by conftest's make_server, so it is stopped by
    PID at teardown). Its own outbound mail stays on 127.0.0.1 port 1."""
    port = port or free_port(RECEIVER_IP)
    r = make_server(extra=["listen = %s:%d" % (RECEIVER_IP, port)] + list(extra), start=False,
                    port=port)
    r.host = RECEIVER_IP
    if start:
        r.start()
    return r


def sender(make_server, relay_port, extra=(), start=True):
    """A posteld on 127.0.0.1 that relays for loopback clients and sends every remote
    recipient to [127.0.0.2]:relay_port. Its local domain is sender.test."""
    s = make_server(extra=["local_domains = sender.test", "relay_networks = 127.0.0.0/8",
                           "relayhost = [%s]:%d" % (RECEIVER_IP, relay_port)] + list(extra),
                    start=False, hostname="sender.test")
    if start:
        s.start()
    return s


def msg_text(subject, frm="alice@sender.test", to="alice@example.test", body="hello"):
    return "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n%s\r\n" % (frm, to, subject, body)
