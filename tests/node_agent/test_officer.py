"""Opening copies as a liaison officer (``node_agent.officer.open_copies``): each check trusts
only the pinned operator key; one test per way the hub (or anyone) could tamper."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from hub.crypto import cards
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.errors import KeyNotValid, SignatureInvalid, ValidationError
from hub.ledger.projections.state import HubState
from node_agent.officer import OfficerPaths, init_officer, load_officer, open_copies
from schemas.access import CaseCopies, SealedCopy
from schemas.codec import decode, encode
from schemas.directory import AdmittedCard
from schemas.envelope import Body
from schemas.ledger import AuthorityAdmitted, LedgerEntry
from tests.hub.audit.history import KEYS, NOW, OPERATOR, History, mid, standard

A, B = "XA-MOJ", "XB-MOJ"
ACCREDITATION = mid(4242)
OFFICER = AuthorityKeys.generate("x25519")


def _admitted(h: History, authority: str) -> AdmittedCard:
    for data in h.entries:
        event = decode(data, LedgerEntry).event
        if isinstance(event, AuthorityAdmitted) and event.authority == authority:
            return AdmittedCard(
                signed=event.signed,
                operator_signature=event.operator_signature,
                operator_key=event.operator_key,
                card_digest=cards.card_digest(event.signed),
                ledger_index=decode(data, LedgerEntry).index,
            )
    raise AssertionError(authority)


def _copies(*, sender_keys: AuthorityKeys = KEYS[A], card_of: str = A) -> CaseCopies:
    h = standard()
    state = HubState()
    for data in h.entries:
        state.apply(decode(data, LedgerEntry))
    envelope = sealing.seal(
        sender=A,
        sender_keys=sender_keys,
        recipients=[sealing.Recipient(B, KEYS[B].key_id, KEYS[B].suite, KEYS[B].encryption_public)],
        message_id=mid(800),
        case_id=mid(801),
        type="request.submit",
        body=Body(text="for the officer"),
        now=NOW + timedelta(minutes=5),
        observers=[
            (
                ACCREDITATION,
                sealing.Recipient(
                    sealing.observer_holder(ACCREDITATION),
                    OFFICER.key_id,
                    OFFICER.suite,
                    OFFICER.encryption_public,
                ),
            )
        ],
    )
    snapshot = cards.sign_snapshot(state.directory_snapshot(), OPERATOR)
    copy = SealedCopy(
        message_id=mid(800),
        ledger_index=99,
        type="request.submit",
        sender=A,
        envelope=encode(envelope),
        sender_card=encode(_admitted(h, card_of)),
    )
    return CaseCopies(
        case_id=mid(801), accreditation_id=ACCREDITATION, snapshot=encode(snapshot), copies=[copy]
    )


def test_a_genuine_copy_opens() -> None:
    [read] = open_copies(_copies(), OFFICER, OPERATOR.public)
    assert (read.error, read.text, read.sender, read.type) == (
        None,
        "for the officer",
        A,
        "request.submit",
    )


def test_a_snapshot_signed_by_another_operator_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        open_copies(_copies(), OFFICER, OperatorKey(bytes(32)).public)


def test_a_card_of_another_authority_is_reported() -> None:
    [read] = open_copies(_copies(card_of=B), OFFICER, OPERATOR.public)
    assert read.error == f"bad_signature: sender_card: the card is {B}'s, not {A}'s"


def test_a_message_signed_by_a_key_not_in_the_card_is_reported() -> None:
    forger = AuthorityKeys.generate("x25519")
    [read] = open_copies(_copies(sender_keys=forger), OFFICER, OPERATOR.public)
    assert read.error is not None and read.error.startswith("key_not_valid: sender_key_id:")


def test_a_copy_without_a_card_or_with_a_forged_admission_is_reported() -> None:
    copies = _copies()
    no_card = msgspec.structs.replace(copies.copies[0], sender_card=None)
    [read] = open_copies(
        msgspec.structs.replace(copies, copies=[no_card]), OFFICER, OPERATOR.public
    )
    assert read.error == f"key_not_valid: sender_card: the hub gave no card for {A}'s key"
    card = decode(copies.copies[0].sender_card or b"", AdmittedCard)
    forged = msgspec.structs.replace(card, operator_signature=bytes(64))
    bad = msgspec.structs.replace(copies.copies[0], sender_card=encode(forged))
    [read] = open_copies(msgspec.structs.replace(copies, copies=[bad]), OFFICER, OPERATOR.public)
    assert read.error is not None and read.error.startswith("bad_signature:")


def test_no_snapshot_no_reading() -> None:
    with pytest.raises(KeyNotValid, match="no signed directory snapshot"):
        open_copies(msgspec.structs.replace(_copies(), snapshot=None), OFFICER, OPERATOR.public)


def test_officer_folder(tmp_path: Path) -> None:
    paths = OfficerPaths(tmp_path / "o")
    public = init_officer(paths, "XA-LO-1", OPERATOR.public)
    settings, keys = load_officer(paths)
    assert (settings.officer, settings.operator_key) == ("XA-LO-1", OPERATOR.public)
    assert keys.public() == public
    assert (paths.keys.stat().st_mode & 0o077) == 0
    with pytest.raises(ValidationError, match="already holds an officer"):
        init_officer(paths, "XA-LO-1", OPERATOR.public)
    with pytest.raises(ValidationError, match="officer"):
        init_officer(OfficerPaths(tmp_path / "p"), "no spaces allowed", OPERATOR.public)
    with pytest.raises(ValidationError, match="holds no officer"):
        load_officer(OfficerPaths(tmp_path / "nobody"))
