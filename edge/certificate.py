"""The web app's per-device TLS certificate: made once at install, self-signed, named
for the device's host name and addresses; its SHA-256 fingerprint is what a person
compares with the browser's the first time (``facegate doctor`` prints it). The test
broker (``evaluation/mosquitto.py``) serves one made the same way.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import ConfigError, RefusedError

VALID_DAYS = 3650  # a door terminal's certificate outlives no one's patience to renew it


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate, as browsers show it (AB:CD:...)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def load_certificate(path: str | Path) -> x509.Certificate:
    """The PEM certificate at ``path``; ConfigError saying why not."""
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"web.cert: {path} does not exist; make one with 'facegate web cert'"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"web.cert: cannot read the certificate {path}: {exc}") from None


def make_certificate(
    cert_path: str | Path,
    key_path: str | Path,
    hostname: str,
    addresses: Sequence[str],
    now: dt.datetime,
) -> x509.Certificate:
    """Write a new P-256 key (mode 0600) and a self-signed certificate for
    ``hostname`` and ``addresses``; an existing file is never replaced."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    for path in (cert_path, key_path):
        if path.exists():
            raise RefusedError(f"{path} exists; remove it first to make a new certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert
