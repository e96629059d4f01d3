"""Helpers for the postel integration tests: run the real daemon, talk SMTP to it.

Everything here talks only to 127.0.0.1 / ::1, and every wait is bounded in time.
"""
import os
import re
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("POSTEL_BUILD", "build")
# POSTEL_VALGRIND=1 runs every posteld under valgrind: any invalid access or definite leak
# makes its exit status 97, which the fixtures' teardown turns into a failed test.
VALGRIND = (["valgrind", "--quiet", "--error-exitcode=97", "--leak-check=full",
             "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"]
            if os.environ.get("POSTEL_VALGRIND") == "1" else [])
POSTELD = os.path.join(ROOT, BUILD, "posteld") if not os.path.isabs(BUILD) else \
    os.path.join(BUILD, "posteld")

HOSTNAME = "mx.test"
USERS = ["alice", "bob", "carol", "dave", "eve"]
QUEUE_ID = re.compile(r"queued as ([0-9A-F]{16})\b")


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind port 0 and let it go)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout=5.0, interval=0.02):
    """Poll pred() until it returns a true value or timeout passes; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def wait_for(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value and return that value; raise
    AssertionError naming `what` (a str, or a callable giving one) if timeout passes first."""
    v = wait_until(pred, timeout, interval)
    if not v:
        raise AssertionError("timed out after %.1f s waiting for %s (last value %r)" %
                             (timeout, what() if callable(what) else what, v))
    return v


_SUPPORTED = None


def supported_settings():
    """The setting names this posteld knows (from posteld -n), cached."""
    global _SUPPORTED
    if _SUPPORTED is None:
        r = subprocess.run([POSTELD, "-n"], capture_output=True, text=True, timeout=10,
                           cwd="/")
        _SUPPORTED = {ln.split("=", 1)[0].strip() for ln in r.stdout.splitlines()
                      if "=" in ln and not ln.startswith("#")}
    return _SUPPORTED


# Outbound traffic of the daemon under test stays on loopback: every remote recipient goes to
# a smarthost on 127.0.0.1 port 1 (nothing listens there: the connection is refused and the
# message stays queued), and the resolver, should anything need one, is 127.0.0.1 too.
LOOPBACK_OUTBOUND = [("relayhost", "relayhost = [127.0.0.1]:1"),
                     ("dns_servers", "dns_servers = 127.0.0.1:1")]


def outbound_lines():
    have = supported_settings()
    return [line for key, line in LOOPBACK_OUTBOUND if key in have]


def run_posteld(args, cwd=None, timeout=10):
    """Run posteld to completion (e.g. -n): returns CompletedProcess with text output."""
    return subprocess.run([POSTELD] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------------------------------------
# SMTP client over a raw socket


class Reply:
    """One SMTP reply: code and its lines (without CRLF)."""

    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[-1][:3])

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def first(self):
        return self.lines[0]

    def __repr__(self):
        return "Reply(%r)" % self.text

    def __str__(self):
        return self.text


class Closed(Exception):
    """The server closed the connection before a full reply came."""


class Client:
    """A minimal SMTP client on a raw socket: send bytes, read replies."""

    def __init__(self, host, port, timeout=10.0, greet=True, family=None):
        if family is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        try:
            self.sock.connect((host, port))
            self.greeting = self.reply() if greet else None
        except BaseException:
            self.sock.close()
            raise

    # raw I/O
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed("connection closed; unread: %r" % self.buf[:200])
        self.buf += chunk

    def readline(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete line within %.1fs; have %r" %
                                     (timeout, self.buf[:200]))
            self._fill(left)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """Read one (possibly multi-line) reply."""
        lines = []
        while True:
            line = self.readline(timeout)
            lines.append(line)
            if not re.match(r"^\d{3}[ -]", line):
                raise AssertionError("malformed reply line %r" % line)
            if line[3] == " ":
                return Reply(lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def expect(self, line, code, timeout=None):
        r = self.cmd(line, timeout)
        assert r.code == code, "%s -> %s (wanted %d)" % (line, r, code)
        return r

    def ehlo(self, name="client.test"):
        return self.expect("EHLO " + name, 250)

    def helo(self, name="client.test"):
        return self.expect("HELO " + name, 250)

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection (EOF or reset) within timeout; data that
        arrives meanwhile is kept in self.buf."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except Closed:
                return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return True

    def no_reply(self, wait=0.3):
        """True if nothing more arrives within wait seconds (and the connection is open)."""
        try:
            self._fill(wait)
        except socket.timeout:
            return self.buf == b""
        except Closed:
            return False
        return False

    def send_message(self, sender, rcpts, body, ehlo=True):
        """A whole transaction; returns the final reply (body: bytes/str already CRLF)."""
        if ehlo:
            self.ehlo()
        self.expect("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, 250)
        self.expect("DATA", 354)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body + b".\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def queue_id(reply):
    m = QUEUE_ID.search(reply.text if isinstance(reply, Reply) else str(reply))
    assert m, "no queue id in %r" % (reply,)
    return m.group(1)


def msg(subject, body="hello", extra_headers=()):
    """A small RFC 5322 message with CRLF line ends (no terminating dot)."""
    lines = ["From: sender@example.org", "To: alice@localhost", "Subject: " + subject]
    lines += list(extra_headers)
    lines += ["", body, ""]
    return "\r\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The daemon


class Mail:
    """A delivered Maildir file."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        with open(path, "rb") as f:
            self.raw = f.read()
        self.text = self.raw.decode("utf-8", "replace")

    def header_block(self):
        return self.text.split("\n\n", 1)[0]

    def body(self):
        parts = self.text.split("\n\n", 1)
        return parts[1] if len(parts) > 1 else ""

    def __repr__(self):
        return "Mail(%s, %r)" % (self.name, self.text[:300])


class Postel:
    """One posteld process with its own config, spool, Maildirs and log in base_dir."""

    def __init__(self, base_dir, extra=(), trusted=True, greet_pause="300ms", port=None,
                 hostname=HOSTNAME, users=USERS, spool_dir=None, env=None):
        self.base = base_dir
        # extra environment of the daemon (e.g. LD_PRELOAD of a recorder)
        self.env = dict(env or {})
        self.host = "127.0.0.1"
        self.port = port or free_port()
        # a port picked here may be taken by another process before posteld binds it: the
        # first start then picks another (a restart keeps the port clients know)
        self._port_picked = port is None
        self._started_once = False
        self.spool = spool_dir or os.path.join(base_dir, "spool")
        self.mail = os.path.join(base_dir, "mail")
        self.config = os.path.join(base_dir, "postel.conf")
        self.logfile = os.path.join(base_dir, "posteld.log")
        self.hostname = hostname
        self.proc = None
        lines = [
            "# written by tests/integration",
            "hostname = %s" % hostname,
            "listen = 127.0.0.1:%d" % self.port,
            "spool_dir = %s" % self.spool,
            "mail_dir = %s" % self.mail,
            "local_domains = localhost example.test",
            "local_users = %s" % " ".join(users),
            "alias postmaster: alice",
            "alias root: alice",
            "relay_networks =",
            "workers = 4",
        ] + outbound_lines()
        if not trusted:
            lines += ["trusted_networks =", "greet_pause = %s" % greet_pause]
        lines += list(extra)
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    # life cycle
    def start(self, timeout=None):
        if timeout is None:
            # valgrind's start-up alone can take seconds on a loaded 2-core machine
            timeout = 60.0 if VALGRIND else 10.0
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError:
                lost_race = "cannot listen on 127.0.0.1 port %d: Address already in use" % \
                    self.port in self.log_since(self._log_mark)
                if not lost_race or not self._port_picked or self._started_once or \
                        attempt == 2:
                    raise
                old = "listen = 127.0.0.1:%d" % self.port
                self.port = free_port()
                with open(self.config) as f:
                    text = f.read()
                with open(self.config, "w") as f:
                    f.write(text.replace(old, "listen = 127.0.0.1:%d" % self.port))

    def _start(self, timeout):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log_mark = self._log_size()
        self._stopped = False
        logf = open(self.logfile, "ab")
        try:
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = subprocess.Popen(VALGRIND + [POSTELD, "-f", self.config],
                                         stdin=subprocess.DEVNULL, env=env,
                                         stdout=logf, stderr=logf, cwd=self.base)
        finally:
            logf.close()
        ok = wait_until(lambda: self.proc.poll() is not None or
                        "postel started" in self.log_since(self._log_mark), timeout)
        if self.proc.poll() is not None or not ok:
            raise RuntimeError("posteld did not start (rc=%s):\n%s" %
                               (self.proc.poll(), self.log[-3000:]))
        self._started_once = True
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM; SIGKILL after timeout. Returns the exit status."""
        if self.proc is None:
            return None
        self._stopped = True
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def kill9(self):
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, hard=False):
        if hard:
            self.kill9()
        else:
            self.stop()
        return self.start()

    # log
    def _log_size(self):
        try:
            return os.path.getsize(self.logfile)
        except OSError:
            return 0

    @property
    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_since(self, offset):
        try:
            with open(self.logfile, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=5.0):
        """Wait for a regex in the log; returns the match or None."""
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log), timeout)

    # clients
    def client(self, **kw):
        return Client(self.host, self.port, **kw)

    def send(self, sender, rcpts, body, ehlo=True):
        """One message in a fresh session; returns the final reply."""
        with self.client() as c:
            r = c.send_message(sender, rcpts, body, ehlo=ehlo)
            try:
                c.cmd("QUIT")
            except (Closed, OSError):
                pass
            return r

    # Maildirs and the spool
    def maildir(self, user, wait_for=0, timeout=10.0, sub="new"):
        """The delivered files of user (sorted by name). wait_for: poll up to timeout
        seconds until at least that many are there."""
        d = os.path.join(self.mail, user, sub)

        def files():
            try:
                names = sorted(n for n in os.listdir(d) if not n.startswith("."))
            except FileNotFoundError:
                return []
            return names

        if wait_for:
            wait_until(lambda: len(files()) >= wait_for, timeout)
        out = []
        for n in files():
            try:
                out.append(Mail(os.path.join(d, n)))
            except FileNotFoundError:
                pass
        return out

    def all_mail(self):
        """Every delivered file of every user: {user: [Mail]}."""
        res = {}
        try:
            users = os.listdir(self.mail)
        except FileNotFoundError:
            return res
        for u in users:
            res[u] = self.maildir(u)
        return res

    def spool_files(self, sub):
        try:
            return sorted(os.listdir(os.path.join(self.spool, sub)))
        except FileNotFoundError:
            return []

    def settle(self, timeout=10.0):
        """Wait until the queue and incoming/ are empty (every accepted message to a local
        recipient delivered and removed). Returns True if that happened."""
        return bool(wait_until(lambda: not self.spool_files("queue") and
                               not self.spool_files("incoming"), timeout))

    def find_mail(self, needle):
        """Delivered files (any user) whose content contains needle (str)."""
        hits = []
        for u, mails in self.all_mail().items():
            hits += [(u, m) for m in mails if needle in m.text]
        return hits

    def healthy(self):
        """A fresh session still works end to end: a message is accepted and delivered."""
        tag = "health-%d-%d" % (os.getpid(), time.monotonic_ns())
        r = self.send("check@example.org", ["eve@localhost"], msg(tag))
        assert r.code == 250, r
        ok = wait_until(lambda: self.find_mail(tag), 10.0)
        assert ok, "health message %s not delivered; log:\n%s" % (tag, self.log[-2000:])
        return True
