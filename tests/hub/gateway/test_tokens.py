"""Bearer tokens and liaison consents (``hub.gateway.tokens``, ``hub.gateway.token_store``,
``hub.crypto.consent``, ``hub.cli_access``; issue 5): hashed at rest in the hub's token bucket
(a real nats-server), revocable, expiring, scoped; consents signed by the home authority's key
and checked against the directory, one test per way of tampering. Several read APIs on one
bucket, concurrent writers and the import of a former token file: ``test_token_store``."""

from __future__ import annotations

import argparse
import asyncio
import json
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
    UnavailableError,
    UnknownSender,
    ValidationError,
)
from hub.gateway.access import Principal, Unauthenticated
from hub.gateway.nats_server import EmbeddedNats
from hub.gateway.token_store import TokenStore
from hub.gateway.tokens import (
    Issued,
    TokenIndex,
    decode_record,
    encode_record,
    new_token,
    revoked,
    token_hash,
)
from hub.ledger.projections.directory import Directory
from hub.settings import HubPaths, HubSettings, save_settings
from node_agent.cli_consent import register as register_consent
from node_agent.config import AgentPaths, AgentSettings
from node_agent.identity import card_file, init_agent
from schemas.access import ConsentFile, LiaisonConsent, SignedConsent
from schemas.codec import decode_json, encode_json
from schemas.ledger import AuthorityAdmitted
from tests.harness import eventually
from tests.hub.audit.history import KEYS, NOW, OPERATOR, admission, mid
from tests.hub.gateway.conftest import TokenBucket

A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"
DAY = timedelta(days=1)


@pytest.fixture
async def store(bucket: TokenBucket) -> TokenStore:
    return await bucket.store()


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def _index(*issued: Issued) -> TokenIndex:
    index = TokenIndex()
    for revision, made in enumerate(issued, 1):
        index.apply(made.record.token_id, revision, made.record)
    return index


def _made(role: str = "operator", **scope: Any) -> Issued:
    return new_token(
        role,  # type: ignore[arg-type]
        token_id="0123456789abcdef",
        secret="s" * 43,
        now=NOW,
        valid_for=scope.pop("valid_for", DAY),
        **scope,
    )


class TestTokenIndex:
    """The pure part: headers checked against the index, hashes compared in constant time."""

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            (None, "authorization: a bearer token is required"),
            ("", "authorization: a bearer token is required"),
            ("Basic abc", "authorization: expected 'Bearer <token>'"),
            ("Bearer", "authorization: expected 'Bearer <token>'"),
            ("Bearer mlah_x_y", "authorization: not a hub access token"),
            ("Bearer other_0123456789abcdef_s", "authorization: not a hub access token"),
        ],
    )
    def test_malformed_headers(self, header: str | None, message: str) -> None:
        with pytest.raises(Unauthenticated) as refused:
            TokenIndex().authenticate(header, now=NOW)
        assert str(refused.value) == message

    def test_wrong_secret_and_unknown_id(self) -> None:
        made = _made()
        index = _index(made)
        assert index.authenticate(_bearer(made.token), now=NOW).role == "operator"
        flipped = made.token[:-1] + "A"
        unknown = "mlah_fedcba9876543210_" + made.token.split("_", 2)[2]
        for token in (flipped, unknown, made.token + "x"):
            with pytest.raises(Unauthenticated, match=r"^authorization: unknown token$"):
                index.authenticate(_bearer(token), now=NOW)

    def test_an_older_revision_never_undoes_a_newer_one(self) -> None:
        made = _made()
        index = TokenIndex()
        index.apply(made.record.token_id, 2, revoked(made.record, now=NOW))
        index.apply(made.record.token_id, 1, made.record)  # a late watcher entry
        assert not index.still_live(made.record.token_id, now=NOW)
        index.apply(made.record.token_id, 3, None)  # deleted
        index.apply(made.record.token_id, 2, made.record)
        assert index.records() == []

    def test_records_decode_only_under_their_own_key(self) -> None:
        record = _made().record
        assert decode_record(record.token_id, encode_record(record)) == record
        with pytest.raises(ValidationError) as wrong:
            decode_record("fedcba9876543210", encode_record(record))
        assert str(wrong.value) == (
            "ACCESS_TOKENS key 'fedcba9876543210': holds token 0123456789abcdef"
        )
        with pytest.raises(Malformed, match=r"^ACCESS_TOKENS key 'k': not valid JSON"):
            decode_record("k", b"{")


@pytest.mark.nats
class TestTokenStore:
    """Tokens are stored in the bucket as hashes only, revocable and expiring."""

    async def test_issue_then_authenticate(self, store: TokenStore) -> None:
        issued = await store.issue("authority", now=NOW, valid_for=DAY, authority=A, label="staff")
        principal = store.authenticate(_bearer(issued.token), now=NOW + timedelta(hours=1))
        assert principal == Principal(
            token_id=issued.record.token_id, role="authority", expires_at=NOW + DAY, authority=A
        )
        assert store.authenticate(f"bearer  {issued.token} ", now=NOW).role == "authority"

    async def test_bucket_holds_only_hashes_and_every_revision(
        self, bucket: TokenBucket, store: TokenStore
    ) -> None:
        issued = await store.issue("auditor", now=NOW, valid_for=DAY, accreditation_id=mid(1))
        token_id = issued.record.token_id
        data = (await bucket.kv.get(token_id)).value or b""
        secret = issued.token.split("_", 2)[2]
        assert issued.token.encode() not in data and secret.encode() not in data
        record = json.loads(data)
        assert record["schema"] == "mla.access.token.v1" and record["token_id"] == token_id
        assert issued.record.secret_sha256 == token_hash(issued.token)
        await store.revoke(token_id, now=NOW + timedelta(minutes=1))
        history = await bucket.kv.history(token_id)  # the issue, then the revocation
        assert [decode_record(token_id, e.value or b"").revoked_at for e in history] == [
            None,
            NOW + timedelta(minutes=1),
        ]

    async def test_revoked_and_expired(self, bucket: TokenBucket, store: TokenStore) -> None:
        issued = await store.issue("operator", now=NOW, valid_for=DAY)
        running = await bucket.store(follow=True)  # another instance's read API, following
        assert running.authenticate(_bearer(issued.token), now=NOW).role == "operator"
        token_id = issued.record.token_id
        first = await store.revoke(token_id, now=NOW + timedelta(minutes=1))
        again = await store.revoke(token_id, now=NOW + DAY)
        assert again.revoked_at == first.revoked_at == NOW + timedelta(minutes=1)
        later = NOW + timedelta(minutes=2)
        await eventually(lambda: not running.still_live(token_id, now=later), "the revocation")
        with pytest.raises(Unauthenticated) as refused:
            running.authenticate(_bearer(issued.token), now=later)
        assert str(refused.value) == f"authorization: token {token_id} was revoked"
        other = await store.issue("auditor", now=NOW, valid_for=DAY, accreditation_id=mid(2))
        other_id = other.record.token_id
        before_end = NOW + DAY - timedelta(seconds=1)
        await eventually(lambda: running.still_live(other_id, now=before_end), "the new token")
        with pytest.raises(Unauthenticated) as refused:
            running.authenticate(_bearer(other.token), now=NOW + DAY)
        assert str(refused.value) == f"authorization: token {other_id} expired"
        with pytest.raises(ValidationError) as missing:
            await store.revoke("ffffffffffffffff", now=NOW)
        assert str(missing.value) == "--id: no token ffffffffffffffff"

    async def test_liaison_tokens_end_with_their_term_and_revoke_per_accreditation(
        self, store: TokenStore
    ) -> None:
        end = NOW + timedelta(days=3)
        pair = {"officer": "LO-1", "home": A}
        one = await store.issue(
            "liaison", now=NOW, valid_for=DAY * 30, host=B, not_after=end,
            accreditation_id=mid(1), **pair,
        )  # fmt: skip
        two = await store.issue(
            "liaison", now=NOW, valid_for=DAY, host=C, accreditation_id=mid(2), **pair
        )
        again = await store.issue(
            "liaison", now=NOW, valid_for=DAY, host=C, accreditation_id=mid(2), **pair
        )
        assert one.record.expires_at == end
        revoked_now = await store.revoke_accreditations({mid(2)}, now=NOW)
        assert sorted(r.token_id for r in revoked_now) == sorted(
            (two.record.token_id, again.record.token_id)
        )
        assert await store.revoke_accreditations({mid(2)}, now=NOW) == []
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
    async def test_scope_must_fit_the_role(
        self, bucket: TokenBucket, store: TokenStore, role: str, scope: dict[str, str]
    ) -> None:
        with pytest.raises(ValidationError):
            await store.issue(role, now=NOW, valid_for=DAY, **scope)  # type: ignore[arg-type]
        assert (await bucket.kv.status()).values == 0

    async def test_bad_values_are_refused_before_they_are_written(
        self, bucket: TokenBucket, store: TokenStore
    ) -> None:
        with pytest.raises(SchemaInvalid, match="authority"):
            await store.issue("authority", now=NOW, valid_for=DAY, authority="nobody")
        with pytest.raises(
            ValidationError, match=r"^expires: a token is valid for 1 to 3660 days$"
        ):
            await store.issue("operator", now=NOW, valid_for=timedelta(0))
        with pytest.raises(TypeError, match=r"^new_token: unknown scope field\(s\): autority$"):
            await store.issue("authority", now=NOW, valid_for=DAY, autority=A)  # type: ignore[call-arg]
        await store.load()
        assert store.records() == [] and (await bucket.kv.status()).values == 0


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


@pytest.mark.nats
class TestTokenCommands:
    """``hub token issue|list|revoke`` on a hub data folder, against the hub's token bucket."""

    async def _run(self, *argv: str) -> int:
        args: argparse.Namespace = hub_parser().parse_args(list(argv))
        result: int = await args.run(args)
        return result

    async def test_issue_list_revoke(
        self, tmp_path: Path, bucket: TokenBucket, capsys: pytest.CaptureFixture[str]
    ) -> None:
        data = tmp_path / "H"
        save_settings(HubPaths(data), HubSettings())
        at = ["--data", str(data), "--nats", bucket.url]
        running = await bucket.store(follow=True)  # a running read API, meanwhile
        assert (
            await self._run(
                "token", "issue", *at, "--role", "operator", "--label", "night shift", "--json"
            )
            == 0
        )
        issued = json.loads(capsys.readouterr().out)
        assert issued["token"].startswith("mlah_") and issued["role"] == "operator"
        stored = (await bucket.kv.get(issued["token_id"])).value or b""
        assert issued["token"].split("_", 2)[2].encode() not in stored
        assert await self._run("token", "issue", *at, "--role", "authority", "--authority", A) == 0
        out = capsys.readouterr()
        staff_token = out.out.strip()
        assert staff_token.startswith("mlah_") and "cannot show it again" in out.err
        await self._run("token", "list", *at, "--json")
        listed = json.loads(capsys.readouterr().out)
        assert [(t["role"], t["status"]) for t in listed] == [
            ("operator", "active"),
            ("authority", "active"),
        ]
        assert all("secret_sha256" not in t and "token" not in t for t in listed)
        await self._run("token", "revoke", *at, "--id", issued["token_id"])
        assert capsys.readouterr().out.startswith(f"token {issued['token_id']} (operator; ")
        await self._run("token", "list", *at, "--all", "--json")
        assert [t["status"] for t in json.loads(capsys.readouterr().out)] == ["revoked", "active"]
        await self._run("token", "list", *at, "--json")
        assert [t["role"] for t in json.loads(capsys.readouterr().out)] == ["authority"]

        def refused() -> bool:
            return not running.still_live(issued["token_id"], now=SystemClock().now())

        await eventually(refused, "the revocation at the running read API", timeout=5.0)
        with pytest.raises(Unauthenticated, match="revoked"):
            running.authenticate(_bearer(issued["token"]), now=SystemClock().now())
        assert running.authenticate(_bearer(staff_token), now=SystemClock().now()).authority == A

    async def test_twenty_at_once_lose_nothing(
        self, tmp_path: Path, bucket: TokenBucket, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Twenty operators issue at the same moment, each command on its own connection."""
        save_settings(HubPaths(tmp_path), HubSettings())
        at = ["--data", str(tmp_path), "--nats", bucket.url]
        issues = [self._run("token", "issue", *at, "--role", "operator") for _ in range(20)]
        assert await asyncio.gather(*issues) == [0] * 20
        capsys.readouterr()
        await self._run("token", "list", *at, "--json")
        assert len(json.loads(capsys.readouterr().out)) == 20

    async def test_without_the_bucket(self, tmp_path: Path, nats_server: EmbeddedNats) -> None:
        save_settings(HubPaths(tmp_path), HubSettings())
        assert nats_server.url is not None
        with pytest.raises(UnavailableError) as refused:
            await self._run("token", "list", "--data", str(tmp_path), "--nats", nats_server.url)
        assert str(refused.value) == (
            "access tokens: no ACCESS_TOKENS bucket on this NATS; start the hub (`hub up`) once"
        )

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
