"""A home authority's signed consent to a liaison officer's accreditation (resolution 7/4 rec. 16).

Signature: Ed25519(home authority key, "mla-hub/v1/liaison-consent" 0x00 || consent bytes),
over the canonical bytes carried in ``SignedConsent.consent`` (STYLE rule 4). Verification is a
checklist, each step raising a typed error:

1. ``form``: the bytes decode as a ``LiaisonConsent``; home and host differ
2. ``key``: the home authority is admitted and ``key_id`` was its key when the consent was issued
3. ``signature``: the signature verifies over the exact bytes received
4. ``validity``: issued before ``now`` (give or take ``max_skew``), not expired at ``now``
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.crypto import _primitives as p
from hub.crypto.keys import AuthorityKeys, KeyResolver
from hub.errors import KeyNotValid, SignatureInvalid, ValidationError
from schemas.access import ConsentFile, LiaisonConsent, SignedConsent
from schemas.codec import decode, encode

__all__ = ["consent_digest", "open_consent", "sign_consent"]

_LABEL = b"mla-hub/v1/liaison-consent\x00"


def sign_consent(consent: LiaisonConsent, keys: AuthorityKeys) -> ConsentFile:
    """Sign ``consent`` with the home authority's key (whose id the consent must name)."""
    if consent.key_id != keys.key_id:
        raise ValidationError(
            f"key_id: the consent names key {consent.key_id}, the signing key is {keys.key_id}",
            field="key_id",
        )
    data = encode(consent)
    signed = SignedConsent(consent=data, signature=keys.sign(_LABEL + data))
    return ConsentFile(signed=signed, readable=decode(data, LiaisonConsent, what="consent"))


def open_consent(
    signed: SignedConsent,
    resolver: KeyResolver,
    *,
    now: datetime,
    max_skew: timedelta = timedelta(minutes=5),
) -> LiaisonConsent:
    """Verify a signed consent and return it, or raise a typed error naming the failed step.

    ``max_skew`` tolerates a home authority's clock that runs a little ahead of the hub's.
    """
    # (1) form
    consent = decode(signed.consent, LiaisonConsent, what="consent")
    if consent.home == consent.host:
        raise ValidationError("host: a liaison officer is posted with another authority")
    # (2) key: the home authority's key valid when it issued the consent
    public = resolver.signing_key(consent.home, consent.key_id, consent.issued_at)
    # (3) signature over the exact bytes received
    try:
        p.ed25519_verify(public, signed.signature, _LABEL + signed.consent)
    except SignatureInvalid as e:
        raise SignatureInvalid(
            f"signature: the consent is not signed by {consent.home}'s key {consent.key_id}"
        ) from e
    # (4) validity
    if consent.issued_at > now + max_skew:
        raise KeyNotValid(f"issued_at: the consent is dated in the future ({consent.issued_at})")
    if consent.valid_until <= now:
        raise KeyNotValid(f"valid_until: the consent expired at {consent.valid_until.isoformat()}")
    return consent


def consent_digest(signed: SignedConsent) -> bytes:
    """SHA-256 of the signed consent bytes: names the consent in token records and the ledger."""
    return p.sha256(signed.consent)
