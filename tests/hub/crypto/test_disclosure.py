"""Selective disclosure: one message's key proves its content against the ledger, nothing more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from hub.crypto import cards
from hub.crypto import envelope as sealing
from hub.crypto.disclosure import check_disclosure
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.errors import DecryptionFailed, DigestMismatch, SignatureInvalid, ValidationError
from hub.ledger.projections.state import HubState
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.disclosure import Disclosure
from schemas.envelope import Body
from schemas.ledger import AuthorityAdmitted, LedgerEntry

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OPERATOR = OperatorKey.generate()
A, B = AuthorityKeys.generate("x25519"), AuthorityKeys.generate("x25519")


def _history() -> tuple[HubState, list[LedgerEntry], list[Disclosure]]:
    state = HubState()
    entries: list[LedgerEntry] = []
    for name, keys in (("XA-MOJ", A), ("XB-MOJ", B)):
        made = card_file(
            AgentSettings(id=name, state=name[:2], name=name, kinds=["mla"], languages=["en"]),
            keys,
            now=NOW - timedelta(days=1),
        )
        entry = LedgerEntry(
            index=len(entries),
            recorded_at=NOW,
            event=AuthorityAdmitted(
                authority=name,
                signed=made.signed,
                operator_key=OPERATOR.public,
                operator_signature=cards.admit(made.signed, OPERATOR, now=NOW),
            ),
        )
        state.apply(entry)
        entries.append(entry)
    disclosures = []
    for n, text in enumerate(("first: the facts", "second: other facts")):
        key = sealing.new_content_key()
        env = sealing.seal(
            sender="XA-MOJ",
            sender_keys=A,
            recipients=[sealing.Recipient("XB-MOJ", B.key_id, B.suite, B.encryption_public)],
            message_id=f"01a20db9-9003-75a2-b9f1-c30b99ac896{n}",
            case_id=f"01a20db9-9000-7b1c-8313-afd169a9fbf{n}",
            type="request.submit",
            body=Body(text=text),
            now=NOW,
            content_key=key,
        )
        verified = sealing.verify_envelope(env, state.directory)
        entry = LedgerEntry(
            index=len(entries), recorded_at=NOW, event=sealing.record_of(verified, env)
        )
        state.apply(entry)
        entries.append(entry)
        disclosures.append(
            Disclosure(
                message_id=verified.header.message_id,
                ledger_index=entry.index,
                envelope=env,
                content_key=key,
                disclosed_by="XA-MOJ",
                disclosed_at=NOW,
            )
        )
    return state, entries, disclosures


class TestDisclosure:
    """(1) recorded envelope, (2) sender signature, (3) the key decrypts the signed parts."""

    def test_disclosed_message_is_proven(self) -> None:
        state, entries, (first, _) = _history()
        shown = check_disclosure(first, entries[2], state.directory)
        assert (shown.body.text, shown.header.sender, shown.ledger_index) == (
            "first: the facts",
            "XA-MOJ",
            2,
        )

    def test_key_opens_only_its_message(self) -> None:
        state, entries, (first, second) = _history()
        wrong = msgspec.structs.replace(second, content_key=first.content_key)
        with pytest.raises(DecryptionFailed):
            check_disclosure(wrong, entries[3], state.directory)

    def test_another_envelope_than_recorded(self) -> None:
        state, entries, (first, second) = _history()
        claimed = msgspec.structs.replace(second, ledger_index=2, message_id=first.message_id)
        with pytest.raises(DigestMismatch, match="not the one recorded at ledger index 2"):
            check_disclosure(claimed, entries[2], state.directory)

    def test_altered_ciphertext(self) -> None:
        state, entries, (first, _) = _history()
        env = first.envelope
        altered = msgspec.structs.replace(env, body=bytes([env.body[0] ^ 1]) + env.body[1:])
        with pytest.raises(SignatureInvalid):
            check_disclosure(
                msgspec.structs.replace(first, envelope=altered), entries[2], state.directory
            )

    def test_index_of_something_else(self) -> None:
        state, entries, (first, _) = _history()
        with pytest.raises(ValidationError, match="does not record an envelope"):
            check_disclosure(
                msgspec.structs.replace(first, ledger_index=0), entries[0], state.directory
            )
