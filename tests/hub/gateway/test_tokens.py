"""Bearer tokens and liaison consents (``hub.gateway.tokens``, ``hub.crypto.consent``,
``hub.cli_access``; issue 5): hashed at rest, revocable, expiring, scoped; consents signed by the
home authority's key and checked against the directory, one test per way of tampering."""

from __future__ import annotations

import argparse
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hub.cli import _parser as hub_parser
from hub.clock import SystemClock
from hub.crypto import cards
from hub.crypto.consent import consent_digest, open_consent, sign_consent
from hub.errors import (
    KeyNotValid,
    Malformed,
    SchemaInvalid,
    SignatureInvalid,
    UnknownSender,
    ValidationError,
)
from hub.gateway.access import Principal, Unauthenticated
from hub.gateway.tokens import TokenStore, token_hash, tokens_path
from hub.ledger.projections.directory import Directory
from hub.settings import HubPaths, HubSettings, save_settings
from node_agent.cli_consent import register as register_consent
from node_agent.config import AgentPaths, AgentSettings
from node_agent.identity import card_file, init_agent
from schemas.access import ConsentFile, LiaisonConsent, SignedConsent
from schemas.codec import decode_json, encode_json
from schemas.ledger import AuthorityAdmitted
from tests.hub.audit.history import KEYS, NOW, OPERATOR, admission, mid

A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"
DAY = timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tokens_path(tmp_path))


def _bearer(token: str) -> str:
    return f"Bearer {token}"


class TestTokenStore:
    """Tokens are stored as hashes only, compared in constant time, revocable and expiring."""

    def test_issue_then_authenticate(self, store: TokenStore) -> None:
        issued = store.issue("authority", now=NOW, valid_for=DAY, authority=A, label="staff")
        principal = store.authenticate(_bearer(issued.token), now=NOW + timedelta(hours=1))
        assert principal == Principal(
            token_id=issued.record.token_id, role="authority", expires_at=NOW + DAY, authority=A
        )
        assert store.authenticate(f"bearer  {issued.token} ", now=NOW).role == "authority"

    def test_file_holds_only_hashes(self, store: TokenStore) -> None:
        issued = store.issue("auditor", now=NOW, valid_for=DAY, accreditation_id=mid(1))
        data = store.path.read_bytes()
        secret = issued.token.split("_", 2)[2]
        assert issued.token.encode() not in data and secret.encode() not in data
        record = json.loads(data)["tokens"][0]
        assert record["secret_sha256"] != "" and record["token_id"] == issued.record.token_id
        assert issued.record.secret_sha256 == token_hash(issued.token)
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700

    @pytest.mark.parametrize(
        "header",
        [None, "", "Basic abc", "Bearer", "Bearer mlah_x_y", "Bearer other_0123456789abcdef_s"],
    )
    def test_malformed_headers(self, store: TokenStore, header: str | None) -> None:
        with pytest.raises(Unauthenticated):
            store.authenticate(header, now=NOW)

    def test_wrong_secret_and_unknown_id(self, store: TokenStore) -> None:
        issued = store.issue("operator", now=NOW, valid_for=DAY)
        flipped = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
        unknown = "mlah_0123456789abcdef_" + issued.token.split("_", 2)[2]
        for token in (flipped, unknown, issued.token + "x"):
            with pytest.raises(Unauthenticated):
                store.authenticate(_bearer(token), now=NOW)

    def test_revoked_and_expired(self, store: TokenStore) -> None:
        issued = store.issue("operator", now=NOW, valid_for=DAY)
        running = TokenStore(store.path)  # the hub's own instance, already warm
        assert running.authenticate(_bearer(issued.token), now=NOW).role == "operator"
        revoked = store.revoke(issued.record.token_id, now=NOW + timedelta(minutes=1))
        assert store.revoke(issued.record.token_id, now=NOW + DAY).revoked_at == revoked.revoked_at
        with pytest.raises(Unauthenticated, match="revoked"):
            running.authenticate(_bearer(issued.token), now=NOW + timedelta(minutes=2))
        assert not running.still_live(issued.record.token_id, now=NOW + timedelta(minutes=2))
        other = store.issue("auditor", now=NOW, valid_for=DAY, accreditation_id=mid(2))
        assert running.still_live(other.record.token_id, now=NOW + DAY - timedelta(seconds=1))
        with pytest.raises(Unauthenticated, match="expired"):
            running.authenticate(_bearer(other.token), now=NOW + DAY)
        with pytest.raises(ValidationError, match="no token"):
            store.revoke("ffffffffffffffff", now=NOW)

    def test_liaison_tokens_end_with_their_term_and_revoke_per_accreditation(
        self, store: TokenStore
    ) -> None:
        end = NOW + timedelta(days=3)
        pair = {"officer": "LO-1", "home": A}
        one = store.issue(
            "liaison", now=NOW, valid_for=DAY * 30, host=B, not_after=end,
            accreditation_id=mid(1), **pair,
        )  # fmt: skip
        two = store.issue(
            "liaison", now=NOW, valid_for=DAY, host=C, accreditation_id=mid(2), **pair
        )
        again = store.issue(
            "liaison", now=NOW, valid_for=DAY, host=C, accreditation_id=mid(2), **pair
        )
        assert one.record.expires_at == end
        revoked = store.revoke_accreditations({mid(2)}, now=NOW)
        assert [r.token_id for r in revoked] == [two.record.token_id, again.record.token_id]
        assert store.revoke_accreditations({mid(2)}, now=NOW) == []
        assert store.still_live(one.record.token_id, now=NOW)
        assert store.authenticate(_bearer(one.token), now=NOW).accreditation_id == mid(1)

    @pytest.mark.parametrize(
        ("role", "scope"),
        [
            ("authority", {}),
            ("authority", {"authority": A, "home": B}),
            ("liaison", {"officer": "LO-1", "home": A}),
            ("liaison", {"officer": "LO-1", "home": A, "host": A}),
            ("auditor", {"authority": A}),
            ("auditor", {}),  # no accreditation in the ledger
            ("liaison", {"officer": "LO-1", "home": A, "host": B}),  # idem
            ("operator", {"home": A, "host": B}),
            ("operator", {"accreditation_id": "01a20db9-9003-75a2-b9f1-c30b99ac8960"}),
        ],
    )
    def test_scope_must_fit_the_role(
        self, store: TokenStore, role: str, scope: dict[str, str]
    ) -> None:
        with pytest.raises(ValidationError):
            store.issue(role, now=NOW, valid_for=DAY, **scope)  # type: ignore[arg-type]
        assert not store.path.exists()

    def test_bad_values_are_refused_before_they_are_written(self, store: TokenStore) -> None:
        with pytest.raises(SchemaInvalid, match="authority"):
            store.issue("authority", now=NOW, valid_for=DAY, authority="nobody")
        with pytest.raises(ValidationError, match="expires"):
            store.issue("operator", now=NOW, valid_for=timedelta(0))
        assert store.records() == []


class TestPrincipal:
    def test_scopes(self) -> None:
        liaison = Principal("0" * 16, "liaison", NOW, officer="LO", home=A, host=B)
        staff = Principal("0" * 16, "authority", NOW, authority=C)
        auditor = Principal("0" * 16, "auditor", NOW)
        assert liaison.sees_case(B, A) and not liaison.sees_case(A, C)
        assert staff.sees_case(A, C) and not staff.sees_case(A, B)
        assert auditor.sees_case(A, B) and auditor.sees_everything
        liaison.require_pair(B, A)
        staff.require_pair(C, B)
        for principal, pair in ((liaison, (A, C)), (staff, (A, B))):
            with pytest.raises(Exception, match="not available"):
                principal.require_pair(*pair)


def _directory() -> Directory:
    directory = Directory()
    for index, authority in enumerate((A, B, C)):
        event: AuthorityAdmitted = admission(authority)
        directory.apply_admitted(index, NOW - timedelta(hours=1), event)
    return directory


def _consent(**changes: object) -> LiaisonConsent:
    consent = LiaisonConsent(
        consent_id=mid(77),
        officer="XA-LO-0042",
        name="M. Liaison",
        home=A,
        host=B,
        key_id=KEYS[A].key_id,
        issued_at=NOW,
        valid_until=NOW + timedelta(days=30),
    )
    return msgspec.structs.replace(consent, **changes)


class TestConsent:
    """The home authority's signed consent: checked step by step, one test per tampering."""

    def test_valid(self) -> None:
        made = sign_consent(_consent(), KEYS[A])
        assert made.readable == _consent()
        assert open_consent(made.signed, _directory(), now=NOW + DAY) == _consent()
        assert len(consent_digest(made.signed)) == 32

    def test_bit_flip_in_the_consent(self) -> None:
        signed = sign_consent(_consent(), KEYS[A]).signed
        data = bytearray(signed.consent)
        data[-3] ^= 0x01  # inside valid_until: still decodes, no longer what was signed
        with pytest.raises((SignatureInvalid, Malformed, SchemaInvalid)):
            open_consent(
                SignedConsent(consent=bytes(data), signature=signed.signature),
                _directory(),
                now=NOW,
            )

    def test_truncated(self) -> None:
        signed = sign_consent(_consent(), KEYS[A]).signed
        with pytest.raises(Malformed):
            open_consent(
                SignedConsent(consent=signed.consent[:-5], signature=signed.signature),
                _directory(),
                now=NOW,
            )

    def test_signed_by_someone_else_claiming_the_home_authority(self) -> None:
        forged = sign_consent(_consent(key_id=KEYS[C].key_id), KEYS[C]).signed
        forged = SignedConsent(
            consent=sign_consent(_consent(), KEYS[A]).signed.consent, signature=forged.signature
        )
        with pytest.raises(SignatureInvalid):
            open_consent(forged, _directory(), now=NOW)
        wrong_key_id = sign_consent(_consent(key_id=KEYS[C].key_id), KEYS[C]).signed
        with pytest.raises(KeyNotValid):  # C's key is not a key of XA-MOJ
            open_consent(wrong_key_id, _directory(), now=NOW)

    def test_expired_future_unknown_and_self(self) -> None:
        directory = _directory()
        cases: list[tuple[LiaisonConsent, type[Exception]]] = [
            (_consent(valid_until=NOW + timedelta(hours=1)), KeyNotValid),
            (_consent(issued_at=NOW + timedelta(hours=2)), KeyNotValid),
            (_consent(host=A), ValidationError),
        ]
        for consent, error in cases:
            with pytest.raises(error):
                open_consent(
                    sign_consent(consent, KEYS[A]).signed,
                    directory,
                    now=NOW + timedelta(minutes=90),
                )
        stranger = sign_consent(
            _consent(home="XZ-EVIL", key_id=KEYS["XZ-EVIL"].key_id), KEYS["XZ-EVIL"]
        ).signed
        with pytest.raises(UnknownSender):
            open_consent(stranger, directory, now=NOW)

    def test_key_id_must_be_the_signers(self) -> None:
        with pytest.raises(ValidationError, match="key_id"):
            sign_consent(_consent(), KEYS[B])


class TestTokenCommands:
    """``hub token issue|list|revoke`` on a hub data folder (no NATS needed)."""

    async def _run(self, *argv: str) -> int:
        args: argparse.Namespace = hub_parser().parse_args(list(argv))
        result: int = await args.run(args)
        return result

    async def test_issue_list_revoke(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        data = tmp_path / "H"
        save_settings(HubPaths(data), HubSettings())
        assert (
            await self._run(
                "token",
                "issue",
                "--data",
                str(data),
                "--role",
                "operator",
                "--label",
                "night shift",
                "--json",
            )
            == 0
        )
        issued = json.loads(capsys.readouterr().out)
        assert issued["token"].startswith("mlah_") and issued["role"] == "operator"
        assert issued["token"] not in (data / "access" / "tokens.json").read_text()
        assert (
            await self._run(
                "token", "issue", "--data", str(data), "--role", "authority", "--authority", A
            )
            == 0
        )
        out = capsys.readouterr()
        staff_token = out.out.strip()
        assert staff_token.startswith("mlah_") and "cannot show it again" in out.err
        await self._run("token", "list", "--data", str(data), "--json")
        listed = json.loads(capsys.readouterr().out)
        assert [(t["role"], t["status"]) for t in listed] == [
            ("operator", "active"),
            ("authority", "active"),
        ]
        assert all("secret_sha256" not in t and "token" not in t for t in listed)
        await self._run("token", "revoke", "--data", str(data), "--id", issued["token_id"])
        capsys.readouterr()
        await self._run("token", "list", "--data", str(data), "--all", "--json")
        assert [t["status"] for t in json.loads(capsys.readouterr().out)] == ["revoked", "active"]
        store = TokenStore(tokens_path(data))
        with pytest.raises(Unauthenticated, match="revoked"):
            store.authenticate(_bearer(issued["token"]), now=SystemClock().now())
        assert store.authenticate(_bearer(staff_token), now=SystemClock().now()).authority == A

    async def test_refusals(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="holds no hub"):
            await self._run("token", "list", "--data", str(tmp_path / "nothing"))
        save_settings(HubPaths(tmp_path), HubSettings())
        with pytest.raises(ValidationError, match="authority"):
            await self._run("token", "issue", "--data", str(tmp_path), "--role", "authority")
        for role in ("liaison", "auditor"):  # only through `hub liaison accredit`, `auditor admit`
            with pytest.raises(SystemExit):
                hub_parser().parse_args(["token", "issue", "--data", "x", "--role", role])
        with pytest.raises(ValidationError, match="--role: operator or authority"):
            await self._run("token", "issue", "--data", str(tmp_path))
        with pytest.raises(ValidationError, match="the ledger's accreditation sets role"):
            await self._run(
                "token", "issue", "--data", str(tmp_path), "--role", "operator",
                "--accreditation", mid(1),
            )  # fmt: skip

    async def test_accredit_refuses_a_consent_for_someone_else(self, tmp_path: Path) -> None:
        """Checked before the ledger is read: the file's readable copy, and the named officer."""
        save_settings(HubPaths(tmp_path), HubSettings())
        made = sign_consent(_consent(), KEYS[A])
        path = tmp_path / "consent.json"
        base = ["liaison", "accredit", "--data", str(tmp_path), "--home", A, "--host", B]
        path.write_bytes(encode_json(made))
        with pytest.raises(ValidationError, match="not XA-LO-9"):
            await self._run(*base, "--officer", "XA-LO-9", "--consent", str(path))
        doctored = msgspec.structs.replace(made, readable=_consent(host=C))
        path.write_bytes(encode_json(doctored))
        with pytest.raises(ValidationError, match="readable"):
            await self._run(*base, "--officer", "XA-LO-0042", "--consent", str(path))
        with pytest.raises(ValidationError, match="cannot read"):
            await self._run(*base, "--officer", "XA-LO-0042", "--consent", str(tmp_path / "no"))


class TestConsentCommand:
    """``node-agent liaison consent`` (``node_agent.cli_consent``) signs what the hub accepts."""

    async def test_consent_verifies_against_the_admitted_card(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        now = SystemClock().now()
        settings = AgentSettings(id=A, state="XA", name="XA", kinds=["mla"], languages=["en"])
        keys = init_agent(AgentPaths(tmp_path / "A"), settings, now=now)
        made = card_file(settings, keys, now=now)
        directory = Directory()
        directory.apply_admitted(0, now, AuthorityAdmitted(
            authority=A, signed=made.signed, operator_key=OPERATOR.public,
            operator_signature=cards.admit(made.signed, OPERATOR, now=now),
        ))  # fmt: skip
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command", required=True)

        def command(name: str, help: str, parent: Any) -> argparse.ArgumentParser:
            p: argparse.ArgumentParser = parent.add_parser(name, help=help)
            p.add_argument("--data", type=Path, required=True)
            return p

        register_consent(sub, command)
        args = parser.parse_args(
            [
                "liaison",
                "consent",
                "--data",
                str(tmp_path / "A"),
                "--officer",
                "XA-LO-3",
                "--host",
                B,
                "--valid-days",
                "10",
            ]
        )
        assert await args.run(args) == 0
        consent_file = decode_json(capsys.readouterr().out, ConsentFile)
        consent = open_consent(consent_file.signed, directory, now=SystemClock().now())
        assert (consent.officer, consent.home, consent.host) == ("XA-LO-3", A, B)
        assert consent.valid_until - consent.issued_at == timedelta(days=10)
