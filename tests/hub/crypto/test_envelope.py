"""Sealing and opening: a round trip works, and every way of tampering gets a typed error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.crypto import envelope as sealing
from hub.crypto import receipts
from hub.crypto.digest import sha256
from hub.crypto.keys import AuthorityKeys
from hub.errors import (
    AttachmentMismatch,
    DecryptionFailed,
    KeyNotValid,
    NotARecipient,
    RecipientMismatch,
    SchemaInvalid,
    SignatureInvalid,
    UnknownSender,
    UnsupportedVersion,
    ValidationError,
    VerificationError,
)
from schemas.codec import decode, encode
from schemas.envelope import AttachmentMeta, Body, Envelope, Header, WrappedKey

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MESSAGE_ID = "01a20db9-9003-75a2-b9f1-c30b99ac8960"
CASE_ID = "01a20db9-9000-7b1c-8313-afd169a9fbfb"

A = AuthorityKeys.generate()
B = AuthorityKeys.generate()
C = AuthorityKeys.generate("x25519")


class Directory:
    """A fixed key resolver: XA-MOJ, XB-MOJ and XC-MOJ, valid from 2026 on."""

    keys = {"XA-MOJ": A, "XB-MOJ": B, "XC-MOJ": C}

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        keys = self.keys.get(authority)
        if keys is None:
            raise UnknownSender(f"sender: {authority} unknown")
        if keys.key_id != key_id or at.year < 2026:
            raise KeyNotValid("sender_key_id: not valid")
        return keys.signing_public


def recipient(name: str, keys: AuthorityKeys) -> sealing.Recipient:
    return sealing.Recipient(name, keys.key_id, keys.suite, keys.encryption_public)


def seal(
    text: str = "take evidence",
    attachments: tuple[bytes, ...] = (b"%PDF",),
    to: tuple[str, ...] = ("XB-MOJ",),
    now: datetime = NOW,
) -> Envelope:
    body = Body(
        text=text,
        attachments=[
            AttachmentMeta(name=f"a{i}.pdf", size=len(a), sha256=sha256(a))
            for i, a in enumerate(attachments)
        ],
    )
    return sealing.seal(
        sender="XA-MOJ",
        sender_keys=A,
        recipients=[recipient(r, Directory.keys[r]) for r in to],
        message_id=MESSAGE_ID,
        case_id=CASE_ID,
        type="request.submit",
        body=body,
        attachments=attachments,
        now=now,
    )


def open_as_b(env: Envelope) -> sealing.Opened:
    return sealing.open(env, recipient="XB-MOJ", keys=[B], resolver=Directory())


def flip(data: bytes, position: int) -> bytes:
    i = position % len(data)
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


class TestRoundTrip:
    """What is sealed for B opens for B, with every part intact."""

    def test_open(self) -> None:
        opened = open_as_b(seal())
        assert opened.body.text == "take evidence"
        assert opened.attachments == (b"%PDF",)
        assert opened.verified.header.sender == "XA-MOJ"

    def test_several_recipients_and_suites(self) -> None:
        env = seal(to=("XB-MOJ", "XC-MOJ"))
        assert sealing.open(env, recipient="XC-MOJ", keys=[C], resolver=Directory()).body.text
        assert open_as_b(env).body.text == "take evidence"
        assert [w.suite for w in env.wrapped_keys] == ["mlkem768x25519", "x25519"]

    def test_ledger_record_verifies_without_content(self) -> None:
        env = seal()
        verified = sealing.verify_envelope(env, Directory())
        record = sealing.record_of(verified, env)
        assert sealing.verify_recorded(record, Directory()).message_id == MESSAGE_ID

    @settings(max_examples=25, deadline=None)
    @given(text=st.text(max_size=300), attachments=st.lists(st.binary(max_size=200), max_size=3))
    def test_any_content_round_trips(self, text: str, attachments: list[bytes]) -> None:
        opened = open_as_b(seal(text, tuple(attachments)))
        assert (opened.body.text, list(opened.attachments)) == (text, attachments)


class TestTampering:
    """One test per way of tampering; each is caught with its own typed error."""

    @settings(max_examples=40, deadline=None)
    @given(position=st.integers(min_value=0))
    def test_any_header_bit_flip(self, position: int) -> None:
        env = seal()
        bad = msgspec.structs.replace(env, header=flip(env.header, position))
        with pytest.raises((VerificationError, ValidationError)):
            open_as_b(bad)

    @settings(max_examples=30, deadline=None)
    @given(position=st.integers(min_value=0))
    def test_any_ciphertext_bit_flip(self, position: int) -> None:
        env = seal()
        with pytest.raises(SignatureInvalid):
            open_as_b(msgspec.structs.replace(env, body=flip(env.body, position)))
        with pytest.raises(SignatureInvalid):
            open_as_b(
                msgspec.structs.replace(env, attachments=[flip(env.attachments[0], position)])
            )

    @settings(max_examples=30, deadline=None)
    @given(position=st.integers(min_value=0))
    def test_any_wrapped_key_bit_flip(self, position: int) -> None:
        env = seal()
        wk = env.wrapped_keys[0]
        bad = msgspec.structs.replace(wk, enc=flip(wk.enc, position))
        with pytest.raises(SignatureInvalid):
            open_as_b(msgspec.structs.replace(env, wrapped_keys=[bad]))

    @settings(max_examples=30, deadline=None)
    @given(position=st.integers(min_value=0))
    def test_any_signature_bit_flip(self, position: int) -> None:
        env = seal()
        with pytest.raises(SignatureInvalid):
            open_as_b(msgspec.structs.replace(env, signature=flip(env.signature, position)))

    def test_truncated_signature(self) -> None:
        env = seal()
        with pytest.raises(SignatureInvalid):
            open_as_b(msgspec.structs.replace(env, signature=env.signature[:63]))

    def test_other_sender_claimed(self) -> None:
        env = seal()
        header = decode(env.header, Header)
        forged = encode(msgspec.structs.replace(header, sender="XC-MOJ", sender_key_id=C.key_id))
        with pytest.raises(SignatureInvalid):
            open_as_b(msgspec.structs.replace(env, header=forged))

    def test_unknown_sender(self) -> None:
        env = seal()
        header = decode(env.header, Header)
        forged = encode(msgspec.structs.replace(header, sender="XZ-NOBODY"))
        with pytest.raises(UnknownSender):
            open_as_b(msgspec.structs.replace(env, header=forged))

    def test_key_not_valid_at_signing_time(self) -> None:
        with pytest.raises(KeyNotValid):
            open_as_b(seal(now=NOW.replace(year=2025)))

    def test_wrong_recipient(self) -> None:
        with pytest.raises(NotARecipient):
            sealing.open(seal(), recipient="XC-MOJ", keys=[C], resolver=Directory())

    def test_wrong_private_key_is_opaque(self) -> None:
        with pytest.raises(DecryptionFailed, match=r"^message could not be decrypted$"):
            sealing.open(
                seal(), recipient="XB-MOJ", keys=[AuthorityKeys.generate()], resolver=Directory()
            )

    def test_wrapped_key_moved_to_another_message(self) -> None:
        one, two = seal("one"), seal("two")
        # Same ids, other content: a key wrapped for one header does not open another.
        spliced = msgspec.structs.replace(two, wrapped_keys=one.wrapped_keys)
        with pytest.raises(SignatureInvalid):
            open_as_b(spliced)

    def test_swapped_header_aad(self) -> None:
        one = seal("one")
        later = seal("two", now=NOW + timedelta(seconds=1))
        with pytest.raises(SignatureInvalid):
            open_as_b(msgspec.structs.replace(later, header=one.header))

    def test_wrapped_keys_not_matching_recipients(self) -> None:
        env = seal()
        extra = WrappedKey(recipient="XC-MOJ", key_id=C.key_id, suite="x25519", enc=b"\x00" * 48)
        with pytest.raises(RecipientMismatch):
            open_as_b(msgspec.structs.replace(env, wrapped_keys=[*env.wrapped_keys, extra]))

    def test_attachment_dropped(self) -> None:
        env = seal()
        with pytest.raises(AttachmentMismatch):
            open_as_b(msgspec.structs.replace(env, attachments=[]))

    def test_unknown_header_version(self) -> None:
        env = seal()
        raw = decode(env.header, dict[str, object])
        raw["schema"] = "mla.envelope.header.v2"
        with pytest.raises(UnsupportedVersion, match=r"mla\.envelope\.header\.v2"):
            open_as_b(msgspec.structs.replace(env, header=encode(raw)))

    def test_unknown_header_field(self) -> None:
        env = seal()
        raw = decode(env.header, dict[str, object])
        raw["smuggled"] = "x"
        with pytest.raises(SchemaInvalid, match="smuggled"):
            open_as_b(msgspec.structs.replace(env, header=encode(raw)))


class TestReceipts:
    """A receipt binds the recipient to the exact envelope digest."""

    def test_issue_and_verify(self) -> None:
        opened = open_as_b(seal())
        receipt = receipts.issue(
            header=opened.verified.header,
            envelope_digest=opened.verified.envelope_digest,
            recipient="XB-MOJ",
            keys=B,
            ledger_index=7,
            receipt_id="01a20db9-9011-7452-bc86-25d6d5e017ae",
            now=NOW,
        )
        body = receipts.verify(receipt, Directory())
        assert (body.envelope_digest, body.ledger_index) == (opened.verified.envelope_digest, 7)
        changed = encode(msgspec.structs.replace(body, ledger_index=8))
        with pytest.raises(SignatureInvalid):
            receipts.verify(msgspec.structs.replace(receipt, body=changed), Directory())
        with pytest.raises(SignatureInvalid):
            receipts.verify(
                msgspec.structs.replace(receipt, signature=flip(receipt.signature, 3)), Directory()
            )


class TestSealRefusesBadInput:
    """Bad fields are refused before anything is encrypted, naming the field."""

    def test_bad_recipient_id(self) -> None:
        with pytest.raises(SchemaInvalid, match="recipients"):
            sealing.seal(
                sender="XA-MOJ",
                sender_keys=A,
                recipients=[recipient("xb-moj", B)],
                message_id=MESSAGE_ID,
                case_id=CASE_ID,
                type="request.submit",
                body=Body(),
                now=NOW,
            )

    def test_unknown_message_type(self) -> None:
        with pytest.raises(SchemaInvalid, match="type"):
            sealing.seal(
                sender="XA-MOJ",
                sender_keys=A,
                recipients=[recipient("XB-MOJ", B)],
                message_id=MESSAGE_ID,
                case_id=CASE_ID,
                type="request.teleport",
                body=Body(),
                now=NOW,
            )
