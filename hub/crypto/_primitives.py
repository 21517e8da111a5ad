"""The only module that touches ``cryptography.hazmat`` (STYLE rule 3).

Everything here works on raw bytes so that callers never hold hazmat objects: Ed25519
signatures, HPKE key wrapping (RFC 9180; ML-KEM-768+X25519 hybrid by default, X25519
selectable), AES-256-GCM content encryption and SHA-256. Failures surface as the hub's typed
errors; no hazmat exception escapes.

Building a key object from raw bytes is costly (an Ed25519 private key derives its public
point; an ML-KEM private key expands its seed), so long-lived private keys are built once into
opaque handles (:class:`SigningKey`, :class:`DecryptionKey`) whose ``repr`` never shows the
secret, and parsed public keys are memoised by their raw bytes (public keys are not secret).
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import DecryptionFailed, SignatureInvalid, UnsupportedVersion, ValidationError

__all__ = [
    "CONTENT_KEY_SIZE",
    "KEM_SUITES",
    "DecryptionKey",
    "KemSuite",
    "SigningKey",
    "aead_decrypt",
    "aead_encrypt",
    "ed25519_generate",
    "ed25519_public",
    "ed25519_sign",
    "ed25519_verify",
    "p256_generate",
    "p256_sign_certificate",
    "hpke_generate",
    "hpke_public",
    "hpke_unwrap",
    "hpke_wrap",
    "random_bytes",
    "sha256",
]

KemSuite = Literal["mlkem768x25519", "x25519"]
KEM_SUITES: Final[tuple[KemSuite, ...]] = ("mlkem768x25519", "x25519")
CONTENT_KEY_SIZE: Final = 32

_MLKEM_SEED = 64
_MLKEM_PUBLIC = 1184
_X25519 = 32

_SUITES: Final = {
    "mlkem768x25519": hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
    "x25519": hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


# --- Ed25519 ---------------------------------------------------------------------------------


def ed25519_generate() -> bytes:
    """A new Ed25519 private key as its 32 raw bytes."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes_raw()


def _ed25519_private(private: bytes) -> ed25519.Ed25519PrivateKey:
    try:
        return ed25519.Ed25519PrivateKey.from_private_bytes(private)
    except ValueError as e:
        raise ValidationError("signing key: must be 32 raw Ed25519 bytes", field="key") from e


class SigningKey:
    """An Ed25519 private key, built once; an opaque handle that never shows its bytes."""

    __slots__ = ("_key",)

    def __init__(self, private: bytes) -> None:
        self._key = _ed25519_private(private)

    def __repr__(self) -> str:
        return "SigningKey(private=<redacted>)"

    def public(self) -> bytes:
        """The 32 raw bytes of the matching public key."""
        return self._key.public_key().public_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def ed25519_public(private: bytes) -> bytes:
    return _ed25519_private(private).public_key().public_bytes_raw()


def ed25519_sign(private: bytes, message: bytes) -> bytes:
    """Sign with raw private bytes (one-off signers; hold a :class:`SigningKey` otherwise)."""
    return _ed25519_private(private).sign(message)


@functools.lru_cache(maxsize=4096)
def _ed25519_public_key(public: bytes) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(public)  # ValueError is not cached


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> None:
    """Return nothing or raise :class:`SignatureInvalid` (pyca's ``verify()`` contract)."""
    try:
        _ed25519_public_key(bytes(public)).verify(signature, message)
    except (InvalidSignature, ValueError) as e:
        raise SignatureInvalid("signature: does not verify with the signer's key") from e


# --- HPKE key wrapping -------------------------------------------------------------------------


def _suite(suite: str) -> hpke.Suite:
    try:
        return _SUITES[suite]
    except KeyError as e:
        raise UnsupportedVersion(
            f"suite: {suite!r} is not one of {', '.join(KEM_SUITES)}", field="suite"
        ) from e


def hpke_generate(suite: KemSuite) -> bytes:
    """A new HPKE private key for ``suite``, as raw bytes (ML-KEM seed || X25519 scalar)."""
    _suite(suite)
    x = x25519.X25519PrivateKey.generate().private_bytes_raw()
    if suite == "x25519":
        return x
    return mlkem.MLKEM768PrivateKey.generate().private_bytes_raw() + x


def _hpke_private(
    suite: str, private: bytes
) -> tuple[x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey, bytes]:
    """The key object and its public bytes (ML-KEM encapsulation key || X25519 point)."""
    try:
        if suite == "x25519":
            x = x25519.X25519PrivateKey.from_private_bytes(private)
            return x, x.public_key().public_bytes_raw()
        if len(private) != _MLKEM_SEED + _X25519:
            raise ValueError("wrong length")
        m = mlkem.MLKEM768PrivateKey.from_seed_bytes(private[:_MLKEM_SEED])
        x = x25519.X25519PrivateKey.from_private_bytes(private[_MLKEM_SEED:])
        public = m.public_key().public_bytes_raw() + x.public_key().public_bytes_raw()
        return hpke.MLKEM768X25519PrivateKey(m, x), public
    except ValueError as e:
        raise ValidationError(
            f"encryption key: not a valid {suite} private key", field="key"
        ) from e


@functools.lru_cache(maxsize=1024)
def _hpke_public_key(
    suite: str, public: bytes
) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
    try:  # a ValidationError raised here is not cached
        if suite == "x25519":
            return x25519.X25519PublicKey.from_public_bytes(public)
        if len(public) != _MLKEM_PUBLIC + _X25519:
            raise ValueError("wrong length")
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(public[:_MLKEM_PUBLIC]),
            x25519.X25519PublicKey.from_public_bytes(public[_MLKEM_PUBLIC:]),
        )
    except ValueError as e:
        raise ValidationError(f"encryption key: not a valid {suite} public key", field="key") from e


class DecryptionKey:
    """An HPKE private key of one suite, built once (the ML-KEM seed is expanded here, not on
    every unwrap); an opaque handle that never shows its bytes."""

    __slots__ = ("_key", "_public", "suite")

    def __init__(self, suite: KemSuite, private: bytes) -> None:
        _suite(suite)
        self.suite: KemSuite = suite
        self._key, self._public = _hpke_private(suite, private)

    def __repr__(self) -> str:
        return f"DecryptionKey(suite={self.suite!r}, private=<redacted>)"

    def public(self) -> bytes:
        """The matching public key (ML-KEM encapsulation key || X25519 point)."""
        return self._public

    def unwrap(self, wrapped: bytes, info: bytes) -> bytes:
        """Inverse of :func:`hpke_wrap`; any failure is one opaque :class:`DecryptionFailed`."""
        try:
            return _SUITES[self.suite].decrypt(wrapped, self._key, info=info)
        except Exception as e:
            raise DecryptionFailed("message could not be decrypted") from e


def hpke_public(suite: KemSuite, private: bytes) -> bytes:
    """The public key (ML-KEM encapsulation key || X25519 point) matching ``private``."""
    return DecryptionKey(suite, private).public()


def hpke_wrap(suite: KemSuite, public: bytes, secret: bytes, info: bytes) -> bytes:
    """HPKE base-mode single-shot encryption of ``secret`` to ``public`` (RFC 9180 §6.1)."""
    return _suite(suite).encrypt(secret, _hpke_public_key(suite, bytes(public)), info=info)


def hpke_unwrap(suite: KemSuite, private: bytes, wrapped: bytes, info: bytes) -> bytes:
    """:meth:`DecryptionKey.unwrap` with raw private bytes (one-off use)."""
    try:
        key = DecryptionKey(suite, private)
    except Exception as e:
        raise DecryptionFailed("message could not be decrypted") from e
    return key.unwrap(wrapped, info)


# --- AES-256-GCM -----------------------------------------------------------------------------


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError) as e:
        raise DecryptionFailed("message could not be decrypted") from e


# --- ECDSA P-256 for the NATS TLS certificates (hub.crypto.tls) ------------------------


def p256_generate() -> bytes:
    """A new ECDSA P-256 private key, PKCS#8 PEM, unencrypted."""
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def p256_sign_certificate(
    builder: x509.CertificateBuilder, *, subject_key: bytes, issuer_key: bytes
) -> bytes:
    """Finish ``builder`` (subject public key, SKI, AKI), sign it ECDSA-SHA256; PEM out.

    Raises ValueError if either key is not a P-256 PEM private key.
    """
    subject = serialization.load_pem_private_key(subject_key, password=None)
    issuer = serialization.load_pem_private_key(issuer_key, password=None)
    if not isinstance(subject, ec.EllipticCurvePrivateKey) or not isinstance(
        issuer, ec.EllipticCurvePrivateKey
    ):
        raise ValueError("not an ECDSA key")
    public = subject.public_key()
    cert = (
        builder.public_key(public)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),
            critical=False,
        )
        .sign(issuer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
