"""The TLS material of the hub's NATS listener: a private CA and a server certificate for it.

DESIGN.md section 4 ("NATS credentials are separate keys"). ``hub init`` makes a CA once and,
with it, a certificate for the hosts the server listens on (loopback by default). Node agents
pin the CA certificate; nobody else's CA is trusted. Keys are ECDSA P-256 (what every TLS stack
speaks); time is an argument, so the same inputs give a certificate with the same validity.

Pure: bytes in, bytes out. The caller writes the files (the key ones with mode 0600).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.crypto._primitives import p256_generate, p256_sign_certificate
from hub.errors import ValidationError

__all__ = ["DEFAULT_HOSTS", "CertAndKey", "load_ca", "make_ca", "make_server_cert"]

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")
_CA_VALIDITY = timedelta(days=3650)
_SERVER_VALIDITY = timedelta(days=825)  # the longest server lifetime browsers ever accepted
_BACKDATE = timedelta(minutes=5)  # tolerate a little clock skew on the verifying side


@dataclass(frozen=True, slots=True)
class CertAndKey:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def make_ca(common_name: str, *, now: datetime, valid_for: timedelta = _CA_VALIDITY) -> CertAndKey:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    if not common_name:
        raise ValidationError("common_name: must not be empty", field="common_name")
    key = p256_generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
    )
    return CertAndKey(p256_sign_certificate(builder, subject_key=key, issuer_key=key), key)


def load_ca(cert_pem: bytes) -> x509.Certificate:
    """Parse a CA certificate (PEM) or raise a typed error naming the file's problem."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise ValidationError(f"hub CA: not a PEM certificate ({e})", field="hub_ca") from e
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ValidationError("hub CA: the certificate is not a CA", field="hub_ca")
    return cert


def make_server_cert(
    ca: CertAndKey,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    *,
    now: datetime,
    valid_for: timedelta = _SERVER_VALIDITY,
) -> CertAndKey:
    """A TLS server certificate for ``hosts`` (IP addresses or DNS names), signed by ``ca``."""
    if not hosts:
        raise ValidationError("hosts: name at least one host", field="hosts")
    try:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    except ValueError as e:
        raise ValidationError(f"ca: not a PEM certificate ({e})", field="ca") from e
    key = p256_generate()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + valid_for, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    try:
        cert_pem = p256_sign_certificate(builder, subject_key=key, issuer_key=ca.key_pem)
    except ValueError as e:
        raise ValidationError(f"ca: the key is not a P-256 PEM private key ({e})") from e
    return CertAndKey(cert_pem, key)


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if not host.isascii() or not all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels
    ):
        raise ValidationError(f"hosts: {host!r} is neither an IP address nor a DNS name")
    return x509.DNSName(host.lower())
