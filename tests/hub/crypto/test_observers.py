"""Copying a liaison officer on a message (resolution 7/4 rec. 16): the officer's wrapped key is
held by ``liaison:<accreditation id>``, named in the signed header, and bound like any other."""

from __future__ import annotations

import msgspec
import pytest

from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys
from hub.errors import DecryptionFailed, NotARecipient, RecipientMismatch, SignatureInvalid
from schemas.codec import decode, encode
from schemas.envelope import Body, Envelope, Header
from tests.hub.crypto.test_envelope import CASE_ID, MESSAGE_ID, NOW, A, B, Directory, recipient

ACCREDITATION = "01a20db9-9003-75a2-b9f1-c30b99ac0042"
OFFICER = AuthorityKeys.generate()
HOLDER = sealing.observer_holder(ACCREDITATION)


def seal_with_officer(officer: AuthorityKeys = OFFICER) -> Envelope:
    return sealing.seal(
        sender="XA-MOJ",
        sender_keys=A,
        recipients=[recipient("XB-MOJ", B)],
        message_id=MESSAGE_ID,
        case_id=CASE_ID,
        type="request.submit",
        body=Body(text="for the liaison magistrate too"),
        now=NOW,
        observers=[(ACCREDITATION, recipient(HOLDER, officer))],
    )


def test_the_officer_and_the_recipient_both_open_it() -> None:
    envelope = seal_with_officer()
    header = decode(envelope.header, Header)
    assert header.observers == [ACCREDITATION] and header.recipients == ["XB-MOJ"]
    assert sorted(w.recipient for w in envelope.wrapped_keys) == sorted(["XB-MOJ", HOLDER])
    as_b = sealing.open(envelope, recipient="XB-MOJ", keys=[B], resolver=Directory())
    as_officer = sealing.open(envelope, recipient=HOLDER, keys=[OFFICER], resolver=Directory())
    assert as_b.body.text == as_officer.body.text == "for the liaison magistrate too"
    assert as_b.content_key == as_officer.content_key
    assert sealing.key_holders(header) == ["XB-MOJ", HOLDER]


def test_another_officer_key_does_not_open_it() -> None:
    with pytest.raises(DecryptionFailed, match="could not be decrypted"):
        sealing.open(
            seal_with_officer(),
            recipient=HOLDER,
            keys=[AuthorityKeys.generate()],
            resolver=Directory(),
        )


def test_an_officer_not_named_in_the_header_is_refused() -> None:
    with pytest.raises(NotARecipient, match="liaison:01a20db9-9003-75a2-b9f1-c30b99ac9999"):
        sealing.open(
            seal_with_officer(),
            recipient=sealing.observer_holder("01a20db9-9003-75a2-b9f1-c30b99ac9999"),
            keys=[OFFICER],
            resolver=Directory(),
        )


def test_dropping_the_officer_key_breaks_the_envelope() -> None:
    """The hub (or anyone) removing the copy is caught: the header still names the officer."""
    envelope = seal_with_officer()
    stripped = msgspec.structs.replace(
        envelope, wrapped_keys=[w for w in envelope.wrapped_keys if w.recipient != HOLDER]
    )
    with pytest.raises(RecipientMismatch, match="one key per header recipient and copied officer"):
        sealing.verify_envelope(stripped, Directory())


def test_relabelling_the_officer_key_breaks_the_signature() -> None:
    envelope = seal_with_officer()
    other = sealing.observer_holder("01a20db9-9003-75a2-b9f1-c30b99ac9999")
    renamed = msgspec.structs.replace(
        envelope,
        wrapped_keys=[
            msgspec.structs.replace(w, recipient=other) if w.recipient == HOLDER else w
            for w in envelope.wrapped_keys
        ],
    )
    with pytest.raises(RecipientMismatch):
        sealing.verify_envelope(renamed, Directory())
    header = decode(envelope.header, Header)
    forged_header = msgspec.structs.replace(header, observers=[other[len("liaison:") :]])
    forged = msgspec.structs.replace(renamed, header=encode(forged_header))
    with pytest.raises(SignatureInvalid):
        sealing.verify_envelope(forged, Directory())
