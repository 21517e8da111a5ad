"""The auditor's replay of a history with a key rotation and a revocation (issue 5).

An honest history verifies: the old key's signatures made before the rotation, the new key's
after, and nothing by or to the revoked authority after its revocation. Each way of breaking
the key lifecycle is located exactly (index and check).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from hub import subjects
from hub.audit.outcome import Divergence, Report
from hub.audit.replay import Replayer
from hub.audit.runner import verify_entries
from hub.crypto import cards
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys, OperatorKey
from schemas.codec import decode
from schemas.directory import AuthorityCard, RevokedAuthority
from schemas.envelope import Body, CaseMeta
from schemas.ledger import AuthorityAdmitted, AuthorityRevoked, EnvelopeRecorded
from tests.hub.audit.history import (
    ANCHORS,
    KEYS,
    NOW,
    OPERATOR,
    History,
    authority_keys,
    every_checkpoint,
    mid,
)

A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"
ROTATED = authority_keys("XA-MOJ/rotated")


def at(index: int) -> datetime:
    """When the hub records entry ``index`` in these histories (``History.entry``)."""
    return NOW + timedelta(seconds=index)


def rotation(
    old: AuthorityKeys, new: AuthorityKeys = ROTATED, *, signer: AuthorityKeys | None = None
) -> AuthorityAdmitted:
    """A's card with ``new`` keys, rotation-signed by ``signer`` (default: ``old``)."""
    card = AuthorityCard(
        id=A,
        state="XA",
        name="Central Authority of XA",
        kinds=["mla"],
        languages=["en"],
        keys=new.public(),
        valid_from=NOW - timedelta(days=1),
        valid_until=NOW + timedelta(days=365),
        previous_key_id=old.key_id,
    )
    signed = cards.sign_card(card, new)
    signer = signer or old
    signed = msgspec.structs.replace(
        signed, rotation_signature=signer.sign(b"mla-hub/v1/rotation\x00" + signed.card)
    )
    return AuthorityAdmitted(
        authority=A,
        signed=signed,
        operator_key=OPERATOR.public,
        operator_signature=cards.admit(signed, OPERATOR, now=NOW),
    )


def revocation(
    authority: str, reason: str = "designation withdrawn", operator: OperatorKey = OPERATOR
) -> AuthorityRevoked:
    return AuthorityRevoked(
        authority=authority,
        reason=reason,
        operator_key=operator.public,
        operator_signature=cards.revoke(authority, reason, operator),
    )


class _Keys:
    def __init__(self, keys: dict[tuple[str, str], bytes]) -> None:
        self._keys = keys

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        return self._keys[(authority, key_id)]


def sealed(
    h: History,
    sender: str,
    recipient: str,
    *,
    keys: AuthorityKeys,
    sent_at: datetime,
    to: AuthorityKeys | None = None,
) -> EnvelopeRecorded:
    """A new consultation from ``sender`` signed by ``keys`` at ``sent_at``."""
    r = to or KEYS[recipient]
    envelope = sealing.seal(
        sender=sender,
        sender_keys=keys,
        recipients=[sealing.Recipient(recipient, r.key_id, r.suite, r.encryption_public)],
        message_id=h._next_id(),
        case_id=h._next_id(),
        type="request.submit",
        body=Body(text="request"),
        now=sent_at,
        meta=CaseMeta(kind="mla", legal_basis="untoc-art18"),
    )
    verified = sealing.verify_envelope(
        envelope, _Keys({(sender, keys.key_id): keys.signing_public})
    )
    return sealing.record_of(verified, envelope)


def lifecycle() -> History:
    """0-2 admissions; 3 A->B (old key); 4 its receipt; 5 A rotates; 6 A->C (new key);
    7 A->C signed by the old key just before the rotation, recorded after; 8 B revoked;
    9 C->A sealed to A's new key."""
    h = History()
    for authority in (A, B, C):
        h.admit(authority)
    submit = h.send(A, B, "request.submit", mid(1))
    h.receipt(submit)
    h.append(rotation(KEYS[A]))
    h.append(sealed(h, A, C, keys=ROTATED, sent_at=at(6)))
    h.append(sealed(h, A, C, keys=KEYS[A], sent_at=at(5) - timedelta(milliseconds=1)))
    h.append(revocation(B))
    h.append(sealed(h, C, A, keys=KEYS[C], sent_at=at(9), to=ROTATED))
    return h


def replay(entries: Sequence[bytes]) -> Report | Divergence:
    result = verify_entries(
        enumerate(entries), ANCHORS, checkpoints=every_checkpoint(entries), workers=1
    )
    outcome = result.report or result.divergence
    assert outcome is not None
    return outcome


def diverges(entries: Sequence[bytes], index: int, check: str) -> Divergence:
    outcome = replay(entries)
    assert isinstance(outcome, Divergence), outcome
    assert (outcome.index, outcome.check) == (index, check), outcome
    return outcome


class TestHonestHistory:
    """A rotation in the middle of a case and a revocation: everything verifies."""

    def test_verifies(self) -> None:
        outcome = replay(lifecycle().entries)
        assert isinstance(outcome, Report), outcome
        assert (outcome.entries, outcome.admissions, outcome.rotations) == (10, 4, 1)
        assert (outcome.revocations, outcome.envelopes, outcome.receipts) == (1, 4, 1)

    def test_directory_projection(self) -> None:
        replayer = Replayer(ANCHORS)
        for index, data in enumerate(lifecycle().entries):
            replayer.feed(index, data)
        served = replayer.directory_projection()
        assert subjects.card_key(B) not in served  # revoked: no current card served
        assert decode(served[subjects.revoked_key(B)], RevokedAuthority).ledger_index == 8
        for key_id in (KEYS[A].key_id, ROTATED.key_id, KEYS[B].key_id):
            owner = A if key_id != KEYS[B].key_id else B
            assert subjects.key_history_key(owner, key_id) in served  # history stays
        keys = {(k.authority, k.key_id): k for k in replayer.state.directory.snapshot().keys}
        old = keys[(A, KEYS[A].key_id)]
        assert (old.status, old.retired_at, old.superseded_by) == ("retired", at(5), ROTATED.key_id)
        assert keys[(B, KEYS[B].key_id)].revoked_at == at(8)


class TestRotationBroken:
    """Rotation rules and key validity, replayed."""

    def test_old_key_signing_after_the_rotation(self) -> None:
        h = lifecycle()
        h.entries[7] = h.entry(sealed(h, A, C, keys=KEYS[A], sent_at=at(5)), 7)
        d = diverges(h.entries, 7, "sender_key")
        assert "was replaced by key" in d.found

    def test_new_keys_without_rotation(self) -> None:
        h = lifecycle()
        event = rotation(KEYS[A])
        card = decode(event.signed.card, AuthorityCard)
        bare = cards.sign_card(msgspec.structs.replace(card, previous_key_id=None), ROTATED)
        h.entries[5] = h.entry(
            AuthorityAdmitted(
                authority=A,
                signed=bare,
                operator_key=OPERATOR.public,
                operator_signature=cards.admit(bare, OPERATOR, now=NOW),
            ),
            5,
        )
        d = diverges(h.entries, 5, "rotation")
        assert d.found.startswith("bad_rotation: previous_key_id:")

    def test_rotation_signed_by_another_key(self) -> None:
        h = lifecycle()
        h.entries[5] = h.entry(rotation(KEYS[A], signer=authority_keys("impostor")), 5)
        diverges(h.entries, 5, "rotation_signature")


class TestRevocationBroken:
    """Revocations are the pinned operator's, once, of an admitted authority; nothing is
    recorded by or to the authority afterwards."""

    def test_by_another_operator_key(self) -> None:
        h = lifecycle()
        h.entries[8] = h.entry(revocation(B, operator=OperatorKey(b"\x01" * 32)), 8)
        diverges(h.entries, 8, "operator_key")

    def test_reason_altered(self) -> None:
        h = lifecycle()
        event = revocation(B)
        h.entries[8] = h.entry(msgspec.structs.replace(event, reason="routine"), 8)
        diverges(h.entries, 8, "revocation_signature")

    def test_unknown_authority(self) -> None:
        h = lifecycle()
        h.entries[8] = h.entry(revocation("XQ-NONE"), 8)
        diverges(h.entries, 8, "revocation")

    def test_revoked_twice(self) -> None:
        h = lifecycle()
        h.append(revocation(B, "again"))
        diverges(h.entries, 10, "revocation")

    def test_submission_by_the_revoked_after(self) -> None:
        h = lifecycle()
        h.append(sealed(h, B, C, keys=KEYS[B], sent_at=at(10)))
        d = diverges(h.entries, 10, "sender_key")
        assert d.found.startswith("revoked: sender: XB-MOJ was revoked at")

    def test_backdated_submission_by_the_revoked(self) -> None:
        h = lifecycle()
        h.append(sealed(h, B, C, keys=KEYS[B], sent_at=at(7)))
        diverges(h.entries, 10, "revoked_party")

    def test_message_to_the_revoked(self) -> None:
        h = lifecycle()
        h.append(sealed(h, C, B, keys=KEYS[C], sent_at=at(10)))
        diverges(h.entries, 10, "revoked_party")

    def test_readmission_of_a_revoked_id(self) -> None:
        h = lifecycle()
        h.admit(B)
        diverges(h.entries, 10, "revoked_party")


class TestCardTerm:
    """The hub refuses a card past its ``valid_until``; the replay does too, at recorded_at."""

    def test_an_expired_card_admitted(self) -> None:
        h = History()
        keys = authority_keys("XD-MOJ")
        card = AuthorityCard(
            id="XD-MOJ",
            state="XD",
            name="Central Authority of XD",
            kinds=["mla"],
            languages=["en"],
            keys=keys.public(),
            valid_from=NOW - timedelta(days=30),
            valid_until=NOW,  # entry 0 is recorded at NOW: the card has just ended
        )
        signed = cards.sign_card(card, keys)
        index = h.append(
            AuthorityAdmitted(
                authority="XD-MOJ",
                signed=signed,
                operator_key=OPERATOR.public,
                operator_signature=cards.admit(signed, OPERATOR, now=NOW - timedelta(minutes=1)),
            )
        )
        outcome = diverges(h.entries, index, "card_expired")
        assert outcome.found == f"valid until {NOW.isoformat()}"
