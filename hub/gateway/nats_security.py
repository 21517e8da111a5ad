"""Who may connect to the hub's NATS and what each one may touch (DESIGN.md sections 3-4).

The NATS server only accepts TLS (the hub's own CA, see :mod:`hub.crypto.tls`) and only
users it knows by their nkey (Ed25519; the seed never leaves its holder, the server keeps the
public key). Everybody lives in one account, ``MLA``; there is no anonymous user.

An authority ``A`` may, and may only:

- publish its submissions on its own intake subject ``mla.submit.A``;
- pull from and ack its own two durable consumers, which the hub creates at admission
  (``agent-A`` on DELIVER filtered ``mla.deliver.A``, ``agent-A-verdicts`` on VERDICT filtered
  ``mla.verdict.A.*``), and read their info;
- read its own verdicts: live, with a core subscription on ``mla.verdict.A.>``, and after the
  fact, with a direct get of the last message on ``mla.verdict.A.<message id>``;
- read the DIRECTORY bucket (public cards and key history of every admitted authority);
- receive replies on its own inbox prefix ``_INBOX.A`` only (so it cannot read B's replies).

It gets no other ``$JS.API`` subject: it cannot create, change or delete a consumer (so no
consumer of its making can ever filter on B's subjects, whatever its config body says), read
stream info (which would show per-subject counts, i.e. B's message ids), get messages from
DELIVER, VERDICT or LEDGER, or ack on B's consumers. Of the key-value buckets it reaches only
DIRECTORY: nothing of ACCESS_TOKENS (the read API's token records) can be read, watched or
written by a node agent. JetStream does not check subscribe
permissions when a consumer delivers, so every read path is closed at the API subjects.

The hub's user administers the JetStream API and publishes the ledger, deliveries, verdicts and
KV entries; of the intake it may publish only the operator's subject ``mla.submit.OPERATOR``.

Rendering is pure; writing the file, signalling the server to reload and creating consumers are
the I/O edge at the end of this module.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import signal
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nkeys
from nats.js import JetStreamContext
from nats.js import api as js_api

from hub import subjects
from hub.errors import ValidationError

__all__ = [
    "ACCOUNT",
    "HUB_USER",
    "ClientCredentials",
    "NatsIdentity",
    "NatsUser",
    "Permissions",
    "TlsFiles",
    "authority_permissions",
    "authority_user",
    "check_user_public",
    "delivery_consumer",
    "ensure_authority_consumers",
    "hub_permissions",
    "hub_user",
    "inbox_prefix",
    "reload_server",
    "render_security_config",
    "security_config",
    "verdict_consumer",
    "write_security_config",
]

ACCOUNT = "MLA"
HUB_USER = "hub"  # lower case: can never collide with an authority id (^[A-Z]{2}-...)
_NKEY_RAW = 32
_PUBLIC_LEN = 56  # base32 of prefix byte + 32 key bytes + 2 CRC bytes
_ACK_TAIL = ".*.*.*.*.*"  # <delivered>.<stream seq>.<consumer seq>.<time>.<pending>


# --- identities --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NatsIdentity:
    """A NATS user nkey: ``seed`` (``SU...``, secret) and its ``public`` key (``U...``)."""

    name: str
    seed: bytes = field(repr=False)
    public: str

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> NatsIdentity:
        """Load a seed as written by :meth:`generate`; refuses anything but a user seed."""
        try:
            prefix, _ = nkeys.decode_seed(seed.strip())
            pair = nkeys.from_seed(bytearray(seed.strip()))
            public = bytes(pair.public_key).decode()
        except (nkeys.NkeysError, ValueError, binascii.Error) as e:
            raise ValidationError(f"{name}: not an nkey seed", field="nkey_seed") from e
        if prefix != nkeys.PREFIX_BYTE_USER:
            raise ValidationError(f"{name}: the nkey seed is not a user seed", field="nkey_seed")
        return cls(name=name, seed=seed.strip(), public=public)

    @classmethod
    def generate(cls, name: str, entropy: bytes | None = None) -> NatsIdentity:
        """A new user nkey (32 random bytes unless ``entropy`` is given, for test vectors)."""
        raw = secrets.token_bytes(_NKEY_RAW) if entropy is None else entropy
        if len(raw) != _NKEY_RAW:
            raise ValidationError("entropy: need exactly 32 bytes", field="entropy")
        return cls.from_seed(name, bytes(nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER)))


def check_user_public(public: str) -> str:
    """Return ``public`` if it is a well-formed NATS user public key (``U...``, CRC ok)."""
    try:
        raw = base64.b32decode(public + "=" * (-len(public) % 8))
    except (binascii.Error, ValueError) as e:
        raise ValidationError("nkey: not base32", field="nkey") from e
    ok = (
        len(public) == _PUBLIC_LEN
        and len(raw) == 1 + _NKEY_RAW + 2
        and raw[0] == nkeys.PREFIX_BYTE_USER
        and nkeys.crc16(bytearray(raw[:-2])) == int.from_bytes(raw[-2:], "little")
    )
    if not ok:
        raise ValidationError("nkey: not a NATS user public key (U..., 56 chars)", field="nkey")
    return public


def inbox_prefix(name: str) -> str:
    """The reply-inbox prefix of user ``name``; its permissions allow no other inbox."""
    return f"_INBOX.{_token(name, 'name')}"


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a client needs to connect: its nkey seed, its inbox prefix and the pinned CA."""

    seed: bytes = field(repr=False)
    inbox_prefix: str
    ca_pem: bytes

    @classmethod
    def of(cls, identity: NatsIdentity, ca_pem: bytes) -> ClientCredentials:
        return cls(seed=identity.seed, inbox_prefix=inbox_prefix(identity.name), ca_pem=ca_pem)

    def tls_context(self) -> ssl.SSLContext:
        """TLS 1.3 client context trusting the hub's CA only (hostname checked)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self.ca_pem.decode())
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context


# --- permissions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Permissions:
    """Subjects a user may publish to and subscribe on; anything not allowed is denied."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NatsUser:
    """One entry of the account's user list."""

    name: str  # for the comment in the configuration only
    public: str
    permissions: Permissions


def delivery_consumer(authority: str) -> str:
    """The durable consumer on DELIVER through which ``authority`` receives its deliveries."""
    return f"agent-{_token(authority, 'authority')}"


def verdict_consumer(authority: str) -> str:
    """The durable consumer on VERDICT through which ``authority`` receives its verdicts."""
    return f"agent-{_token(authority, 'authority')}-verdicts"


def authority_permissions(authority: str) -> Permissions:
    """What an authority's node agent may do: its own intake, consumers, verdicts, inbox."""
    deliver, verdicts = delivery_consumer(authority), verdict_consumer(authority)
    dstream, vstream = subjects.DELIVER_STREAM, subjects.VERDICT_STREAM
    kv_stream = f"KV_{subjects.DIRECTORY_BUCKET}"
    return Permissions(
        publish=(
            subjects.submit(authority),
            f"$JS.API.CONSUMER.INFO.{dstream}.{deliver}",
            f"$JS.API.CONSUMER.INFO.{vstream}.{verdicts}",
            f"$JS.API.CONSUMER.MSG.NEXT.{dstream}.{deliver}",
            f"$JS.API.CONSUMER.MSG.NEXT.{vstream}.{verdicts}",
            # ack, nak, term, in progress: the reply subject of each delivered message, in
            # the form the server emits, with exactly that many tokens. A longer tail would
            # let A shape a v2 ack subject ($JS.ACK.<domain>.<hash>.<stream>.<consumer>...)
            # naming another consumer, which a server routing v2 acks could act upon.
            f"$JS.ACK.{dstream}.{deliver}{_ACK_TAIL}",
            f"$JS.ACK.{vstream}.{verdicts}{_ACK_TAIL}",
            f"$JS.API.DIRECT.GET.{vstream}.{subjects.verdict(authority, '>')}",
            f"$JS.API.STREAM.INFO.{kv_stream}",  # js.key_value() asks it before the first get
            # kv.get(): the bucket is public to every admitted authority, so any message of
            # KV_DIRECTORY may be read (direct get if the bucket allows it, else MSG.GET)
            f"$JS.API.DIRECT.GET.{kv_stream}.$KV.{subjects.DIRECTORY_BUCKET}.>",
            f"$JS.API.STREAM.MSG.GET.{kv_stream}",
            # the transparency protocol (schemas.transparency): witness its own cosignatures
            subjects.HUB_CHECKPOINT,
            subjects.HUB_CONSISTENCY,
            subjects.hub_cosign(authority),
        ),
        subscribe=(inbox_prefix(authority) + ".>", subjects.verdict(authority, ">")),
    )


def hub_permissions() -> Permissions:
    """What the hub needs: the JetStream API, the ledger, deliveries, verdicts, KV writes."""
    return Permissions(
        publish=(
            "$JS.API.>",
            "$JS.ACK.>",
            "$JS.FC.>",  # flow-control answers of push (ordered) consumers
            "$KV.>",
            "$O.>",
            subjects.LEDGER_SUBJECT,
            subjects.deliver("*"),
            subjects.verdict("*", ">"),
            subjects.submit(subjects.OPERATOR),  # `hub admit` submits as the operator
            "_INBOX.>",  # answers to the transparency requests of node agents
        ),
        # `hub admit` waits for the operator's verdicts with a plain subscription.
        subscribe=(
            inbox_prefix(HUB_USER) + ".>",
            subjects.verdict(subjects.OPERATOR, ">"),
            "mla.hub.>",  # the transparency requests it answers (queue group "hub")
        ),
    )


def hub_user(public: str) -> NatsUser:
    return NatsUser(HUB_USER, check_user_public(public), hub_permissions())


def authority_user(authority: str, public: str) -> NatsUser:
    return NatsUser(authority, check_user_public(public), authority_permissions(authority))


# --- the configuration text --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the server finds its certificate chain and key."""

    cert_file: Path
    key_file: Path
    handshake_timeout_s: float = 2.0


def render_security_config(tls: TlsFiles, users: Sequence[NatsUser]) -> str:
    """nats-server configuration text: TLS required, one account, nkey users, no anonymous.

    Meant to be included in the server's main configuration (``include "security.conf"``).
    """
    names = [u.name for u in users]
    if len(set(names)) != len(names) or len({u.public for u in users}) != len(users):
        raise ValidationError("users: a name or nkey appears twice", field="users")
    lines = [
        "# generated by hub.gateway.nats_security: do not edit, `hub admit` rewrites it",
        "tls {",
        f"  cert_file: {_q(str(tls.cert_file))}",
        f"  key_file: {_q(str(tls.key_file))}",
        '  min_version: "1.3"',
        f"  timeout: {tls.handshake_timeout_s}",
        "}",
        "accounts {",
        f"  {ACCOUNT} {{",
        "    jetstream: enabled",
        "    users: [",
    ]
    for user in users:
        lines.append(f"      # {_token(user.name, 'name')}")
        lines.append(f"      {{nkey: {_q(check_user_public(user.public))}, permissions: {{")
        lines.extend(
            _render_direction("publish", user.permissions.publish, user.permissions.publish_deny)
        )
        lines.extend(
            _render_direction(
                "subscribe", user.permissions.subscribe, user.permissions.subscribe_deny
            )
        )
        lines.append("      }}")
    lines += ["    ]", "  }", "}", ""]
    return "\n".join(lines)


def security_config(tls: TlsFiles, hub_public: str, authorities: Mapping[str, str]) -> str:
    """The whole configuration: the hub's user and one user per admitted authority.

    ``authorities`` maps authority id to its public nkey; pass the admitted ones only, so that
    dropping a revoked authority and reloading refuses its connection from then on. Every hub
    instance connects as the one hub user (they are one principal; inboxes stay apart by nuid).
    """
    users = [hub_user(hub_public)]
    users += [authority_user(a, authorities[a]) for a in sorted(authorities)]
    return render_security_config(tls, users)


def _render_direction(direction: str, allow: Sequence[str], deny: Sequence[str]) -> list[str]:
    # An empty allow list would mean "no restriction" to nats-server: render it as deny-all.
    parts = [f"allow: [{', '.join(_q(s) for s in allow)}]"] if allow else []
    denied = tuple(deny) if allow else (">",)
    if denied:
        parts.append(f"deny: [{', '.join(_q(s) for s in denied)}]")
    return [f"        {direction}: {{{', '.join(parts)}}}"]


def _q(value: str) -> str:
    if any(c in value for c in '"\\\n\r'):
        raise ValidationError(f"{value!r}: cannot stand in the configuration", field="config")
    return json.dumps(value)


def _token(value: str, what: str) -> str:
    if not subjects.is_token(value) or value.startswith("$"):
        raise ValidationError(f"{what}: {value!r} is not a valid subject token", field=what)
    return value


# --- the I/O edge ------------------------------------------------------------------------------


def write_security_config(path: Path, text: str) -> None:
    """Replace ``path`` atomically (the server never reads half a file on reload)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def reload_server(pid: int) -> None:
    """Ask nats-server ``pid`` to reload its configuration (what ``--signal reload`` does).

    Returns at once. Connections of users no longer listed are closed and their reconnects are
    refused ("Authorization Violation"). A configuration that does not parse is logged by the
    server ("Failed to reload server configuration") and the previous one stays in force.
    """
    os.kill(pid, signal.SIGHUP)


async def ensure_authority_consumers(
    js: JetStreamContext, authority: str, *, ack_wait_s: float = 30.0
) -> None:
    """Create (or leave as they are) ``authority``'s two durable pull consumers; the hub's job.

    Idempotent: creating a consumer again with the same configuration changes nothing (its
    position and pending acks are kept).
    """
    for stream, name, subject in (
        (subjects.DELIVER_STREAM, delivery_consumer(authority), subjects.deliver(authority)),
        (subjects.VERDICT_STREAM, verdict_consumer(authority), subjects.verdicts_of(authority)),
    ):
        await js.add_consumer(
            stream,
            js_api.ConsumerConfig(
                name=name,
                durable_name=name,
                filter_subject=subject,
                ack_policy=js_api.AckPolicy.EXPLICIT,
                ack_wait=ack_wait_s,
                deliver_policy=js_api.DeliverPolicy.ALL,
            ),
        )
