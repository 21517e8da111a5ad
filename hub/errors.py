"""The one typed error hierarchy of the hub (STYLE rule 7).

Every error carries a stable machine ``code`` (snake_case) so that the hub can answer an
authenticated sender with a reason it can act on, and a human message naming the field and
the rule that was broken. Only the edges (CLI, HTTP) turn these into exit codes or statuses.
"""

from __future__ import annotations

__all__ = [
    "AccessRefused",
    "AccreditationInvalid",
    "AttachmentMismatch",
    "CardInvalid",
    "ConflictError",
    "DecryptionFailed",
    "DigestMismatch",
    "DuplicateSubmission",
    "HubError",
    "InvalidTransition",
    "KeyNotValid",
    "Malformed",
    "NotARecipient",
    "RecipientMismatch",
    "Revoked",
    "RotationInvalid",
    "SchemaInvalid",
    "SenderMismatch",
    "SignatureInvalid",
    "StaleRecipientKey",
    "TooLarge",
    "UnavailableError",
    "UnknownMessage",
    "UnknownRecipient",
    "UnknownSender",
    "UnsupportedVersion",
    "ValidationError",
    "VerificationError",
]


class HubError(Exception):
    """Root of every error raised by the hub, its crypto and its ledger."""

    code = "hub_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


# --- bad input -------------------------------------------------------------------------------


class ValidationError(HubError):
    """The input does not have the required form; the message names the field and the rule."""

    code = "invalid"


class Malformed(ValidationError):
    """Bytes that cannot be decoded at all."""

    code = "malformed"


class SchemaInvalid(ValidationError):
    """Decodable bytes that break a schema rule (type, pattern, required field)."""

    code = "schema"


class UnsupportedVersion(ValidationError):
    """A schema tag or crypto suite this version of the hub does not accept."""

    code = "unsupported_version"


class TooLarge(ValidationError):
    """A submission or one of its parts exceeds a configured size limit."""

    code = "too_large"


class CardInvalid(ValidationError):
    """An authority card that cannot be admitted (bad self-signature, bad fields, expired)."""

    code = "card_invalid"


class AccreditationInvalid(ValidationError):
    """An access statement the hub cannot record (unknown or reused accreditation id, a term
    beyond the consent's, a party not admitted)."""

    code = "accreditation_invalid"


class InvalidTransition(ValidationError):
    """A case action that the lifecycle rules forbid in the case's current state."""

    code = "invalid_transition"

    def __init__(self, message: str, *, rule: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.rule = rule


# --- authenticity ------------------------------------------------------------------------------


class VerificationError(HubError):
    """Something claims an origin or integrity that does not check out."""

    code = "verification_failed"


class AccessRefused(VerificationError):
    """The transport refused our credentials: nkey not admitted, or revoked."""

    code = "access_refused"


class SignatureInvalid(VerificationError):
    code = "bad_signature"


class DigestMismatch(VerificationError):
    code = "digest_mismatch"


class AttachmentMismatch(VerificationError):
    code = "attachment_mismatch"


class DecryptionFailed(VerificationError):
    """Deliberately opaque on the recipient side: no oracle on why decryption failed."""

    code = "decryption_failed"


class KeyNotValid(VerificationError):
    """A key that is unknown, revoked, or outside its validity period at signing time."""

    code = "key_not_valid"


class UnknownSender(VerificationError):
    code = "unknown_sender"


class UnknownRecipient(VerificationError):
    code = "unknown_recipient"


class SenderMismatch(VerificationError):
    """The header names a sender other than the one whose intake subject carried it."""

    code = "sender_mismatch"


class RecipientMismatch(VerificationError):
    """The wrapped keys do not match the header's recipient list."""

    code = "recipient_mismatch"


class NotARecipient(VerificationError):
    """A receipt from an authority the acknowledged message was not addressed to."""

    code = "not_a_recipient"


class UnknownMessage(VerificationError):
    """A receipt or reply for a message the ledger does not hold."""

    code = "unknown_message"


class Revoked(VerificationError):
    """The operator revoked this authority: it may not submit, nor be addressed, any more."""

    code = "revoked"


class RotationInvalid(VerificationError):
    """A card with new keys for an admitted authority, not signed by its current key."""

    code = "bad_rotation"


class StaleRecipientKey(VerificationError):
    """Sealed to a recipient key that a rotation replaced: fetch the directory, seal again."""

    code = "stale_recipient_key"


# --- state -----------------------------------------------------------------------------------


class ConflictError(HubError):
    """The action conflicts with what is already recorded."""

    code = "conflict"


class DuplicateSubmission(ConflictError):
    code = "duplicate"


# --- infrastructure ----------------------------------------------------------------------------


class UnavailableError(HubError):
    """A dependency (NATS, the hub) cannot be reached now; the action may be retried."""

    code = "unavailable"
