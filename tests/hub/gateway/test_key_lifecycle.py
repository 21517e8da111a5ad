"""The admission rules for the key lifecycle (issue 5): cards, rotation, revocation, expiry.

Every decision is the hub's own (``hub.gateway.admission.admit``) on a ``HubState`` folded from
the entries it accepted, so each test asserts the exact typed reason and message an operator or
a sender would read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from hub.crypto import cards, receipts
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.errors import CardInvalid
from hub.gateway.admission import Accept, Decision, Duplicate, Limits, Reject, admit
from hub.ledger.projections.state import HubState
from hub.operator import admission_request, revocation_request
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.codec import encode
from schemas.directory import AdmissionRequest, CardFile
from schemas.envelope import Body, Header
from schemas.ledger import LedgerEntry

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OPERATOR = OperatorKey.generate()
A, B = "XA-MOJ", "XB-MOJ"


def _settings(authority: str) -> AgentSettings:
    return AgentSettings(
        id=authority, state=authority[:2], name=authority, kinds=["mla"], languages=["en"]
    )


def _id(n: int) -> str:
    return str(uuid.UUID(int=n))


class Hub:
    """A ``HubState`` that records what ``admit`` accepts, at the time it is told."""

    def __init__(self) -> None:
        self.state = HubState()
        self.keys: dict[str, AuthorityKeys] = {}
        self._ids = 0

    def next_id(self) -> str:
        self._ids += 1
        return _id(self._ids)

    def decide(self, raw: bytes, sender: str, now: datetime) -> Decision:
        return admit(
            raw,
            intake_sender=sender,
            state=self.state,
            limits=Limits(),
            now=now,
            operator_key=OPERATOR.public,
        )

    def record(self, raw: bytes, sender: str, now: datetime) -> int:
        """Decide; the decision must be ``Accept``; append it at ``now``; its index."""
        decision = self.decide(raw, sender, now)
        assert isinstance(decision, Accept), decision
        index = self.state.next_index
        self.state.apply(LedgerEntry(index=index, recorded_at=now, event=decision.event))
        return index

    def reject(self, raw: bytes, sender: str, now: datetime) -> Reject:
        decision = self.decide(raw, sender, now)
        assert isinstance(decision, Reject), decision
        return decision

    def admission(self, made: CardFile, now: datetime = NOW) -> bytes:
        return encode(admission_request(made, OPERATOR, now=now))

    def join(self, authority: str, now: datetime = NOW) -> int:
        keys = AuthorityKeys.generate("x25519")
        self.keys[authority] = keys
        made = card_file(_settings(authority), keys, now=now - timedelta(days=1))
        return self.record(self.admission(made, now), "OPERATOR", now)

    def rotate(self, authority: str, now: datetime) -> int:
        old, new = self.keys[authority], AuthorityKeys.generate("x25519")
        made = card_file(_settings(authority), new, now=now, previous=old)
        index = self.record(self.admission(made, now), "OPERATOR", now)
        self.keys[authority] = new
        return index

    def revoke(self, authority: str, now: datetime, reason: str = "no longer designated") -> int:
        request = revocation_request(authority, reason, OPERATOR)
        return self.record(encode(request), "OPERATOR", now)

    def envelope(
        self,
        sender: str,
        recipient: str,
        at: datetime,
        *,
        keys: AuthorityKeys | None = None,
        to: sealing.Recipient | None = None,
    ) -> bytes:
        """A fresh request from ``sender`` signed at ``at`` (by ``keys``, default the current
        ones), sealed to ``to`` (default: the directory's current key of ``recipient``)."""
        return encode(
            sealing.seal(
                sender=sender,
                sender_keys=keys or self.keys[sender],
                recipients=[to or self.state.directory.recipient(recipient)],
                message_id=self.next_id(),
                case_id=self.next_id(),
                type="request.submit",
                body=Body(text="evidence"),
                now=at,
            )
        )


@pytest.fixture
def hub() -> Hub:
    made = Hub()
    made.join(A)
    made.join(B)
    return made


def _refused(decision: Reject, code: str, message: str) -> None:
    assert (decision.error.code, str(decision.error)) == (code, message)
    assert (decision.event.reason, decision.event.detail) == (code, message)


class TestCardsAtAdmission:
    """A card is refused at admission when it is badly self-signed, admitted by an unknown
    operator key, or expired."""

    def test_bad_self_signature(self) -> None:
        hub = Hub()
        made = card_file(_settings(A), AuthorityKeys.generate("x25519"), now=NOW)
        signed = made.signed
        forged = msgspec.structs.replace(
            signed, signature=AuthorityKeys.generate("x25519").sign(b"mla-hub/v1/card\x00")
        )
        request = AdmissionRequest(
            request_id=_id(1),
            signed=forged,
            operator_signature=cards.admit(signed, OPERATOR, now=NOW),  # over the card digest
        )
        _refused(
            hub.reject(encode(request), "OPERATOR", NOW),
            "card_invalid",
            "signature: the card's self-signature does not verify",
        )

    def test_unknown_operator_signature(self) -> None:
        made = card_file(_settings(A), AuthorityKeys.generate("x25519"), now=NOW)
        request = admission_request(made, OperatorKey.generate(), now=NOW)
        _refused(
            Hub().reject(encode(request), "OPERATOR", NOW),
            "bad_signature",
            "operator_signature: not made by this hub's operator key",
        )

    def test_expired_card(self) -> None:
        made = card_file(_settings(A), AuthorityKeys.generate("x25519"), now=NOW, valid_days=30)
        until = made.readable.valid_until
        assert until is not None
        late = until + timedelta(seconds=1)
        signed_in_time = admission_request(made, OPERATOR, now=until - timedelta(days=1))
        _refused(
            Hub().reject(encode(signed_in_time), "OPERATOR", late),
            "card_invalid",
            f"valid_until: the card expired at {until.isoformat()}",
        )
        with pytest.raises(CardInvalid, match="valid_until: the card expired at"):
            admission_request(made, OPERATOR, now=late)  # the operator's side refuses it too


class TestRotation:
    """New keys need a card signed by the current key; the old key stays valid for what it
    signed before the rotation was recorded, and nothing may be sealed to it any more."""

    def test_rotation_signed_by_the_current_key(self, hub: Hub) -> None:
        old = hub.keys[A]
        at = NOW + timedelta(hours=1)
        index = hub.rotate(A, at)
        record = hub.state.directory.get(A)
        assert record is not None and record.card.previous_key_id == old.key_id
        history = {k.key_id: k for k in hub.state.directory.key_history(A)}
        assert history[old.key_id].retired_at == at
        assert history[old.key_id].retired_index == index
        assert history[old.key_id].superseded_by == hub.keys[A].key_id

    def test_new_keys_without_a_rotation_card(self, hub: Hub) -> None:
        current = hub.keys[A].key_id
        made = card_file(_settings(A), AuthorityKeys.generate("x25519"), now=NOW)
        _refused(
            hub.reject(hub.admission(made), "OPERATOR", NOW),
            "bad_rotation",
            f"previous_key_id: XA-MOJ's current key is {current}, the card names none; new "
            "keys need a card made by `node-agent rotate`",
        )

    def test_rotation_signature_missing(self, hub: Hub) -> None:
        current = hub.keys[A]
        made = card_file(_settings(A), AuthorityKeys.generate("x25519"), now=NOW, previous=current)
        unsigned = msgspec.structs.replace(
            made, signed=msgspec.structs.replace(made.signed, rotation_signature=None)
        )
        _refused(
            hub.reject(hub.admission(unsigned), "OPERATOR", NOW),
            "bad_rotation",
            f"rotation_signature: missing; XA-MOJ's new card must be signed by its current key "
            f"{current.key_id}",
        )

    def test_rotation_signed_by_another_key(self, hub: Hub) -> None:
        made = card_file(
            _settings(A), AuthorityKeys.generate("x25519"), now=NOW, previous=hub.keys[A]
        )
        impostor = AuthorityKeys.generate("x25519")
        forged = msgspec.structs.replace(
            made,
            signed=msgspec.structs.replace(
                made.signed,
                rotation_signature=impostor.sign(b"mla-hub/v1/rotation\x00" + made.signed.card),
            ),
        )
        _refused(
            hub.reject(hub.admission(forged), "OPERATOR", NOW),
            "bad_rotation",
            "rotation_signature: not made by the authority's current key over this card",
        )

    def test_no_return_to_a_replaced_key(self, hub: Hub) -> None:
        old = hub.keys[A]
        index = hub.state.directory.key_history(A)[0].admitted_index
        hub.rotate(A, NOW + timedelta(hours=1))
        back = card_file(_settings(A), old, now=NOW, previous=hub.keys[A])
        _refused(
            hub.reject(hub.admission(back), "OPERATOR", NOW + timedelta(hours=2)),
            "bad_rotation",
            f"keys: XA-MOJ already published key {old.key_id} (ledger index {index}); a "
            "rotation needs new keys",
        )

    def test_same_keys_renew_the_card_without_rotation(self, hub: Hub) -> None:
        renewed = card_file(_settings(A), hub.keys[A], now=NOW, valid_days=730)
        hub.record(hub.admission(renewed), "OPERATOR", NOW)

    def test_old_key_valid_before_the_rotation_only(self, hub: Hub) -> None:
        old = hub.keys[A]
        rotated_at = NOW + timedelta(hours=1)
        index = hub.rotate(A, rotated_at)
        new = hub.keys[A].key_id
        before = hub.envelope(A, B, rotated_at - timedelta(seconds=1), keys=old)
        hub.record(before, A, rotated_at + timedelta(minutes=10))  # queued while offline
        signed_at = rotated_at + timedelta(seconds=1)
        _refused(
            hub.reject(hub.envelope(A, B, signed_at, keys=old), A, signed_at),
            "key_not_valid",
            f"sender_key_id: key {old.key_id} of XA-MOJ was replaced by key {new} at "
            f"{rotated_at.isoformat()} (ledger index {index}); signed at {signed_at.isoformat()}",
        )
        hub.record(hub.envelope(A, B, signed_at), A, signed_at)  # the new key

    def test_sealed_to_a_replaced_key(self, hub: Hub) -> None:
        stale = hub.state.directory.recipient(B)
        at = NOW + timedelta(hours=1)
        index = hub.rotate(B, at)
        current = hub.keys[B].key_id
        _refused(
            hub.reject(hub.envelope(A, B, at, to=stale), A, at),
            "stale_recipient_key",
            f"wrapped_keys: sealed to XB-MOJ's key {stale.key_id}, which is no longer current "
            f"(now {current}, admitted at ledger index {index}); fetch the directory and seal "
            "again",
        )

    def test_a_retry_recorded_before_the_rotation_stays_a_duplicate(self, hub: Hub) -> None:
        raw = hub.envelope(A, B, NOW)
        index = hub.record(raw, A, NOW)
        hub.rotate(B, NOW + timedelta(hours=1))
        decision = hub.decide(raw, A, NOW + timedelta(hours=1))
        assert isinstance(decision, Duplicate) and decision.ledger_index == index


class TestRevocation:
    """Revocation: the operator's signed command; afterwards the authority may neither submit
    nor be addressed, and what it signed before still verifies."""

    def test_only_the_operator_revokes(self, hub: Hub) -> None:
        request = encode(revocation_request(B, "compromised", OPERATOR))
        _refused(
            hub.reject(request, A, NOW),
            "sender_mismatch",
            "submission: only the operator may revoke authorities",
        )

    def test_signed_by_another_key(self, hub: Hub) -> None:
        request = encode(revocation_request(B, "compromised", OperatorKey.generate()))
        _refused(
            hub.reject(request, "OPERATOR", NOW),
            "bad_signature",
            "operator_signature: not made by this hub's operator key",
        )

    def test_reason_is_signed(self, hub: Hub) -> None:
        request = revocation_request(B, "compromised", OPERATOR)
        altered = msgspec.structs.replace(request, reason="routine")
        _refused(
            hub.reject(encode(altered), "OPERATOR", NOW),
            "bad_signature",
            "operator_signature: not made by this hub's operator key",
        )

    def test_unknown_authority(self, hub: Hub) -> None:
        request = encode(revocation_request("XQ-NONE", "never admitted", OPERATOR))
        _refused(
            hub.reject(request, "OPERATOR", NOW),
            "unknown_recipient",
            "authority: XQ-NONE is not admitted to the directory",
        )

    def test_twice_is_a_duplicate(self, hub: Hub) -> None:
        index = hub.revoke(B, NOW)
        again = hub.decide(encode(revocation_request(B, "again", OPERATOR)), "OPERATOR", NOW)
        assert isinstance(again, Duplicate) and again.ledger_index == index

    def test_new_submissions_by_the_revoked_authority(self, hub: Hub) -> None:
        at = NOW + timedelta(hours=1)
        index = hub.revoke(B, at, "designation withdrawn")
        later = at + timedelta(seconds=1)
        _refused(
            hub.reject(hub.envelope(B, A, later), B, later),
            "revoked",
            f"sender: XB-MOJ was revoked at {at.isoformat()} (ledger index {index}: designation "
            f"withdrawn); signed at {later.isoformat()}",
        )
        backdated = hub.envelope(B, A, at - timedelta(minutes=1))  # signed (or dated) before
        _refused(
            hub.reject(backdated, B, later),
            "revoked",
            f"sender: XB-MOJ was revoked at ledger index {index} ({at.isoformat()}): "
            "designation withdrawn; it can no longer submit",
        )

    def test_messages_to_the_revoked_authority(self, hub: Hub) -> None:
        stale = hub.state.directory.recipient(B)
        at = NOW + timedelta(hours=1)
        index = hub.revoke(B, at, "designation withdrawn")
        _refused(
            hub.reject(hub.envelope(A, B, at, to=stale), A, at),
            "revoked",
            f"recipients: XB-MOJ was revoked at ledger index {index} ({at.isoformat()}): "
            "designation withdrawn; nothing more can be sent to it",
        )

    def test_receipts_by_the_revoked_authority(self, hub: Hub) -> None:
        raw = hub.envelope(A, B, NOW)
        message_index = hub.record(raw, A, NOW)
        at = NOW + timedelta(hours=1)
        index = hub.revoke(B, at, "designation withdrawn")
        header = msgspec.msgpack.decode(msgspec.msgpack.decode(raw)["header"], type=Header)
        record = hub.state.messages.messages[header.message_id]
        receipt = receipts.issue(
            header=header,
            envelope_digest=record.envelope_digest,
            recipient=B,
            keys=hub.keys[B],
            ledger_index=message_index,
            receipt_id=hub.next_id(),
            now=at - timedelta(minutes=1),
        )
        _refused(
            hub.reject(encode(receipt), B, at),
            "revoked",
            f"recipient: XB-MOJ was revoked at ledger index {index} ({at.isoformat()}): "
            "designation withdrawn; it can no longer submit",
        )

    def test_a_revoked_id_is_not_admitted_again(self, hub: Hub) -> None:
        index = hub.revoke(B, NOW, "designation withdrawn")
        made = card_file(_settings(B), AuthorityKeys.generate("x25519"), now=NOW)
        _refused(
            hub.reject(hub.admission(made), "OPERATOR", NOW),
            "revoked",
            f"authority: XB-MOJ was revoked at ledger index {index} (designation withdrawn); a "
            "revoked id is not admitted again",
        )

    def test_history_still_verifies(self, hub: Hub) -> None:
        key = hub.keys[B]
        at = NOW + timedelta(hours=1)
        hub.revoke(B, at)
        directory = hub.state.directory
        assert directory.signing_key(B, key.key_id, at - timedelta(seconds=1)) == key.signing_public
        assert [r.card.id for r in directory.authorities()] == [A]  # who may connect
        assert not directory.is_admitted(B)
        status = {k.authority: k.status for k in directory.snapshot().keys}
        assert status == {A: "current", B: "revoked"}


class TestExpiry:
    """A key's signatures made after its card's ``valid_until`` are refused."""

    def test_signature_after_the_card_expired(self, hub: Hub) -> None:
        keys = hub.keys[A]
        record = hub.state.directory.get(A)
        assert record is not None and record.card.valid_until is not None
        until = record.card.valid_until
        late = until + timedelta(seconds=1)
        _refused(
            hub.reject(hub.envelope(A, B, late), A, late),
            "key_not_valid",
            f"sender_key_id: key {keys.key_id} of XA-MOJ expired at {until.isoformat()}; "
            f"signed at {late.isoformat()}",
        )
        hub.record(hub.envelope(A, B, until - timedelta(seconds=1)), A, late)
