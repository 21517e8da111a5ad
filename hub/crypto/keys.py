"""Key pairs of authorities and of the hub operator, and their private-key file format.

An authority holds an Ed25519 signing key and an HPKE encryption key (ML-KEM-768+X25519 by
default). ``key_id`` names the pair; it is a labelled hash of both public keys and the suite.
Private key objects never print their secret bytes (``repr`` is redacted) so they cannot leak
into logs by accident. The key objects the primitives need are built once, when the keys are
loaded, and held as opaque handles (:class:`~hub.crypto._primitives.SigningKey`,
:class:`~hub.crypto._primitives.DecryptionKey`): signing and unwrapping no longer rebuild them
from bytes on every call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from hub.crypto import _primitives as p
from hub.errors import UnsupportedVersion
from schemas.codec import Strict, decode, encode
from schemas.directory import PublicKeys

__all__ = [
    "AuthorityKeys",
    "KeyResolver",
    "OperatorKey",
    "compute_key_id",
    "verify_signature",
]

_KEY_ID_LABEL = b"mla-hub/v1/key-id\x00"


def compute_key_id(signing_public: bytes, suite: str, encryption_public: bytes) -> str:
    """16 hex chars naming a key pair: SHA-256 over a label, the suite and both public keys."""
    digest = p.sha256(_KEY_ID_LABEL + signing_public + suite.encode() + b"\x00" + encryption_public)
    return digest[:8].hex()


class _KeyFile(Strict, frozen=True, kw_only=True, tag="mla.keys.authority.v1"):
    signing: bytes
    encryption: bytes
    suite: str


class _OperatorKeyFile(Strict, frozen=True, kw_only=True, tag="mla.keys.operator.v1"):
    signing: bytes


class AuthorityKeys:
    """An authority's private signing and encryption keys."""

    __slots__ = (
        "_decrypter",
        "_encryption",
        "_signer",
        "_signing",
        "encryption_public",
        "key_id",
        "signing_public",
        "suite",
    )

    def __init__(self, signing: bytes, encryption: bytes, suite: p.KemSuite) -> None:
        self._signing = signing
        self._encryption = encryption
        self._signer = p.SigningKey(signing)
        self._decrypter = p.DecryptionKey(suite, encryption)
        self.suite: p.KemSuite = suite
        self.signing_public = self._signer.public()
        self.encryption_public = self._decrypter.public()
        self.key_id = compute_key_id(self.signing_public, suite, self.encryption_public)

    def __repr__(self) -> str:
        return f"AuthorityKeys(key_id={self.key_id!r}, suite={self.suite!r}, private=<redacted>)"

    @classmethod
    def generate(cls, suite: p.KemSuite = "mlkem768x25519") -> AuthorityKeys:
        """Fresh keys from the OS random source."""
        if suite not in p.KEM_SUITES:
            raise UnsupportedVersion(f"suite: {suite!r} is not one of {', '.join(p.KEM_SUITES)}")
        return cls(p.ed25519_generate(), p.hpke_generate(suite), suite)

    def public(self) -> PublicKeys:
        """The public half, as published on the authority card."""
        return PublicKeys(
            key_id=self.key_id,
            signing=self.signing_public,
            encryption=self.encryption_public,
            suite=self.suite,
        )

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message)

    def unwrap(self, wrapped: bytes, info: bytes) -> bytes:
        """Recover an HPKE-wrapped secret addressed to this key (opaque error on failure)."""
        return self._decrypter.unwrap(wrapped, info)

    def to_bytes(self) -> bytes:
        """Private key file contents. Write them with mode 0600 (``hub.keyfiles``)."""
        return encode(
            _KeyFile(signing=self._signing, encryption=self._encryption, suite=self.suite)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AuthorityKeys:
        f = decode(data, _KeyFile, what="authority key file")
        if f.suite not in p.KEM_SUITES:
            raise UnsupportedVersion(f"authority key file: unknown suite {f.suite!r}")
        suite: p.KemSuite = "x25519" if f.suite == "x25519" else "mlkem768x25519"
        return cls(f.signing, f.encryption, suite)


class OperatorKey:
    """The hub operator's Ed25519 key: admits cards, signs directory snapshots."""

    __slots__ = ("_signer", "_signing", "public")

    def __init__(self, signing: bytes) -> None:
        self._signing = signing
        self._signer = p.SigningKey(signing)
        self.public = self._signer.public()

    def __repr__(self) -> str:
        return f"OperatorKey(public={self.public.hex()[:16]}..., private=<redacted>)"

    @classmethod
    def generate(cls) -> OperatorKey:
        return cls(p.ed25519_generate())

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message)

    def to_bytes(self) -> bytes:
        return encode(_OperatorKeyFile(signing=self._signing))

    @classmethod
    def from_bytes(cls, data: bytes) -> OperatorKey:
        return cls(decode(data, _OperatorKeyFile, what="operator key file").signing)


def verify_signature(public: bytes, signature: bytes, message: bytes) -> None:
    """Ed25519: return nothing, or raise :class:`~hub.errors.SignatureInvalid`. For callers
    that already hold the exact signed bytes (an auditor's workers)."""
    p.ed25519_verify(public, signature, message)


class KeyResolver(Protocol):
    """Finds the public key an authority used, as valid at a given time (the directory)."""

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        """The Ed25519 public key, or raise UnknownSender / KeyNotValid."""
        ...
