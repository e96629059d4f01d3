"""postel status: uptime, sessions, queue size and delivery counters."""
import os
import re
import subprocess

from helpers import BUILD

POSTEL = os.path.join(BUILD, "postel")


def status(srv):
    r = subprocess.run([POSTEL, "-C", srv.config, "status"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return dict(re.findall(r"^(\w+)\s+(\S+)$", r.stdout, re.M))


def test_status_counts_deliveries(server):
    st = status(server)
    for key in ("uptime", "sessions", "queue", "received", "delivered", "bounced", "deferred",
                "held"):
        assert key in st, (key, st)
    assert st["received"] == "0" and st["delivered"] == "0"
    assert server.send("a@remote.test", ["alice@localhost", "bob@localhost"],
                       "Subject: s\r\n\r\nx\r\n").code == 250
    assert len(server.maildir("bob", wait_for=1)) == 1
    assert len(server.maildir("alice", wait_for=1)) == 1
    assert server.wait_log(r"removed", 10), server.log[-2000:]
    st = status(server)
    assert st["received"] == "1", st
    assert st["delivered"] == "2", st
    assert st["queue"] == "0", st
