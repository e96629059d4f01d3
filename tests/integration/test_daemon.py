"""posteld's habits as a daemon: --help, -V (the version CHANGES.md's top entry names), and a
log file (-l FILE) that SIGUSR1 opens again after logrotate moved it."""
import os
import re
import signal
import subprocess

from helpers import POSTELD, ROOT, Postel, msg, wait_until

POSTEL_CLI = os.path.join(os.path.dirname(POSTELD), "postel")


def changes_version():
    with open(os.path.join(ROOT, "CHANGES.md")) as f:
        for line in f:
            m = re.match(r"## ([0-9][0-9.]*)", line)
            if m:
                return m.group(1)
    raise AssertionError("CHANGES.md has no version entry")


def test_version_comes_from_changes():
    v = changes_version()
    for prog, args in ((POSTELD, ["-V"]), (POSTELD, ["--version"]), (POSTEL_CLI, ["-V"])):
        r = subprocess.run([prog] + args, capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "%s %s\n" % (os.path.basename(prog), v), r.stdout


def test_help_is_on_stdout_and_succeeds():
    r = subprocess.run([POSTELD, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("usage: posteld"), r
    assert "-l FILE" in r.stdout and "SIGUSR1" in r.stdout
    r = subprocess.run([POSTELD, "-x"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 64 and "usage: posteld" in r.stderr


def test_log_file_reopened_on_sigusr1(tmp_path):
    base = str(tmp_path)
    p = Postel(base)
    logfile = os.path.join(base, "file.log")
    proc = subprocess.Popen([POSTELD, "-f", p.config, "-l", logfile], cwd=base,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        def text(path):
            try:
                with open(path) as f:
                    return f.read()
            except FileNotFoundError:
                return ""
        assert wait_until(lambda: "postel started" in text(logfile), 10), text(logfile)
        # what logrotate does: move the file, make a new one, signal
        os.rename(logfile, logfile + ".1")
        with open(logfile, "w"):
            pass
        os.kill(proc.pid, signal.SIGUSR1)
        assert wait_until(lambda: "log file reopened" in text(logfile), 10), text(logfile)
        p.proc = proc
        r = p.send("a@example.org", ["alice@localhost"], msg("after rotation"))
        assert r.code == 250
        assert wait_until(lambda: "status=delivered" in text(logfile), 10), text(logfile)
        assert "status=delivered" not in text(logfile + ".1")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out == b"" and err == b"", (out, err)     # nothing went to stdout or stderr
