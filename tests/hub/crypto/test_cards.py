"""hub/crypto/cards.py: rotation, revocation and directory-snapshot signatures, one test per
way of tampering."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from hub.crypto import cards
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.errors import RotationInvalid, SchemaInvalid, SignatureInvalid
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.directory import DirectorySnapshot, SignedSnapshot

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OPERATOR = OperatorKey.generate()
OLD, NEW = AuthorityKeys.generate("x25519"), AuthorityKeys.generate("x25519")
SETTINGS = AgentSettings(id="XA-MOJ", state="XA", name="A", kinds=["mla"], languages=["en"])


def flip(data: bytes, position: int = -1) -> bytes:
    i = position % len(data)
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


class TestRotation:
    """The previous key signs the new card's exact bytes."""

    def test_roundtrip(self) -> None:
        signed = card_file(SETTINGS, NEW, now=NOW, previous=OLD).signed
        assert signed.rotation_signature is not None
        cards.verify_rotation(signed, OLD.signing_public)

    def test_signed_by_another_key(self) -> None:
        signed = card_file(SETTINGS, NEW, now=NOW, previous=OLD).signed
        with pytest.raises(RotationInvalid, match="not made by the authority's current key"):
            cards.verify_rotation(signed, NEW.signing_public)

    def test_card_bytes_changed(self) -> None:
        signed = card_file(SETTINGS, NEW, now=NOW, previous=OLD).signed
        changed = msgspec.structs.replace(signed, card=flip(signed.card))
        with pytest.raises(RotationInvalid):
            cards.verify_rotation(changed, OLD.signing_public)

    def test_missing(self) -> None:
        signed = card_file(SETTINGS, NEW, now=NOW).signed
        with pytest.raises(RotationInvalid, match="rotation_signature: missing"):
            cards.verify_rotation(signed, OLD.signing_public)

    def test_only_by_the_key_the_card_names(self) -> None:
        signed = card_file(SETTINGS, NEW, now=NOW, previous=OLD).signed
        with pytest.raises(RotationInvalid, match="previous_key_id"):
            cards.sign_rotation(signed, NEW)

    def test_new_keys_required(self) -> None:
        with pytest.raises(RotationInvalid, match="keys: a rotated card must publish new keys"):
            card_file(SETTINGS, OLD, now=NOW, previous=OLD)


class TestRevocation:
    """The operator signs a length-prefixed transcript of the id and the reason."""

    def test_roundtrip(self) -> None:
        signature = cards.revoke("XB-MOJ", "compromised", OPERATOR)
        cards.verify_revocation("XB-MOJ", "compromised", OPERATOR.public, signature)

    @pytest.mark.parametrize(
        ("authority", "reason"), [("XC-MOJ", "compromised"), ("XB-MOJ", "routine")]
    )
    def test_other_fields(self, authority: str, reason: str) -> None:
        signature = cards.revoke("XB-MOJ", "compromised", OPERATOR)
        with pytest.raises(SignatureInvalid):
            cards.verify_revocation(authority, reason, OPERATOR.public, signature)

    def test_fields_cannot_slide(self) -> None:
        assert cards.revocation_transcript("XB-MOJA", "b") != cards.revocation_transcript(
            "XB-MOJ", "Ab"
        )


class TestSnapshot:
    """A snapshot opens only with the pinned operator key over its exact bytes."""

    SNAPSHOT = DirectorySnapshot(ledger_size=3, recorded_at=NOW, cards=[], keys=[], revoked=[])

    def test_roundtrip(self) -> None:
        signed = cards.sign_snapshot(self.SNAPSHOT, OPERATOR)
        assert cards.open_snapshot(signed, OPERATOR.public) == self.SNAPSHOT

    def test_another_operator(self) -> None:
        signed = cards.sign_snapshot(self.SNAPSHOT, OperatorKey.generate())
        with pytest.raises(SignatureInvalid, match="signed by another operator key"):
            cards.open_snapshot(signed, OPERATOR.public)

    def test_names_the_pinned_key_but_signed_by_another(self) -> None:
        forged = msgspec.structs.replace(
            cards.sign_snapshot(self.SNAPSHOT, OperatorKey.generate()),
            operator_key=OPERATOR.public,
        )
        with pytest.raises(SignatureInvalid, match="the operator's signature does not verify"):
            cards.open_snapshot(forged, OPERATOR.public)

    @pytest.mark.parametrize("field", ["snapshot", "signature"])
    def test_bit_flip(self, field: str) -> None:
        signed = cards.sign_snapshot(self.SNAPSHOT, OPERATOR)
        tampered = msgspec.structs.replace(signed, **{field: flip(getattr(signed, field))})
        with pytest.raises(SignatureInvalid):
            cards.open_snapshot(tampered, OPERATOR.public)

    def test_truncated(self) -> None:
        signed = cards.sign_snapshot(self.SNAPSHOT, OPERATOR)
        cut = SignedSnapshot(
            snapshot=signed.snapshot[:-1],
            operator_key=signed.operator_key,
            signature=signed.signature,
        )
        with pytest.raises(SignatureInvalid):
            cards.open_snapshot(cut, OPERATOR.public)

    def test_signed_garbage_is_a_schema_error(self) -> None:
        data = b"\x80"
        signed = SignedSnapshot(
            snapshot=data,
            operator_key=OPERATOR.public,
            signature=OPERATOR.sign(b"mla-hub/v1/directory-snapshot\x00" + data),
        )
        with pytest.raises(SchemaInvalid):
            cards.open_snapshot(signed, OPERATOR.public)
