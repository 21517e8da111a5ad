"""A liaison officer's own keys, and reading the copies a home authority sealed to them.

Resolution 7/4 rec. 16. The officer keeps an Ed25519 + HPKE key pair in a folder of their own
(``node-agent officer init``); the public half goes into the home authority's consent
(``node-agent liaison consent --officer-keys``), so the operator's accreditation records it
and the home authority's agent may seal its messages to the officer as well.

Opening a copy trusts nothing the hub says beyond bytes (:func:`open_copies`, pure):

1. the directory snapshot verifies against the operator key the officer pinned at init;
2. the sender's admitted card verifies (operator admission and self-signature), names the
   sender, and publishes the key that signed the message;
3. the snapshot says that key was valid when the message was signed (card term, rotation,
   revocation: ``check_key_window``);
4. the envelope's signature verifies with it; the officer's wrapped key opens the content, and
   the attachments match the signed body.

A copy that fails any step is reported with the typed reason, and the others still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from hub.crypto import cards
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys
from hub.errors import HubError, KeyNotValid, SignatureInvalid, ValidationError
from hub.keyfiles import read_private, write_private
from hub.ledger.projections.directory import check_key_window
from schemas.access import CaseCopies, OfficerId, SealedCopy
from schemas.codec import Strict, decode, decode_json
from schemas.directory import AdmittedCard, DirectorySnapshot, PublicKeys, SignedSnapshot
from schemas.envelope import Envelope

__all__ = [
    "OfficerPaths",
    "OfficerSettings",
    "ReadCopy",
    "init_officer",
    "load_officer",
    "open_copies",
]


class OfficerSettings(Strict, frozen=True, kw_only=True, tag="mla.officer.settings.v1"):
    """``officer.json``: who the officer is and the operator key their reading trusts."""

    officer: OfficerId
    operator_key: bytes


@dataclass(frozen=True, slots=True)
class OfficerPaths:
    root: Path

    @property
    def settings(self) -> Path:
        return self.root / "officer.json"

    @property
    def keys(self) -> Path:
        return self.root / "keys" / "officer.key"


def init_officer(paths: OfficerPaths, officer: str, operator_key: bytes) -> PublicKeys:
    """Create the officer's folder and keys; return the public keys for the home authority."""
    if paths.settings.exists():
        raise ValidationError(f"--data: {paths.root} already holds an officer", field="data")
    settings = OfficerSettings(officer=officer, operator_key=operator_key)
    data = msgspec.json.format(msgspec.json.encode(settings)) + b"\n"
    decode_json(data, OfficerSettings, what="officer settings")  # the id pattern, before keys
    keys = AuthorityKeys.generate()
    write_private(paths.keys, keys.to_bytes())
    paths.settings.write_bytes(data)
    return keys.public()


def load_officer(paths: OfficerPaths) -> tuple[OfficerSettings, AuthorityKeys]:
    try:
        data = paths.settings.read_bytes()
    except FileNotFoundError:
        raise ValidationError(f"--data: {paths.root} holds no officer (officer init)") from None
    settings = decode_json(data, OfficerSettings, what=str(paths.settings))
    return settings, AuthorityKeys.from_bytes(read_private(paths.keys))


@dataclass(frozen=True, slots=True)
class ReadCopy:
    """One copy as the officer reads it: the verified content, or why it did not check."""

    message_id: str
    ledger_index: int
    type: str
    sender: str
    sent_at: datetime | None = None
    text: str = ""
    attachments: tuple[tuple[str, bytes], ...] = ()
    error: str | None = None


class _SnapshotKeys:
    """Resolves the one signing key of a verified sender card, in the snapshot's windows."""

    def __init__(self, snapshot: DirectorySnapshot, card_keys: PublicKeys, authority: str) -> None:
        self._snapshot, self._keys, self._authority = snapshot, card_keys, authority

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        if (authority, key_id) != (self._authority, self._keys.key_id):
            raise KeyNotValid(
                f"sender_key_id: {authority} key {key_id} is not the key of the card provided"
            )
        status = next(
            (k for k in self._snapshot.keys if (k.authority, k.key_id) == (authority, key_id)),
            None,
        )
        if status is None:
            raise KeyNotValid(
                f"sender_key_id: the directory snapshot knows no key {key_id} of {authority}"
            )
        check_key_window(
            authority,
            key_id,
            at,
            valid_from=status.valid_from,
            valid_until=status.valid_until,
            retired_at=status.retired_at,
            superseded_by=status.superseded_by,
            retired_index=status.retired_index,
        )
        if status.revoked_at is not None and at >= status.revoked_at:
            raise KeyNotValid(
                f"sender_key_id: {authority} was revoked at {status.revoked_at.isoformat()}"
            )
        return self._keys.signing


def _open_one(
    copy: SealedCopy,
    snapshot: DirectorySnapshot,
    keys: AuthorityKeys,
    operator_key: bytes,
    holder: str,
) -> ReadCopy:
    if copy.sender_card is None:
        raise KeyNotValid(f"sender_card: the hub gave no card for {copy.sender}'s key")
    admitted = decode(copy.sender_card, AdmittedCard, what="sender_card")
    if admitted.operator_key != operator_key:
        raise SignatureInvalid("sender_card: admitted by another operator key")
    cards.verify_admission(admitted.signed, operator_key, admitted.operator_signature)
    card = cards.open_card(admitted.signed)
    if card.id != copy.sender:
        raise SignatureInvalid(f"sender_card: the card is {card.id}'s, not {copy.sender}'s")
    envelope = decode(copy.envelope, Envelope, what="envelope")
    resolver = _SnapshotKeys(snapshot, card.keys, card.id)
    opened = sealing.open(envelope, recipient=holder, keys=[keys], resolver=resolver)
    header = opened.verified.header
    if (header.message_id, header.sender) != (copy.message_id, copy.sender):
        raise ValidationError("envelope: not the message the hub listed")
    names = [a.name for a in opened.body.attachments]
    return ReadCopy(
        message_id=copy.message_id,
        ledger_index=copy.ledger_index,
        type=header.type,
        sender=header.sender,
        sent_at=header.sent_at,
        text=opened.body.text,
        attachments=tuple(zip(names, opened.attachments, strict=True)),
    )


def open_copies(copies: CaseCopies, keys: AuthorityKeys, operator_key: bytes) -> list[ReadCopy]:
    """Verify and open every copy (steps 1-4 above); a failed copy carries its reason."""
    if copies.snapshot is None:
        raise KeyNotValid("snapshot: the hub gave no signed directory snapshot to check against")
    snapshot = cards.open_snapshot(
        decode(copies.snapshot, SignedSnapshot, what="snapshot"), operator_key
    )
    holder = sealing.observer_holder(copies.accreditation_id)
    read = []
    for copy in copies.copies:
        try:
            read.append(_open_one(copy, snapshot, keys, operator_key, holder))
        except HubError as e:
            read.append(
                ReadCopy(
                    message_id=copy.message_id,
                    ledger_index=copy.ledger_index,
                    type=copy.type,
                    sender=copy.sender,
                    error=f"{e.code}: {e}",
                )
            )
    return read
