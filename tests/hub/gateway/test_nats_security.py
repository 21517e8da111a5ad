"""NATS transport security on a real nats-server: TLS only, nkey users, per-authority subjects.

Every refusal is asserted with the exact text the nats-py client receives (nats-py lower-cases
the server's ``-ERR`` line), and each way in is its own test case. A positive control shows the
same authority doing what it is meant to do, so the refusals cannot pass for the wrong reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import nats
import nats.errors
import pytest
from cryptography import x509
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from hub import ids, subjects
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.crypto.tls import CertAndKey, make_ca, make_server_cert
from hub.errors import UnavailableError, ValidationError
from hub.gateway import nats_security as sec
from hub.gateway.connection import close
from hub.gateway.intake_client import IntakeClient
from hub.gateway.nats_server import EmbeddedNats, NatsServerOptions
from hub.gateway.service import HubService
from hub.gateway.token_store import TokenStore
from hub.ledger.store import ensure_topology
from hub.ledger.transparency import new_log_key
from hub.operator import admission_request, submit_admission
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from node_agent.transport import HubLink
from schemas.codec import decode, encode
from schemas.envelope import Body
from schemas.transport import Delivery
from tests.harness import eventually

A, B = "XA-MOJ", "XB-MOJ"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SHORT = 0.3  # how long a refused request waits for an answer that never comes


def _violation(action: str, subject: str) -> str:
    return f'nats: permissions violation for {action} to "{subject.lower()}"'


# --- pure parts ---------------------------------------------------------------------------------


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, ``>`` one or more trailing tokens."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


class TestIdentities:
    """Nkey user identities: generated, reloaded from the seed, and refused when malformed."""

    def test_generate_and_reload(self) -> None:
        made = sec.NatsIdentity.generate(A)
        assert made.seed.startswith(b"SU") and made.public.startswith("U")
        assert len(made.public) == 56
        assert sec.NatsIdentity.from_seed(A, made.seed) == made
        assert made.seed.decode() not in repr(made)

    def test_known_vector(self) -> None:
        made = sec.NatsIdentity.generate(A, entropy=bytes(32))
        assert made.seed.startswith(b"SUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        assert sec.check_user_public(made.public) == made.public

    @pytest.mark.parametrize(
        "seed",
        [b"not a seed", b"SAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", b""],
    )
    def test_bad_seed_refused(self, seed: bytes) -> None:
        with pytest.raises(ValidationError):
            sec.NatsIdentity.from_seed(A, seed)

    def test_account_seed_refused(self) -> None:
        import nkeys

        account_seed = bytes(nkeys.encode_seed(bytes(32), nkeys.PREFIX_BYTE_ACCOUNT))
        with pytest.raises(ValidationError, match="not a user seed"):
            sec.NatsIdentity.from_seed(A, account_seed)

    def test_bad_public_refused(self) -> None:
        public = sec.NatsIdentity.generate(A).public
        flipped = public[:10] + ("A" if public[10] != "A" else "B") + public[11:]
        for bad in (flipped, public[:-1], "A" + public[1:], "not base32!"):
            with pytest.raises(ValidationError):
                sec.check_user_public(bad)


class TestPermissions:
    """The permission sets, spelled out, and none of A's reaching anything of B's."""

    def test_authority_set(self) -> None:
        assert sec.authority_permissions(A) == sec.Permissions(
            publish=(
                "mla.submit.XA-MOJ",
                "$JS.API.CONSUMER.INFO.DELIVER.agent-XA-MOJ",
                "$JS.API.CONSUMER.INFO.VERDICT.agent-XA-MOJ-verdicts",
                "$JS.API.CONSUMER.MSG.NEXT.DELIVER.agent-XA-MOJ",
                "$JS.API.CONSUMER.MSG.NEXT.VERDICT.agent-XA-MOJ-verdicts",
                "$JS.ACK.DELIVER.agent-XA-MOJ.*.*.*.*.*",
                "$JS.ACK.VERDICT.agent-XA-MOJ-verdicts.*.*.*.*.*",
                "$JS.API.DIRECT.GET.VERDICT.mla.verdict.XA-MOJ.>",
                "$JS.API.STREAM.INFO.KV_DIRECTORY",
                "$JS.API.DIRECT.GET.KV_DIRECTORY.$KV.DIRECTORY.>",
                "$JS.API.STREAM.MSG.GET.KV_DIRECTORY",
                "mla.hub.checkpoint",
                "mla.hub.consistency",
                "mla.hub.cosign.XA-MOJ",
            ),
            subscribe=("_INBOX.XA-MOJ.>", "mla.verdict.XA-MOJ.>"),
        )

    def test_hub_set(self) -> None:
        perms = sec.hub_permissions()
        assert "mla.submit.OPERATOR" in perms.publish
        assert not any(_matches(p, "mla.submit.XA-MOJ") for p in perms.publish)
        assert perms.subscribe == ("_INBOX.hub.>", "mla.verdict.OPERATOR.>", "mla.hub.>")

    @pytest.mark.parametrize(
        "subject",
        [
            "mla.submit.XB-MOJ",
            "mla.deliver.XB-MOJ",
            "mla.verdict.XB-MOJ.m1",
            "mla.ledger",
            "_INBOX.XB-MOJ.abc.1",
            "$JS.API.CONSUMER.MSG.NEXT.DELIVER.agent-XB-MOJ",
            "$JS.API.CONSUMER.INFO.DELIVER.agent-XB-MOJ",
            "$JS.API.CONSUMER.CREATE.DELIVER",
            "$JS.API.CONSUMER.CREATE.DELIVER.agent-XA-MOJ.mla.deliver.XA-MOJ",
            "$JS.API.CONSUMER.DURABLE.CREATE.DELIVER.agent-XA-MOJ",
            "$JS.API.CONSUMER.DELETE.DELIVER.agent-XB-MOJ",
            "$JS.API.STREAM.INFO.DELIVER",
            "$JS.API.STREAM.MSG.GET.DELIVER",
            "$JS.API.DIRECT.GET.LEDGER",
            "$JS.API.DIRECT.GET.VERDICT.mla.verdict.XB-MOJ.m1",
            "$JS.ACK.DELIVER.agent-XB-MOJ.1.1.1.0.0",
            "$JS.ACK.DELIVER.agent-XA-MOJ.SUBMIT.hub.1.1.1.0.0",  # v2-shaped, 13 tokens
            "$KV.DIRECTORY.card.XA-MOJ",
            "$KV.ACCESS_TOKENS.0123456789abcdef",
            "$JS.API.STREAM.INFO.KV_ACCESS_TOKENS",
            "$JS.API.DIRECT.GET.KV_ACCESS_TOKENS.$KV.ACCESS_TOKENS.0123456789abcdef",
            "$JS.API.STREAM.MSG.GET.KV_ACCESS_TOKENS",
            "$JS.API.CONSUMER.CREATE.KV_ACCESS_TOKENS",
        ],
    )
    def test_authority_reaches_nothing_else(self, subject: str) -> None:
        perms = sec.authority_permissions(A)
        assert not any(_matches(p, subject) for p in perms.publish + perms.subscribe)

    def test_bad_authority_id_refused(self) -> None:
        for bad in ("XA.MOJ", "XA-*", "XA->", "", "$G"):
            with pytest.raises(ValidationError):
                sec.authority_permissions(bad)


class TestConfigText:
    """The rendered configuration: TLS required, one account, nkey users, no anonymous user."""

    def _text(self) -> tuple[str, sec.NatsIdentity, sec.NatsIdentity]:
        hub, a = sec.NatsIdentity.generate("hub"), sec.NatsIdentity.generate(A)
        tls = sec.TlsFiles(Path("/d/server.pem"), Path("/d/server.key"))
        return sec.security_config(tls, hub.public, {A: a.public}), hub, a

    def test_sections(self) -> None:
        text, hub, a = self._text()
        assert 'cert_file: "/d/server.pem"' in text and 'min_version: "1.3"' in text
        assert "accounts {\n  MLA {\n    jetstream: enabled" in text
        assert f'{{nkey: "{hub.public}"' in text and f'{{nkey: "{a.public}"' in text
        assert '"$JS.API.CONSUMER.MSG.NEXT.DELIVER.agent-XA-MOJ"' in text  # quoted: no $var
        assert "no_auth_user" not in text and "password" not in text
        assert a.seed.decode() not in text and hub.seed.decode() not in text

    def test_empty_allow_is_deny_all(self) -> None:
        user = sec.NatsUser(A, sec.NatsIdentity.generate(A).public, sec.Permissions((), ()))
        text = sec.render_security_config(sec.TlsFiles(Path("c"), Path("k")), [user])
        assert 'publish: {deny: [">"]}' in text and 'subscribe: {deny: [">"]}' in text

    def test_duplicate_user_refused(self) -> None:
        a = sec.NatsIdentity.generate(A)
        with pytest.raises(ValidationError, match="twice"):
            sec.security_config(sec.TlsFiles(Path("c"), Path("k")), a.public, {A: a.public})


class TestCertificates:
    """The CA and the server certificate: hosts as SANs, chain, validity from ``now``."""

    def test_default_hosts(self, tls_material: tuple[CertAndKey, CertAndKey]) -> None:
        ca, server = tls_material
        cert = x509.load_pem_x509_certificate(server.cert_pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.IPAddress) == [
            ip_address("127.0.0.1"),
            ip_address("::1"),
        ]
        assert san.get_values_for_type(x509.DNSName) == ["localhost"]
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))
        assert cert.not_valid_before_utc == NOW - timedelta(minutes=5)
        assert cert.not_valid_after_utc == NOW + timedelta(days=825)

    def test_configured_hosts(self, tls_material: tuple[CertAndKey, CertAndKey]) -> None:
        server = make_server_cert(tls_material[0], ["hub.example.org", "10.0.0.7"], now=NOW)
        cert = x509.load_pem_x509_certificate(server.cert_pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["hub.example.org"]
        assert san.get_values_for_type(x509.IPAddress) == [ip_address("10.0.0.7")]

    def test_bad_ca_refused(self, tls_material: tuple[CertAndKey, CertAndKey]) -> None:
        ca = tls_material[0]
        for bad in (CertAndKey(ca.cert_pem, b"junk"), CertAndKey(b"junk", ca.key_pem)):
            with pytest.raises(ValidationError, match="ca: "):
                make_server_cert(bad, now=NOW)

    @pytest.mark.parametrize("hosts", [[], ["bad host"], ["a..b"], ["*.example.org"]])
    def test_bad_hosts_refused(
        self, tls_material: tuple[CertAndKey, CertAndKey], hosts: list[str]
    ) -> None:
        with pytest.raises(ValidationError):
            make_server_cert(tls_material[0], hosts, now=NOW)


# --- on a real nats-server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_material() -> tuple[CertAndKey, CertAndKey]:
    ca = make_ca("mla-hub test CA", now=NOW)
    return ca, make_server_cert(ca, now=NOW)


@dataclass
class Secured:
    """A nats-server with the hub's security configuration, and clients that record errors."""

    root: Path
    ca_pem: bytes
    tls: sec.TlsFiles
    server: EmbeddedNats
    hub: sec.NatsIdentity
    ids: dict[str, sec.NatsIdentity]
    url: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    clients: list[NatsClient] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "nats" / "security.conf"

    def write(self, admitted: list[str]) -> None:
        text = sec.security_config(
            self.tls, self.hub.public, {a: self.ids[a].public for a in admitted}
        )
        sec.write_security_config(self.conf, text)

    async def connect(
        self, who: sec.NatsIdentity, *, seed: bool = True, reconnect: bool = True
    ) -> NatsClient:
        """What ``hub.gateway.connection.connect`` will do with credentials."""
        creds = sec.ClientCredentials.of(who, self.ca_pem)
        seen = self.errors.setdefault(who.name, [])

        async def on_error(e: Exception) -> None:
            seen.append(str(e))

        nc = await nats.connect(
            self.url,
            name=who.name,
            tls=creds.tls_context(),
            nkeys_seed_str=creds.seed.decode() if seed else None,
            inbox_prefix=creds.inbox_prefix,
            connect_timeout=2.0,
            allow_reconnect=reconnect,
            max_reconnect_attempts=2,
            reconnect_time_wait=0.05,
            error_cb=on_error,
        )
        self.clients.append(nc)
        return nc

    async def refused(self, who: str, text: str) -> None:
        await eventually(lambda: text in self.errors.get(who, []), text, timeout=3.0)


@pytest.fixture
async def secured(
    tmp_path: Path, tls_material: tuple[CertAndKey, CertAndKey]
) -> AsyncIterator[Secured]:
    ca, server_cert = tls_material
    (tmp_path / "tls").mkdir()
    tls = sec.TlsFiles(tmp_path / "tls" / "server.pem", tmp_path / "tls" / "server.key")
    tls.cert_file.write_bytes(server_cert.cert_pem)
    tls.key_file.write_bytes(server_cert.key_pem)
    tls.key_file.chmod(0o600)
    (tmp_path / "nats").mkdir()
    setup = Secured(
        root=tmp_path,
        ca_pem=ca.cert_pem,
        tls=tls,
        server=EmbeddedNats(
            NatsServerOptions(store_dir=tmp_path / "nats", extra_config='include "security.conf"\n')
        ),
        hub=sec.NatsIdentity.generate(sec.HUB_USER),
        ids={x: sec.NatsIdentity.generate(x) for x in (A, B, "XC-MOJ")},
    )
    setup.write([A, B])  # XC-MOJ has a key but was never admitted
    setup.url = await setup.server.start()
    try:
        hub_js = (await setup.connect(setup.hub)).jetstream()
        await ensure_topology(hub_js)
        for authority in (A, B):  # what the hub does when it admits an authority
            await sec.ensure_authority_consumers(hub_js, authority)
        yield setup
    finally:
        for nc in setup.clients:
            await close(nc)
        await setup.server.stop()


def _hub_js(s: Secured) -> JetStreamContext:
    return s.clients[0].jetstream(timeout=2.0)


async def _wait_verdict(nc: NatsClient, sender: str, message_id: str, timeout: float) -> bytes:
    """The verdict recipe an authority can use: core subscription first, then a direct get."""
    subject = subjects.verdict(sender, message_id)
    sub = await nc.subscribe(subject, max_msgs=1)
    try:
        try:
            return (await nc.jetstream().get_last_msg("VERDICT", subject, direct=True)).data or b""
        except NotFoundError:
            return (await sub.next_msg(timeout=timeout)).data
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


@pytest.mark.nats
class TestAuthorityMayDoItsJob:
    """Positive control: with its nkey, A submits, receives, acks, reads verdicts and cards."""

    async def test_own_paths(self, secured: Secured) -> None:
        hub_js = _hub_js(secured)
        await hub_js.publish(subjects.deliver(A), b"for A")
        await hub_js.publish(subjects.verdict(A, "m1"), b"verdict m1")
        await (await hub_js.key_value("DIRECTORY")).put(subjects.card_key(B), b"card of B")
        nc = await secured.connect(secured.ids[A])
        js = nc.jetstream(timeout=2.0)

        ack = await js.publish(subjects.submit(A), b"sealed", headers={"Nats-Msg-Id": "m1"})
        assert (ack.stream, ack.seq) == ("SUBMIT", 1)
        deliveries = await js.pull_subscribe(  # today's transport code, unchanged: binds
            subjects.deliver(A), durable=sec.delivery_consumer(A), stream="DELIVER"
        )
        [msg] = await deliveries.fetch(1, timeout=2.0)
        assert msg.data == b"for A"
        await msg.ack()
        verdicts = await js.pull_subscribe_bind(sec.verdict_consumer(A), stream="VERDICT")
        [msg] = await verdicts.fetch(1, timeout=2.0)
        await msg.term()
        assert await _wait_verdict(nc, A, "m1", 2.0) == b"verdict m1"
        later = asyncio.create_task(_wait_verdict(nc, A, "m2", 3.0))
        await asyncio.sleep(0.1)
        await hub_js.publish(subjects.verdict(A, "m2"), b"verdict m2")
        assert await later == b"verdict m2"
        assert (await (await js.key_value("DIRECTORY")).get(subjects.card_key(B))).value == (
            b"card of B"
        )
        await sec.ensure_authority_consumers(hub_js, A)  # again, e.g. on a hub restart
        info = await js.consumer_info("DELIVER", sec.delivery_consumer(A))
        assert (info.num_ack_pending, info.delivered.stream_seq) == (0, 1)
        assert secured.errors[A] == []


Attempt = Callable[[NatsClient, JetStreamContext], Awaitable[object]]


async def _fetch_b(nc: NatsClient, js: JetStreamContext) -> object:
    sub = await js.pull_subscribe_bind(sec.delivery_consumer(B), stream="DELIVER")
    return await sub.fetch(1, timeout=SHORT)


def _create(
    stream: str, *, filter_subject: str, name: str | None = None, durable_name: str | None = None
) -> Attempt:
    config = js_api.ConsumerConfig(
        name=name, durable_name=durable_name, filter_subject=filter_subject
    )

    async def attempt(nc: NatsClient, js: JetStreamContext) -> object:
        return await js.add_consumer(stream, config, timeout=SHORT)

    return attempt


def _request(subject: str, payload: bytes = b"") -> Attempt:
    async def attempt(nc: NatsClient, js: JetStreamContext) -> object:
        return await nc.request(subject, payload, timeout=SHORT)

    return attempt


REQUESTS: list[tuple[str, Attempt, str]] = [
    (
        "publish on B's intake",
        lambda nc, js: js.publish(subjects.submit(B), b"forged", timeout=SHORT),
        "mla.submit.XB-MOJ",
    ),
    ("pull from B's durable", _fetch_b, "$JS.API.CONSUMER.MSG.NEXT.DELIVER.agent-XB-MOJ"),
    (
        "info of B's durable",
        lambda nc, js: js.consumer_info("DELIVER", sec.delivery_consumer(B), timeout=SHORT),
        "$JS.API.CONSUMER.INFO.DELIVER.agent-XB-MOJ",
    ),
    (
        "named consumer on B's deliveries",
        _create("DELIVER", name="peek", filter_subject=subjects.deliver(B)),
        "$JS.API.CONSUMER.CREATE.DELIVER.peek.mla.deliver.XB-MOJ",
    ),
    (
        "its own consumer name, B's filter",
        _create("DELIVER", name=sec.delivery_consumer(A), filter_subject=subjects.deliver(B)),
        "$JS.API.CONSUMER.CREATE.DELIVER.agent-XA-MOJ.mla.deliver.XB-MOJ",
    ),
    (
        "unnamed consumer (filter in the body)",
        _create("DELIVER", filter_subject=subjects.deliver(B)),
        "$JS.API.CONSUMER.CREATE.DELIVER",
    ),
    (
        "legacy durable create",
        _create("DELIVER", durable_name="peek", filter_subject=subjects.deliver(B)),
        "$JS.API.CONSUMER.DURABLE.CREATE.DELIVER.peek",
    ),
    (
        "delete B's durable",
        lambda nc, js: js.delete_consumer("DELIVER", sec.delivery_consumer(B)),
        "$JS.API.CONSUMER.DELETE.DELIVER.agent-XB-MOJ",
    ),
    (
        "stream info (per-subject counts)",
        lambda nc, js: js.stream_info("DELIVER", subjects_filter=">"),
        "$JS.API.STREAM.INFO.DELIVER",
    ),
    (
        "message get on DELIVER",
        lambda nc, js: js.get_msg("DELIVER", seq=1),
        "$JS.API.STREAM.MSG.GET.DELIVER",
    ),
    (
        "direct get on LEDGER",
        lambda nc, js: js.get_msg("LEDGER", seq=1, direct=True),
        "$JS.API.DIRECT.GET.LEDGER",
    ),
    (
        "message get on LEDGER",
        lambda nc, js: js.get_msg("LEDGER", seq=1),
        "$JS.API.STREAM.MSG.GET.LEDGER",
    ),
    (
        "consumer on LEDGER",
        _create("LEDGER", name="peek", filter_subject=subjects.LEDGER_SUBJECT),
        "$JS.API.CONSUMER.CREATE.LEDGER.peek.mla.ledger",
    ),
    (
        "direct get of B's verdict",
        lambda nc, js: js.get_last_msg("VERDICT", subjects.verdict(B, "m1"), direct=True),
        "$JS.API.DIRECT.GET.VERDICT.mla.verdict.XB-MOJ.m1",
    ),
    (
        "ordered consumer for its own verdict (today's wait_verdict)",
        lambda nc, js: js.subscribe(
            subjects.verdict(A, "m1"), stream="VERDICT", ordered_consumer=True
        ),
        "$JS.API.CONSUMER.CREATE.VERDICT",
    ),
    (
        "write to the directory",
        lambda nc, js: js.publish("$KV.DIRECTORY.card.XA-MOJ", b"forged card", timeout=SHORT),
        "$KV.DIRECTORY.card.XA-MOJ",
    ),
    ("account info", _request("$JS.API.INFO"), "$JS.API.INFO"),
]


@pytest.mark.nats
class TestAuthorityCannotReachOthers:
    """Each way A might reach B's intake, deliveries or verdicts, or the ledger, is refused."""

    @pytest.mark.parametrize(
        ("attempt", "subject"),
        [(a, s) for _, a, s in REQUESTS],
        ids=[label for label, _, _ in REQUESTS],
    )
    async def test_request_refused(self, secured: Secured, attempt: Attempt, subject: str) -> None:
        nc = await secured.connect(secured.ids[A])
        with pytest.raises(nats.errors.TimeoutError):
            await attempt(nc, nc.jetstream(timeout=SHORT))
        await secured.refused(A, _violation("publish", subject))
        assert nc.is_connected  # a violation is reported, the connection stays up

    @pytest.mark.parametrize(
        "subject",
        ["mla.deliver.XB-MOJ", "mla.verdict.XB-MOJ.>", "mla.ledger", "_INBOX.XB-MOJ.>", "_INBOX.>"],
    )
    async def test_subscription_refused(self, secured: Secured, subject: str) -> None:
        nc = await secured.connect(secured.ids[A])
        sub = await nc.subscribe(subject)
        await secured.refused(A, _violation("subscription", subject))
        hub_js = _hub_js(secured)
        await hub_js.publish(subjects.deliver(B), b"for B")
        await hub_js.publish(subjects.verdict(B, "m1"), b"verdict of B")
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=SHORT)

    async def test_ack_on_anothers_consumer_refused(self, secured: Secured) -> None:
        hub_js = _hub_js(secured)
        await hub_js.publish(subjects.deliver(B), b"for B")
        b_js = (await secured.connect(secured.ids[B])).jetstream(timeout=2.0)
        b_sub = await b_js.pull_subscribe_bind(sec.delivery_consumer(B), stream="DELIVER")
        [delivered] = await b_sub.fetch(1, timeout=2.0)
        a = await secured.connect(secured.ids[A])
        await a.publish(delivered.reply, b"+ACK")  # A learned the ack subject somehow
        await a.publish("$JS.ACK.DELIVER.agent-XB-MOJ.SUBMIT.hub.1.1.1.0.0", b"+ACK")
        await secured.refused(A, _violation("publish", delivered.reply))
        info = await b_js.consumer_info("DELIVER", sec.delivery_consumer(B))
        assert info.num_ack_pending == 1  # B's message was not acked by A


TOKENS = subjects.ACCESS_TOKENS_BUCKET
TOKENS_STREAM = f"KV_{TOKENS}"
TOKEN_KEY = f"$KV.{TOKENS}.0123456789abcdef"
TOKEN_REQUESTS: list[tuple[str, Attempt, str]] = [
    (
        "bind to the bucket",
        lambda nc, js: js.key_value(TOKENS),
        f"$JS.API.STREAM.INFO.{TOKENS_STREAM}",
    ),
    (
        "direct get of a record",
        lambda nc, js: js.get_last_msg(TOKENS_STREAM, TOKEN_KEY, direct=True),
        f"$JS.API.DIRECT.GET.{TOKENS_STREAM}.{TOKEN_KEY}",
    ),
    (
        "message get of a record",
        lambda nc, js: js.get_msg(TOKENS_STREAM, seq=1),
        f"$JS.API.STREAM.MSG.GET.{TOKENS_STREAM}",
    ),
    (
        "watch the bucket (ordered consumer)",
        lambda nc, js: js.subscribe(f"$KV.{TOKENS}.>", stream=TOKENS_STREAM, ordered_consumer=True),
        f"$JS.API.CONSUMER.CREATE.{TOKENS_STREAM}",
    ),
    (
        "write a record",
        lambda nc, js: js.publish(TOKEN_KEY, b"forged", timeout=SHORT),
        TOKEN_KEY,
    ),
]


@pytest.mark.nats
class TestTokenBucketIsTheHubsAlone:
    """The read API's token records (``ACCESS_TOKENS``): no node agent reads, watches or writes
    them; the hub's user, under the same configuration, does all three."""

    @pytest.mark.parametrize(
        ("attempt", "subject"),
        [(a, s) for _, a, s in TOKEN_REQUESTS],
        ids=[label for label, _, _ in TOKEN_REQUESTS],
    )
    async def test_request_refused(self, secured: Secured, attempt: Attempt, subject: str) -> None:
        await (await TokenStore.open(_hub_js(secured))).issue("operator", now=NOW, valid_for=DAY)
        nc = await secured.connect(secured.ids[A])
        with pytest.raises(nats.errors.TimeoutError):
            await attempt(nc, nc.jetstream(timeout=SHORT))
        await secured.refused(A, _violation("publish", subject))

    async def test_subscription_refused(self, secured: Secured) -> None:
        nc = await secured.connect(secured.ids[A])
        sub = await nc.subscribe(f"$KV.{TOKENS}.>")
        await secured.refused(A, _violation("subscription", f"$KV.{TOKENS}.>"))
        await (await TokenStore.open(_hub_js(secured))).issue("operator", now=NOW, valid_for=DAY)
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=SHORT)

    async def test_the_token_store_as_an_authority(self, secured: Secured) -> None:
        """What the hub's own code would meet on an authority's connection: a clear refusal."""
        nc = await secured.connect(secured.ids[A])
        with pytest.raises(UnavailableError) as refused:
            await TokenStore.open(nc.jetstream(timeout=SHORT))
        assert str(refused.value) == "access tokens: ACCESS_TOKENS not reachable (nats: timeout)"
        await secured.refused(A, _violation("publish", f"$JS.API.STREAM.INFO.{TOKENS_STREAM}"))

    async def test_the_hub_reads_watches_and_writes(self, secured: Secured) -> None:
        writer = await TokenStore.open(_hub_js(secured))
        reader = await TokenStore.open((await secured.connect(secured.hub)).jetstream())
        await reader.follow()
        try:
            issued = await writer.issue("operator", now=NOW, valid_for=DAY)
            token_id = issued.record.token_id
            await eventually(lambda: reader.still_live(token_id, now=NOW), "the new token")
            await writer.revoke(token_id, now=NOW)
            await eventually(lambda: not reader.still_live(token_id, now=NOW), "the revocation")
        finally:
            await reader.close()
        assert secured.errors[sec.HUB_USER] == []


@pytest.mark.nats
class TestConnecting:
    """No TLS, no nkey, an unknown nkey or a revoked one: the connection is refused."""

    async def test_plain_text_refused(self, secured: Secured) -> None:
        host, port = secured.url.split("://")[1].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            info = json.loads((await reader.readline()).split(b" ", 1)[1])
            assert info["tls_required"] is True and info["auth_required"] is True
            writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
            await writer.drain()
            # the server expects a TLS ClientHello after INFO; plain text ends the connection
            assert await asyncio.wait_for(reader.read(), 3.0) == b""
        finally:
            writer.close()
        assert "TLS handshake error" in secured.server.log_path.read_text()

    async def test_unknown_ca_refused(self, secured: Secured) -> None:
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            await nats.connect(secured.url, connect_timeout=2.0, allow_reconnect=False)

    async def test_without_nkey_refused(self, secured: Secured) -> None:
        with pytest.raises(nats.errors.Error) as refused:
            await secured.connect(secured.ids[A], seed=False, reconnect=False)
        assert str(refused.value) == "nats: 'Authorization Violation'"

    async def test_unadmitted_nkey_refused(self, secured: Secured) -> None:
        with pytest.raises(nats.errors.Error) as refused:
            await secured.connect(secured.ids["XC-MOJ"], reconnect=False)
        assert str(refused.value) == "nats: 'Authorization Violation'"

    async def test_revoked_authority_refused(self, secured: Secured) -> None:
        a = await secured.connect(secured.ids[A])
        b = await secured.connect(secured.ids[B])
        await a.jetstream().publish(subjects.submit(A), b"before revocation")

        secured.write([B])  # A revoked: the configuration is regenerated without it
        assert secured.server.pid is not None
        sec.reload_server(secured.server.pid)

        await eventually(lambda: a.is_closed, "A's connection to be dropped", timeout=5.0)
        assert "nats: 'Authorization Violation'" in secured.errors[A]  # its reconnects
        with pytest.raises(nats.errors.Error) as refused:
            await secured.connect(secured.ids[A], reconnect=False)
        assert str(refused.value) == "nats: 'Authorization Violation'"
        ack = await b.jetstream().publish(subjects.submit(B), b"after revocation")
        assert ack.seq == 2 and b.is_connected
        assert "Reloaded server configuration" in secured.server.log_path.read_text()

    async def test_unparsable_config_keeps_the_previous_one(self, secured: Secured) -> None:
        a = await secured.connect(secured.ids[A])
        secured.conf.write_text("accounts { MLA { users: [ {nkey: ")
        assert secured.server.pid is not None
        sec.reload_server(secured.server.pid)
        log = secured.server.log_path
        await eventually(lambda: "Failed to reload" in log.read_text(), "the reload error")
        assert (await a.jetstream().publish(subjects.submit(A), b"still admitted")).seq == 1
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await secured.connect(secured.ids["XC-MOJ"], reconnect=False)


@pytest.mark.nats
class TestHubUnderItsPermissions:
    """The hub service runs as the hub user: admission, intake, ledger, delivery, verdict."""

    async def test_end_to_end(self, secured: Secured) -> None:
        operator = OperatorKey.generate()
        hub_nc = secured.clients[0]
        service = await HubService.open(
            hub_nc,
            operator_key=operator.public,
            log_key=new_log_key("test.mla-hub.example", os.urandom(32)),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            keys = {x: AuthorityKeys.generate("x25519") for x in (A, B)}
            for x in (A, B):
                settings = AgentSettings(
                    id=x, state=x[:2], name=f"CA of {x[:2]}", kinds=["mla"], languages=["en"]
                )
                made = card_file(settings, keys[x], now=datetime.now(UTC))
                request = admission_request(made, operator, now=datetime.now(UTC))
                intake = IntakeClient(hub_nc, subjects.OPERATOR)
                verdict = await submit_admission(intake, request, 5.0)
                assert verdict.status == "accepted", verdict

            a_nc = await secured.connect(secured.ids[A])
            b_link = HubLink(await secured.connect(secured.ids[B]), B)
            card = await HubLink(a_nc, A).card(B)  # the transport's directory read, unchanged
            assert card is not None
            message_id = ids.uuid7()
            sealed = sealing.seal(
                sender=A,
                sender_keys=keys[A],
                recipients=[
                    sealing.Recipient(B, keys[B].key_id, keys[B].suite, keys[B].encryption_public)
                ],
                message_id=message_id,
                case_id=ids.uuid7(),
                type="request.submit",
                body=Body(text="Please take the evidence of the witness."),
                now=datetime.now(UTC),
            )
            a_intake = IntakeClient(a_nc, A)
            async with a_intake.watch_verdicts() as verdicts:  # the senders' own recipe
                await a_intake.publish(message_id, encode(sealed))
                verdict = await verdicts.wait(message_id, 5.0)
            assert verdict is not None and verdict.status == "accepted", verdict
            assert secured.errors[A] == []  # its watch on mla.verdict.XA-MOJ.> is allowed

            sub = await b_link.js.pull_subscribe_bind(sec.delivery_consumer(B), stream="DELIVER")
            [msg] = await sub.fetch(1, timeout=3.0)
            assert decode(msg.data, Delivery, what="delivery").ledger_index == verdict.ledger_index
            await msg.ack()
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
        with pytest.raises(nats.errors.TimeoutError):  # even the hub cannot forge A's intake
            await hub_nc.jetstream(timeout=SHORT).publish(subjects.submit(A), b"forged")
        await secured.refused(sec.HUB_USER, _violation("publish", subjects.submit(A)))
