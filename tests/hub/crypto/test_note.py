"""Tests for hub/crypto/note.py (C2SP signed-note) and hub/crypto/checkpoint.py (tlog-checkpoint,
tlog-cosignature).

Known answers are in tests/vectors/signed_note.json: golang.org/x/mod sumdb/note keys and
signatures (Ed25519 is deterministic, so our signer must reproduce them byte for byte),
transparency-dev/formats key strings, and the C2SP spec examples. One test per way of
tampering follows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.crypto._primitives import ed25519_public, ed25519_verify
from hub.crypto.checkpoint import (
    Checkpoint,
    CheckpointMalformed,
    cosign,
    format_checkpoint,
    parse_checkpoint,
    verify_cosignature,
)
from hub.crypto.note import (
    KeyType,
    NoteKeyMalformed,
    NoteMalformed,
    NoteSignatureInvalid,
    NoteUnverified,
    NoteVerifier,
    add_signatures,
    key_id,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    signer_key,
    verifier_key,
)
from hub.errors import SignatureInvalid, ValidationError, VerificationError

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "signed_note.json").read_text()
)
KEYS = {k["name"]: k for k in VECTORS["keys"] if "name" in k}
PETER = parse_verifier_key(KEYS["PeterNeumann"]["vkey"])
ENOCH = parse_verifier_key(KEYS["EnochRoot"]["vkey"])
TEXT: str = VECTORS["notes"]["text"]
PETER_LINE: str = VECTORS["notes"]["peter_line"]
ENOCH_LINE: str = VECTORS["notes"]["enoch_line"]
C2SP: dict[str, Any] = VECTORS["c2sp_examples"]

LOG_NAME, WITNESS_NAME = "hub.example/log", "witness.example/w1"
LOG_KEY = hashlib.sha256(b"test log key").digest()
WITNESS_KEY = hashlib.sha256(b"test witness key").digest()
LOG = parse_verifier_key(verifier_key(LOG_NAME, ed25519_public(LOG_KEY)))
WITNESS = parse_verifier_key(
    verifier_key(WITNESS_NAME, ed25519_public(WITNESS_KEY), kind=KeyType.COSIGNATURE_V1)
)
CHECKPOINT = Checkpoint(origin=LOG_NAME, size=130, root_hash=hashlib.sha256(b"root").digest())
CP_TEXT = format_checkpoint(CHECKPOINT)
T = 1_700_000_000


class TestKeys:
    """Key IDs, verifier and signer key strings (x/mod sumdb/note encoding)."""

    @pytest.mark.parametrize("case", VECTORS["keys"], ids=lambda c: c["vkey"][:24])
    def test_verifier_key_vectors(self, case: dict[str, str]) -> None:
        if case["expect"] == "valid":
            v = parse_verifier_key(case["vkey"])
            assert verifier_key(v.name, v.public, kind=v.kind) == case["vkey"]
        else:
            with pytest.raises(NoteKeyMalformed):
                parse_verifier_key(case["vkey"])

    def test_signer_key_vector(self) -> None:
        signer = parse_signer_key(KEYS["PeterNeumann"]["skey"])
        assert signer.name == "PeterNeumann"
        assert signer.key_id == PETER.key_id == 0xC74F20A3
        assert ed25519_public(signer.private) == PETER.public
        assert signer_key(signer.name, signer.private) == KEYS["PeterNeumann"]["skey"]

    @pytest.mark.parametrize("field", ["vkey", "skey"])
    def test_every_mangling_is_refused(self, field: str) -> None:
        """Like x/mod TestNewVerifier: every proper substring and every one-character change."""
        good = KEYS["PeterNeumann"][field]
        parse = parse_verifier_key if field == "vkey" else parse_signer_key
        variants = {good[i:j] for i in range(len(good)) for j in range(i + 1, len(good) + 1)}
        variants |= {good[:i] + chr(ord(good[i]) + 1) + good[i + 1 :] for i in range(len(good))}
        variants.discard(good)
        for bad in variants:
            with pytest.raises(NoteKeyMalformed):
                parse(bad)

    def test_key_id_binds_the_type(self) -> None:
        public = ed25519_public(WITNESS_KEY)
        plain = key_id(WITNESS_NAME, KeyType.ED25519, public)
        cosig = key_id(WITNESS_NAME, KeyType.COSIGNATURE_V1, public)
        want = hashlib.sha256(WITNESS_NAME.encode() + b"\n\x04" + public).digest()[:4]
        assert cosig == int.from_bytes(want, "big") != plain

    @pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0", "nl\n"])
    def test_bad_names(self, name: str) -> None:
        with pytest.raises(NoteKeyMalformed, match="name"):
            verifier_key(name, PETER.public)
        with pytest.raises(NoteKeyMalformed, match="name"):
            sign_note(TEXT, name, LOG_KEY)

    def test_public_key_length(self) -> None:
        with pytest.raises(NoteKeyMalformed, match="public"):
            verifier_key("x", b"\x00" * 31)

    @pytest.mark.parametrize(
        ("name", "kind", "public"),
        [("a b", 1, bytes(32)), ("a", 2, bytes(32)), ("a", 1, bytes(33))],
    )
    def test_verifier_fields_are_checked(self, name: str, kind: int, public: bytes) -> None:
        with pytest.raises(NoteKeyMalformed):
            NoteVerifier(name, 0, KeyType.ED25519 if kind == 1 else kind, public)  # type: ignore[arg-type]


class TestSignedNote:
    """sign_note / open_note / add_signatures against x/mod's vectors and tampering."""

    def test_x_mod_vector(self) -> None:
        signer = parse_signer_key(KEYS["PeterNeumann"]["skey"])
        note = sign_note(TEXT, signer.name, signer.private)
        assert note == TEXT + "\n" + PETER_LINE
        text, sigs = open_note(note, [PETER])
        assert text == TEXT
        assert [(s.name, s.key_id) for s in sigs] == [("PeterNeumann", 0xC74F20A3)]

    def test_unknown_keys_are_ignored(self) -> None:
        note = TEXT + "\n" + PETER_LINE + ENOCH_LINE
        assert [s.name for s in open_note(note, [PETER]).signatures] == ["PeterNeumann"]
        assert [s.name for s in open_note(note, [PETER, ENOCH]).signatures] == [
            "PeterNeumann",
            "EnochRoot",
        ]
        # Same name, other key ID: a different key, so ignored rather than failed.
        other = NoteVerifier("PeterNeumann", PETER.key_id ^ 1, KeyType.ED25519, ENOCH.public)
        assert len(open_note(note, [other, ENOCH]).signatures) == 1

    def test_only_unknown_keys(self) -> None:
        with pytest.raises(NoteUnverified):
            open_note(TEXT + "\n" + PETER_LINE + ENOCH_LINE, [])
        with pytest.raises(NoteUnverified):
            open_note(TEXT + "\n" + PETER_LINE, [LOG])

    def test_c2sp_examples_parse(self) -> None:
        """The spec publishes no keys for its examples: they must parse, then go unverified."""
        for note in (C2SP["signed_note"], CP_TEXT + "\n" + C2SP["cosignature"]):
            with pytest.raises(NoteUnverified):
                open_note(note, [LOG])

    def test_last_blank_line_separates(self) -> None:
        note = sign_note(C2SP["signed_note_text"], LOG_NAME, LOG_KEY)
        assert open_note(note, [LOG]).text == C2SP["signed_note_text"]

    def test_bytes_input(self) -> None:
        assert open_note((TEXT + "\n" + PETER_LINE).encode(), [PETER]).text == TEXT

    def test_duplicate_signature_counted_once(self) -> None:
        assert len(open_note(TEXT + "\n" + PETER_LINE * 3, [PETER]).signatures) == 1

    def test_tampered_text(self) -> None:
        with pytest.raises(NoteSignatureInvalid):
            open_note(TEXT.replace("answer", "Answer") + "\n" + PETER_LINE, [PETER])

    def test_tampered_signature(self) -> None:
        bad = PETER_LINE[:60] + "ABCD" + PETER_LINE[60:]
        with pytest.raises(NoteSignatureInvalid) as e:
            open_note(TEXT + "\n" + bad, [PETER])
        assert isinstance(e.value, SignatureInvalid)
        assert isinstance(e.value, VerificationError)

    def test_wrong_key_with_matching_id(self) -> None:
        """A key that collides on (name, key ID) is verified and fails: never skipped."""
        impostor = NoteVerifier(PETER.name, PETER.key_id, KeyType.ED25519, ENOCH.public)
        with pytest.raises(NoteSignatureInvalid):
            open_note(TEXT + "\n" + PETER_LINE, [impostor])

    def test_ambiguous_verifiers(self) -> None:
        impostor = NoteVerifier(PETER.name, PETER.key_id, KeyType.ED25519, ENOCH.public)
        with pytest.raises(NoteKeyMalformed, match="two different keys"):
            open_note(TEXT + "\n" + PETER_LINE, [PETER, impostor])
        assert open_note(TEXT + "\n" + PETER_LINE, [PETER, PETER]).text == TEXT

    @pytest.mark.parametrize(
        "note",
        [
            TEXT,
            TEXT + "\n",
            TEXT + "\n" + PETER_LINE[:-1],
            "\x01" + TEXT + "\n" + PETER_LINE,
            TEXT + "\n" + PETER_LINE.replace("PeterNeumann", "Bad Name"),
            TEXT + "\n" + PETER_LINE.replace("PeterNeumann", "Bad+Name"),
            TEXT + "\n" + PETER_LINE + "Unexpected line.\n",
            TEXT + "\n" + PETER_LINE.replace("\u2014", "-"),
            TEXT + "\n" + PETER_LINE.replace("x08go", "x08g!"),
            TEXT + "\n\u2014 PeterNeumann AAAA\n",
            TEXT + "\n\u2014 PeterNeumann \n",
            TEXT + "\r\n" + PETER_LINE,
        ],
    )
    def test_malformed(self, note: str) -> None:
        with pytest.raises(NoteMalformed):
            open_note(note, [PETER])

    def test_malformed_bytes(self) -> None:
        with pytest.raises(NoteMalformed, match="UTF-8"):
            open_note(b"\xff" + (TEXT + "\n" + PETER_LINE).encode(), [PETER])

    def test_too_many_signatures(self) -> None:
        with pytest.raises(NoteMalformed, match="more than 100"):
            open_note(TEXT + "\n" + ENOCH_LINE * 100 + PETER_LINE, [PETER])

    def test_sign_rejects_bad_text(self) -> None:
        with pytest.raises(NoteMalformed, match="newline"):
            sign_note("no newline", LOG_NAME, LOG_KEY)
        with pytest.raises(NoteMalformed, match="control"):
            sign_note("bell\a\n", LOG_NAME, LOG_KEY)

    def test_add_signatures(self) -> None:
        note = add_signatures(TEXT + "\n" + PETER_LINE, [ENOCH_LINE])
        assert note == TEXT + "\n" + PETER_LINE + ENOCH_LINE
        assert len(open_note(note, [PETER, ENOCH]).signatures) == 2
        # A new line by the same key replaces the old one.
        fresh = ENOCH_LINE.replace("WnWLox", "WnWLoy")  # same key ID, other signature
        assert add_signatures(note, [fresh]) == TEXT + "\n" + PETER_LINE + fresh
        with pytest.raises(NoteMalformed):
            add_signatures(note, ["not a signature line\n"])

    @given(
        st.lists(st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"])), min_size=1)
    )
    def test_round_trip(self, lines: list[str]) -> None:
        text = "\n".join(lines) + "\n"
        assert open_note(sign_note(text, LOG_NAME, LOG_KEY), [LOG]).text == text


class TestCheckpoint:
    """format_checkpoint / parse_checkpoint and one test per malformed line."""

    def test_c2sp_example(self) -> None:
        cp = parse_checkpoint(C2SP["checkpoint"])
        assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
        assert format_checkpoint(cp) == C2SP["checkpoint"]

    def test_extensions_round_trip(self) -> None:
        cp = Checkpoint(origin="o", size=0, root_hash=bytes(32), extensions=("a b", "c+d"))
        assert format_checkpoint(cp) == f"o\n0\n{base64.b64encode(bytes(32)).decode()}\na b\nc+d\n"
        assert parse_checkpoint(format_checkpoint(cp)) == cp

    @pytest.mark.parametrize(
        ("text", "field"),
        [
            ("o\n1\n" + "A" * 43 + "=", "checkpoint"),
            ("o\n1\n", "checkpoint"),
            ("\n1\nROOT\n", "line 1 (origin)"),
            ("o\x01\n1\nROOT\n", "line 1 (origin)"),
            ("o\n01\nROOT\n", "line 2"),
            ("o\n-1\nROOT\n", "line 2"),
            ("o\n+1\nROOT\n", "line 2"),
            ("o\n 1\nROOT\n", "line 2"),
            ("o\n1_0\nROOT\n", "line 2"),
            ("o\n\uff11\nROOT\n", "line 2"),
            ("o\n18446744073709551616\nROOT\n", "line 2"),
            ("o\n\nROOT\n", "line 2"),
            ("o\n1\nnot base64!\n", "line 3 (root hash)"),
            ("o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n", "line 3"),
            ("o\n1\n" + "A" * 42 + "B=\n", "line 3"),
            ("o\n1\n" + "A" * 43 + "\n", "line 3 (root hash)"),
            ("o\n1\nROOT\n\n", "line 4 (extension)"),
            ("o\n1\nROOT\next\n\nmore\n", "line 5 (extension)"),
        ],
    )
    def test_malformed(self, text: str, field: str) -> None:
        text = text.replace("ROOT", base64.b64encode(bytes(32)).decode())
        with pytest.raises(CheckpointMalformed) as e:
            parse_checkpoint(text)
        assert e.value.field == field
        assert isinstance(e.value, ValidationError)

    def test_largest_size(self) -> None:
        text = f"o\n{2**64 - 1}\n{base64.b64encode(bytes(32)).decode()}\n"
        assert parse_checkpoint(text).size == 2**64 - 1

    @pytest.mark.parametrize(
        ("cp", "field"),
        [
            (Checkpoint(origin="", size=1, root_hash=bytes(32)), "origin"),
            (Checkpoint(origin="a\nb", size=1, root_hash=bytes(32)), "origin"),
            (Checkpoint(origin="o", size=-1, root_hash=bytes(32)), "size"),
            (Checkpoint(origin="o", size=2**64, root_hash=bytes(32)), "size"),
            (Checkpoint(origin="o", size=1, root_hash=bytes(31)), "root_hash"),
            (
                Checkpoint(origin="o", size=1, root_hash=bytes(32), extensions=("",)),
                "extensions[0]",
            ),
        ],
    )
    def test_format_rejects(self, cp: Checkpoint, field: str) -> None:
        with pytest.raises(CheckpointMalformed) as e:
            format_checkpoint(cp)
        assert e.value.field == field

    @given(
        st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1),
        st.integers(0, 2**64 - 1),
        st.binary(min_size=32, max_size=32),
    )
    def test_round_trip(self, origin: str, size: int, root: bytes) -> None:
        cp = Checkpoint(origin=origin, size=size, root_hash=root)
        assert parse_checkpoint(format_checkpoint(cp)) == cp


class TestCosignature:
    """tlog-cosignature: key type 0x04, big-endian timestamp, the cosignature/v1 message."""

    def test_round_trip(self) -> None:
        line = cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, T)
        assert verify_cosignature(CP_TEXT, line, WITNESS) == T

    def test_wire_format(self) -> None:
        """Key ID || u64 big-endian time || Ed25519 over the spec's signed message."""
        line = cosign(C2SP["checkpoint"], WITNESS_NAME, WITNESS_KEY, C2SP["cosignature_time"])
        name, blob = line.removeprefix("\u2014 ").removesuffix("\n").split(" ")
        raw = base64.b64decode(blob)
        assert name == WITNESS_NAME
        assert len(raw) == 4 + 8 + 64
        assert int.from_bytes(raw[:4], "big") == WITNESS.key_id
        assert int.from_bytes(raw[4:12], "big") == C2SP["cosignature_time"]
        ed25519_verify(WITNESS.public, raw[12:], C2SP["cosigned_message"].encode())

    def test_c2sp_example_timestamp(self) -> None:
        raw = base64.b64decode(C2SP["cosignature"].split(" ")[-1])
        assert int.from_bytes(raw[4:12], "big") == C2SP["cosignature_time"]

    def test_in_a_note_with_the_log_signature(self) -> None:
        note = sign_note(CP_TEXT, LOG_NAME, LOG_KEY)
        note = add_signatures(note, [cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, T)])
        text, sigs = open_note(note, [LOG, WITNESS])
        assert text == CP_TEXT
        assert [(s.name, s.timestamp) for s in sigs] == [(LOG_NAME, None), (WITNESS_NAME, T)]
        assert open_note(note, [WITNESS]).signatures[0].timestamp == T

    def test_plain_key_does_not_match_cosignature(self) -> None:
        """The same Ed25519 key under type 0x01 has another key ID: the line is ignored."""
        plain = parse_verifier_key(verifier_key(WITNESS_NAME, WITNESS.public))
        note = CP_TEXT + "\n" + cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, T)
        with pytest.raises(NoteUnverified):
            open_note(note, [plain])
        with pytest.raises(NoteKeyMalformed, match="0x04"):
            verify_cosignature(CP_TEXT, cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, T), plain)

    def test_tampered_checkpoint(self) -> None:
        line = cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, T)
        other = format_checkpoint(Checkpoint(LOG_NAME, 131, CHECKPOINT.root_hash))
        with pytest.raises(NoteSignatureInvalid):
            verify_cosignature(other, line, WITNESS)

    def test_tampered_extension_line(self) -> None:
        text = CP_TEXT + "ext\n"
        line = cosign(text, WITNESS_NAME, WITNESS_KEY, T)
        with pytest.raises(NoteSignatureInvalid):
            verify_cosignature(CP_TEXT + "exT\n", line, WITNESS)

    def test_tampered_timestamp(self) -> None:
        line = cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, T)
        raw = bytearray(base64.b64decode(line.split(" ")[-1]))
        raw[11] ^= 1
        bad = f"\u2014 {WITNESS_NAME} {base64.b64encode(bytes(raw)).decode()}\n"
        with pytest.raises(NoteSignatureInvalid):
            verify_cosignature(CP_TEXT, bad, WITNESS)

    def test_truncated_signature(self) -> None:
        raw = base64.b64decode(cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, T).split(" ")[-1])
        bad = f"\u2014 {WITNESS_NAME} {base64.b64encode(raw[:-1]).decode()}\n"
        with pytest.raises(NoteSignatureInvalid, match="72 bytes"):
            verify_cosignature(CP_TEXT, bad, WITNESS)

    def test_wrong_witness(self) -> None:
        other_key = hashlib.sha256(b"other witness").digest()
        line = cosign(CP_TEXT, WITNESS_NAME, other_key, T)
        with pytest.raises(NoteSignatureInvalid, match="not by"):
            verify_cosignature(CP_TEXT, line, WITNESS)

    def test_cosignature_needs_a_checkpoint(self) -> None:
        with pytest.raises(CheckpointMalformed):
            cosign("just one line\n", WITNESS_NAME, WITNESS_KEY, T)
        line = cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, T)
        with pytest.raises(CheckpointMalformed):
            open_note("just one line\n\n" + line, [WITNESS])

    @pytest.mark.parametrize("timestamp", [-1, 2**64, True])
    def test_bad_timestamp(self, timestamp: int) -> None:
        with pytest.raises(ValidationError, match="timestamp"):
            cosign(CP_TEXT, WITNESS_NAME, WITNESS_KEY, timestamp)
