"""``facegate admin ...``, ``facegate web cert`` and ``facegate web``'s refusal to serve
without TLS, through edge.cli.main on a temporary config."""

from __future__ import annotations

import io
import stat

import pytest
from cryptography import x509

from edge import cli
from edge.certificate import fingerprint, load_certificate
from edge.errors import ExitCode
from edge.gallery.events import EventFilter
from edge.gallery.store import Gallery, GalleryConfig


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(
        f'[gallery]\npath = "{tmp_path / "g.db"}"\nkey_file = "{tmp_path / "keys" / "g.key"}"\n'
        f'[web]\ncert = "{tmp_path / "web" / "cert.pem"}"\nkey = "{tmp_path / "web" / "key.pem"}"\n'
    )
    monkeypatch.setenv("FACEGATE_CONFIG", str(path))
    assert cli.main(["init"]) == ExitCode.OK
    return path


def run(capsys, monkeypatch, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def gallery(tmp_path) -> Gallery:
    return Gallery.from_config(
        GalleryConfig(path=str(tmp_path / "g.db"), key_file=str(tmp_path / "keys" / "g.key"))
    )


def test_admin_add_passwd_list_remove(config_file, tmp_path, capsys, monkeypatch):
    code, out, _ = run(
        capsys,
        monkeypatch,
        "admin",
        "add",
        "alice",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert code == ExitCode.OK and "added administrator alice" in out
    with gallery(tmp_path) as g:
        first = g.admin("alice").password_hash
        (event,) = g.events(EventFilter(kind="admin_added"))
    assert first.startswith("$argon2id$") and "a long enough" not in first
    assert event.actor == "command line"

    code, _, _ = run(
        capsys,
        monkeypatch,
        "admin",
        "passwd",
        "alice",
        "--password-stdin",
        stdin="another long password\n",
    )
    assert code == ExitCode.OK
    with gallery(tmp_path) as g:
        assert g.admin("alice").password_hash != first

    code, out, _ = run(capsys, monkeypatch, "admin", "list")
    assert out.startswith("alice  since ")
    code, _, _ = run(capsys, monkeypatch, "admin", "remove", "alice")
    assert code == ExitCode.OK
    with gallery(tmp_path) as g:
        assert g.admins() == []


@pytest.mark.parametrize(
    "argv,stdin,message",
    [
        (["admin", "add", "bob", "--password-stdin"], "short\n", "10 to"),
        (["admin", "add", "bob"], "", "--password-stdin"),  # no terminal to ask on
        (["admin", "passwd", "nobody", "--password-stdin"], "x" * 12, "no administrator"),
        (["admin", "remove", "nobody"], "", "no administrator"),
        (["admin", "add", "123", "--password-stdin"], "x" * 12 + "\n", "only digits"),
    ],
)
def test_admin_refusals_change_nothing(
    config_file, tmp_path, capsys, monkeypatch, argv, stdin, message
):
    code, _, err = run(capsys, monkeypatch, *argv, stdin=stdin)
    assert code != ExitCode.OK and message in err
    with gallery(tmp_path) as g:
        assert g.admins() == []


def test_web_cert_makes_a_key_only_its_owner_reads_and_prints_the_fingerprint(
    config_file, tmp_path, capsys, monkeypatch
):
    code, out, _ = run(
        capsys,
        monkeypatch,
        "web",
        "cert",
        "--hostname",
        "door-1",
        "--ip",
        "192.0.2.7",
        "--ip",
        "127.0.0.1",
    )
    assert code == ExitCode.OK
    cert = load_certificate(tmp_path / "web" / "cert.pem")
    assert f"SHA-256 fingerprint: {fingerprint(cert)}" in out
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "door-1" in str(names) and "192.0.2.7" in str(names)
    assert stat.S_IMODE((tmp_path / "web" / "key.pem").stat().st_mode) == 0o600
    code, _, err = run(capsys, monkeypatch, "web", "cert")
    assert code == ExitCode.REFUSED and "exists" in err  # never replaced behind one's back


def test_web_cert_refuses_a_bad_address(config_file, tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "web", "cert", "--ip", "not-an-ip")
    assert code == ExitCode.REFUSED and not (tmp_path / "web").exists()


def test_web_refuses_to_serve_without_a_certificate(config_file, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "web")
    assert code == ExitCode.CONFIG and "facegate web cert" in err
