"""make install: binaries, compatibility links, man pages, example config, systemd unit."""
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_install(dest, *extra):
    r = subprocess.run(["make", "-s", "install", "DESTDIR=" + str(dest), "PREFIX=/usr",
                        *extra], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return run_install(tmp_path_factory.mktemp("inst"))


def test_files_in_place(installed):
    for f in ["usr/sbin/posteld", "usr/bin/postel", "etc/postel/postel.conf",
              "usr/share/doc/postel/postel.conf.example", "usr/share/man/man8/posteld.8",
              "usr/share/man/man5/postel.conf.5", "usr/share/man/man5/aliases.5",
              "usr/lib/systemd/system/postel.service"]:
        assert (installed / f).is_file(), f
    assert os.access(installed / "usr/sbin/posteld", os.X_OK)


def test_compat_links_do_not_clobber_other_mtas(installed):
    for n in ["sendmail", "mailq", "newaliases"]:
        link = installed / "usr/lib/postel/bin" / n
        assert link.is_symlink() and os.readlink(link) == "/usr/bin/postel"
    assert not (installed / "usr/sbin/sendmail").exists()
    assert not (installed / "usr/bin/mailq").exists()


def test_sendmail_links_when_asked(tmp_path):
    d = run_install(tmp_path, "SENDMAIL_LINKS=yes")
    assert os.readlink(d / "usr/sbin/sendmail") == "/usr/bin/postel"
    assert os.readlink(d / "usr/bin/mailq") == "/usr/bin/postel"
    assert os.readlink(d / "usr/bin/newaliases") == "/usr/bin/postel"


def test_existing_config_is_kept(tmp_path):
    conf = tmp_path / "etc/postel/postel.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("hostname = mine.example\n")
    run_install(tmp_path)
    assert conf.read_text() == "hostname = mine.example\n"


def test_unit_file_points_at_installed_paths(installed):
    unit = (installed / "usr/lib/systemd/system/postel.service").read_text()
    assert "ExecStart=/usr/sbin/posteld -s -f /etc/postel/postel.conf" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "@" not in unit.replace("multi-user", "")


def test_example_config_is_valid_and_complete(installed):
    ex = installed / "usr/share/doc/postel/postel.conf.example"
    r = subprocess.run([str(installed / "usr/sbin/posteld"), "-n", "-f", str(ex)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    keys = [ln.split(" =")[0] for ln in r.stdout.splitlines() if " =" in ln and
            not ln.startswith("#")]
    assert len(keys) > 30
    text = ex.read_text()
    missing = [k for k in keys if ("\n#%s =" % k) not in text and ("\n%s =" % k) not in text]
    assert not missing, "settings missing from the example: %s" % missing


def test_man_pages_render(installed):
    for page in ["man8/posteld.8", "man5/postel.conf.5", "man5/aliases.5"]:
        r = subprocess.run(["man", "-l", str(installed / "usr/share/man" / page)],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
        assert r.returncode == 0 and "NAME" in r.stdout, (page, r.stderr)
