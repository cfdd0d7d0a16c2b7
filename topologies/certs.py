"""Certificates for a TLS test bed (``up --tls``): one private CA and the certificates it signs.

Written with the ``cryptography`` package into ``<workdir>/tls``: ``ca.pem`` (the CA every party
trusts), and for each name a ``<name>.pem`` certificate and ``<name>.key`` private key (PEM,
unencrypted, mode 0600).  Every certificate is good for both server and client authentication
and names 127.0.0.1 and ``localhost`` (what the test bed's parties dial), so etcd members,
their clients, the controller (OpenFlow and REST) and the switches can all use them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30


@dataclass(frozen=True)
class CertFiles:
    """One party's files: its certificate, its key, and the CA to verify peers with."""

    cert: Path
    key: Path
    ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netplugin test bed"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class Authority:
    """A CA in ``directory`` (made on first use, reused after) that issues certificates."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.ca_path = self.dir / "ca.pem"
        self._ca_key_path = self.dir / "ca.key"
        if not self.ca_path.exists():
            self._make_ca()
        self._cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
        key = serialization.load_pem_private_key(self._ca_key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key

    def _make_ca(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        name = _name("netplugin test bed CA")
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                             crl_sign=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        _write_key(self._ca_key_path, key)
        self.ca_path.write_bytes(_pem(cert))

    def issue(self, name: str) -> CertFiles:
        """``<name>.pem`` / ``<name>.key`` signed by this CA (kept if they exist already)."""
        cert_path, key_path = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        if cert_path.exists() and key_path.exists():
            return CertFiles(cert_path, key_path, self.ca_path)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        san = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                           x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))])
        cert = (x509.CertificateBuilder().subject_name(_name(name))
                .issuer_name(self._cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                .add_extension(san, critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(self._key, hashes.SHA256()))
        _write_key(key_path, key)
        cert_path.write_bytes(_pem(cert))
        return CertFiles(cert_path, key_path, self.ca_path)


def bed_certificates(workdir: Path, hosts: list[str]) -> dict[str, CertFiles]:
    """Everything a TLS test bed needs: ``etcd`` (members), ``client`` (agents, CLI, test bed),
    ``controller`` (OpenFlow and REST server, and its etcd client), ``switch-<host>`` (OVS)."""
    ca = Authority(Path(workdir) / "tls")
    names = ["etcd", "client", "controller", *(f"switch-{h}" for h in hosts)]
    return {n: ca.issue(n) for n in names}
