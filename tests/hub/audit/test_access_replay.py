"""The auditor's replay of accreditations and copied liaison officers (issue 5, rec. 16).

An honest history with a liaison accreditation, an auditor, a message copying the officer and a
revocation verifies; each way of breaking the access rules is located exactly (index, check).
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from hub.audit.outcome import Report
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys, OperatorKey
from schemas.codec import decode
from schemas.envelope import Body, CaseMeta
from schemas.ledger import AccessRecorded, EnvelopeRecorded, LedgerEntry
from tests import access_events as ev
from tests.hub.audit.history import KEYS, NOW, History, mid, standard
from tests.hub.audit.test_key_lifecycle import diverges, replay

A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"
OFFICER = AuthorityKeys.generate("x25519")
LIAISON, AUDITOR = mid(3001), mid(3002)


def _accredit(h: History, accreditation_id: str = LIAISON, **consent: object) -> int:
    signed = ev.consent("XA-LO-1", A, B, officer_keys=OFFICER.public(), **consent)  # type: ignore[arg-type]
    return h.append(
        ev.recorded(ev.liaison(accreditation_id, "XA-LO-1", A, B, signed_consent=signed))
    )


def _copying(
    h: History, accreditation_id: str, *, sender: str = A, to: str = B
) -> EnvelopeRecorded:
    holder = sealing.observer_holder(accreditation_id)
    envelope = sealing.seal(
        sender=sender,
        sender_keys=KEYS[sender],
        recipients=[
            sealing.Recipient(to, KEYS[to].key_id, KEYS[to].suite, KEYS[to].encryption_public)
        ],
        message_id=h._next_id(),
        case_id=h._next_id(),
        type="request.submit",
        body=Body(text="copied"),
        now=NOW + timedelta(seconds=len(h.entries)),
        meta=CaseMeta(kind="mla", legal_basis="untoc-art18"),
        observers=[
            (
                accreditation_id,
                sealing.Recipient(holder, OFFICER.key_id, OFFICER.suite, OFFICER.encryption_public),
            )
        ],
    )

    class _Keys:
        def signing_key(self, authority: str, key_id: str, at: object) -> bytes:
            return KEYS[authority].signing_public

    return sealing.record_of(sealing.verify_envelope(envelope, _Keys()), envelope)


def honest() -> History:
    h = standard()
    _accredit(h)
    h.append(ev.recorded(ev.auditor(AUDITOR)))
    h.append(_copying(h, LIAISON))
    h.append(ev.recorded(ev.revocation(LIAISON, "posting ended")))
    return h


def test_an_honest_history_with_accreditations_verifies() -> None:
    outcome = replay(honest().entries)
    assert isinstance(outcome, Report), outcome
    assert outcome.accreditations == 3


def test_a_statement_by_another_operator_key() -> None:
    h = standard()
    index = h.append(ev.recorded(ev.auditor(AUDITOR), OperatorKey(bytes(32))))
    diverges(h.entries, index, "operator_key")


def test_a_forged_operator_signature() -> None:
    h = standard()
    genuine = ev.recorded(ev.auditor(AUDITOR))
    index = h.append(msgspec.structs.replace(genuine, operator_signature=bytes(64)))
    diverges(h.entries, index, "access_signature")


def test_a_consent_not_signed_by_the_home_authority() -> None:
    h = standard()
    index = _accredit(h, keys=KEYS[C])
    outcome = diverges(h.entries, index, "accreditation")
    assert "key_not_valid" in outcome.found, outcome


def test_an_accreditation_beyond_its_consent() -> None:
    h = standard()
    index = _accredit(h, valid_until=NOW + timedelta(days=2))  # the accreditation runs 10 days
    outcome = diverges(h.entries, index, "accreditation")
    assert "after the end of the home authority's consent" in outcome.found, outcome


def test_the_same_statement_recorded_twice() -> None:
    h = standard()
    _accredit(h)
    index = h.append(decode_event(h.entries[-1]))
    diverges(h.entries, index, "accreditation")


def test_a_revocation_of_nothing() -> None:
    h = standard()
    index = h.append(ev.recorded(ev.revocation(mid(3999))))
    outcome = diverges(h.entries, index, "accreditation")
    assert "no accreditation" in outcome.found


def test_a_message_copying_a_revoked_officer() -> None:
    h = standard()
    _accredit(h)
    h.append(ev.recorded(ev.revocation(LIAISON)))
    index = h.append(_copying(h, LIAISON))
    outcome = diverges(h.entries, index, "observers")
    assert "was revoked" in outcome.found


def test_a_message_copying_someone_elses_officer() -> None:
    h = standard()
    _accredit(h)
    index = h.append(_copying(h, LIAISON, sender=B, to=A))
    outcome = diverges(h.entries, index, "observers")
    assert f"not a liaison officer of {B}" in outcome.found


def decode_event(data: bytes) -> AccessRecorded:
    event = decode(data, LedgerEntry).event
    assert isinstance(event, AccessRecorded)
    return event
