"""node_agent/identity.py: contact points on the card, key rotation on disk, the keyring."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.crypto import cards
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys
from hub.errors import ValidationError
from node_agent.config import AgentPaths, AgentSettings
from node_agent.identity import card_file, init_agent, load_keyring, parse_contact, rotate_keys
from schemas.directory import ContactPoint
from schemas.envelope import Body

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _settings(**extra: object) -> AgentSettings:
    return AgentSettings(
        id="XA-MOJ", state="XA", name="A", kinds=["mla"], languages=["en"], **extra
    )  # type: ignore[arg-type]


class TestContacts:
    """``--contact NAME|email|phone|24/7``: only NAME required; published on the card."""

    def test_full(self) -> None:
        assert parse_contact("Duty officer | duty@moj.xa | +1 555 0100 | 24/7") == ContactPoint(
            name="Duty officer", email="duty@moj.xa", phone="+1 555 0100", available_24_7=True
        )

    def test_name_only(self) -> None:
        assert parse_contact("Registry") == ContactPoint(name="Registry")

    def test_office_hours(self) -> None:
        contact = parse_contact("Registry|registry@moj.xa||office-hours")
        assert (contact.email, contact.phone, contact.available_24_7) == (
            "registry@moj.xa",
            None,
            False,
        )

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "--contact: '' is not NAME|email|phone|24/7 (only NAME is required)"),
            (
                "A|b@c|1|24/7|x",
                "--contact: 'A|b@c|1|24/7|x' is not NAME|email|phone|24/7 (only NAME is required)",
            ),
            ("Registry|not-an-address", "--contact: 'not-an-address' is not an email address"),
            (
                "Registry|||weekends",
                "--contact: availability 'weekends' must be 24/7 or office-hours",
            ),
        ],
    )
    def test_refused(self, text: str, message: str) -> None:
        with pytest.raises(ValidationError) as refused:
            parse_contact(text)
        assert str(refused.value) == message

    def test_on_the_card(self) -> None:
        contacts = [parse_contact("Duty officer|duty@moj.xa|+1 555 0100|24/7")]
        made = card_file(_settings(contacts=contacts), AuthorityKeys.generate("x25519"), now=NOW)
        assert made.readable.contacts == contacts
        assert cards.open_card(made.signed).contacts == contacts


class TestRotate:
    """``node-agent rotate``: new keys current, the old ones kept (0600), the card signed by
    the old key; the keyring opens mail sealed to any of them."""

    def test_rotate(self, tmp_path: Path) -> None:
        paths = AgentPaths(tmp_path / "A")
        settings = _settings(suite="x25519")
        old = init_agent(paths, settings, now=NOW)
        new, made = rotate_keys(paths, settings, now=NOW)
        assert new.key_id != old.key_id and new.suite == "x25519"
        assert AuthorityKeys.from_bytes(paths.keys.read_bytes()).key_id == new.key_id
        kept = paths.previous_keys / f"{old.key_id}.key"
        assert AuthorityKeys.from_bytes(kept.read_bytes()).key_id == old.key_id
        assert {p.stat().st_mode & 0o777 for p in (paths.keys, kept)} == {0o600}
        assert made.readable.previous_key_id == old.key_id
        assert made.readable.keys.key_id == new.key_id
        cards.verify_rotation(made.signed, old.signing_public)
        assert not paths.keys.with_name("authority.key.new").exists()

        newer, _ = rotate_keys(paths, settings, now=NOW)
        ring = load_keyring(paths)
        assert ring[0].key_id == newer.key_id
        assert sorted(k.key_id for k in ring[1:]) == sorted([old.key_id, new.key_id])

    def test_keyring_opens_mail_sealed_to_the_old_key(self, tmp_path: Path) -> None:
        paths = AgentPaths(tmp_path / "A")
        settings = _settings(suite="x25519")
        old = init_agent(paths, settings, now=NOW)
        sender = AuthorityKeys.generate("x25519")
        envelope = sealing.seal(
            sender="XB-MOJ",
            sender_keys=sender,
            recipients=[sealing.Recipient("XA-MOJ", old.key_id, old.suite, old.encryption_public)],
            message_id="01a20db9-9003-75a2-b9f1-c30b99ac8960",
            case_id="01a20db9-9000-7b1c-8313-afd169a9fbfb",
            type="request.submit",
            body=Body(text="sealed before the rotation"),
            now=NOW,
        )
        rotate_keys(paths, settings, now=NOW)

        class Resolver:
            def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
                return sender.signing_public

        opened = sealing.open(
            envelope, recipient="XA-MOJ", keys=load_keyring(paths), resolver=Resolver()
        )
        assert opened.body.text == "sealed before the rotation"
