"""Bearer-token records in JetStream: the ``ACCESS_TOKENS`` bucket and its watcher (issue 5).

The hub may run as several instances, each with its own read API, and a token issued or revoked
must hold, or stop, on all of them at once. So the records (``AccessToken``, hash only, under
the token id) live in a key-value bucket that :func:`hub.ledger.store.ensure_topology` creates,
and each read API keeps a :class:`~hub.gateway.tokens.TokenIndex` fed by a watcher on it:
``authenticate`` stays synchronous, and a change made anywhere reaches every index within a
moment. Writes go to the bucket directly: a new record only where its key is free, a revocation
as a compare-and-set on the record's revision, read again when another writer came first.

:func:`import_token_file` moves the records of the former ``<data>/access/tokens.json`` into the
bucket, once, when ``hub up`` starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar, Unpack

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import (
    BucketNotFoundError,
    InvalidKeyError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from hub import subjects
from hub.errors import ConflictError, UnavailableError, ValidationError
from hub.gateway.access import Principal
from hub.gateway.tokens import (
    Issued,
    TokenIndex,
    TokenScope,
    decode_record,
    encode_record,
    new_token,
    revoked,
)
from hub.ledger.store import when_ready
from hub.logs import get_logger
from schemas.access import AccessToken, Role, TokenFile
from schemas.codec import decode_json

__all__ = ["TokenStore", "import_token_file"]

T = TypeVar("T")

_BUCKET = subjects.ACCESS_TOKENS_BUCKET
_LOAD_TIMEOUT_S = 30.0
_ATTEMPTS = 20  # compare-and-set rounds; each lost round means another writer finished one
_NATS_ERRORS = (TimeoutError, nats.errors.Error)
# JetStream answers "not ready" for a moment after start or a configuration reload (``hub up``
# reloads nats-server right before its read API starts): ``when_ready`` asks again, this long.
_NOT_READY_S = 10.0
_log = get_logger("hub.tokens")


class TokenStore:
    """The token records of one hub: reads from the in-memory index, writes to the bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._index = TokenIndex()
        self._watcher: KeyValue.KeyWatcher | None = None
        self._follower: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, js: JetStreamContext) -> TokenStore:
        """The store on the hub's bucket (created by ``hub up``; refused if it is missing)."""
        try:
            kv = await when_ready(lambda: js.key_value(_BUCKET), seconds=_NOT_READY_S)
        except BucketNotFoundError as e:
            raise UnavailableError(
                f"access tokens: no {_BUCKET} bucket on this NATS; start the hub (`hub up`) once"
            ) from e
        except (UnavailableError, *_NATS_ERRORS) as e:  # when_ready gave up: say what for
            cause = e.__cause__ if isinstance(e, UnavailableError) and e.__cause__ else e
            raise UnavailableError(f"access tokens: {_BUCKET} not reachable ({cause})") from e
        return cls(kv)

    # --- reading: the index ----------------------------------------------------------------------

    async def load(self) -> None:
        """Read every record of the bucket into the index, once (what a CLI command needs)."""
        watcher = await self._catch_up()
        await _stop(watcher)

    async def follow(self) -> None:
        """Read every record, then keep the index in step with the bucket until :meth:`close`.

        A record that does not decode stops this with a :class:`ValidationError` naming its
        key: a read API must not start on a bucket it cannot read whole.
        """
        if self._follower is not None:
            return
        self._watcher = await self._catch_up()
        self._follower = asyncio.create_task(self._follow(self._watcher), name="token-watcher")

    async def close(self) -> None:
        """Stop following (the index keeps what it holds)."""
        watcher, follower = self._watcher, self._follower
        self._watcher = self._follower = None
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        if watcher is not None:
            await _stop(watcher)

    def records(self) -> list[AccessToken]:
        """Every token record the index holds, in issue order."""
        return self._index.records()

    def authenticate(self, authorization: str | None, *, now: datetime) -> Principal:
        """The principal of an ``Authorization: Bearer ...`` header, or ``Unauthenticated``."""
        return self._index.authenticate(authorization, now=now)

    def still_live(self, token_id: str, *, now: datetime) -> bool:
        """True while the token is known, unrevoked and unexpired (long-lived streams ask)."""
        return self._index.still_live(token_id, now=now)

    async def _catch_up(self) -> KeyValue.KeyWatcher:
        """A watcher on the whole bucket, once the index holds everything the bucket held.

        nats-py signals "initial values done" with a None entry, but it can send it before the
        values when the consumer is slow to start (see ``kv_items``). So the end is known from
        the stream instead: its last sequence when we start is the revision of some key's
        latest value, and the watcher delivers latest values in sequence order.
        """
        try:
            state = (await when_ready(self._kv.status, seconds=_NOT_READY_S)).stream_info.state
            watcher = await when_ready(self._kv.watchall, seconds=_NOT_READY_S)
        except (UnavailableError, *_NATS_ERRORS) as e:
            cause = e.__cause__ if isinstance(e, UnavailableError) and e.__cause__ else e
            raise UnavailableError(f"access tokens: cannot watch {_BUCKET} ({cause})") from e
        last = state.last_seq if state.messages else 0
        try:
            async with asyncio.timeout(_LOAD_TIMEOUT_S):
                if last:  # else the bucket is empty: nothing to wait for
                    await self._read_until(watcher, last)
        except TimeoutError as e:
            await _stop(watcher)
            raise UnavailableError(
                f"access tokens: {_BUCKET} not read whole in {_LOAD_TIMEOUT_S:.0f} s"
            ) from e
        except BaseException:
            await _stop(watcher)
            raise
        return watcher

    async def _read_until(self, watcher: KeyValue.KeyWatcher, last: int) -> None:
        async for entry in watcher:
            if entry is not None:  # (the early "initial values done" marker, if any)
                self._take(entry, strict=True)
                if (entry.revision or 0) >= last:
                    return

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is not None:
                self._take(entry, strict=False)

    def _take(self, entry: KeyValue.Entry, *, strict: bool) -> None:
        revision = entry.revision or 0
        if entry.operation is not None:  # DEL or PURGE: the key is gone
            self._index.apply(entry.key, revision, None)
            return
        try:
            record = decode_record(entry.key, entry.value or b"")
        except ValidationError as e:
            if strict:
                raise
            # Fail closed: a record that no longer decodes authenticates nobody.
            _log.error("access_token_undecodable", key=entry.key, revision=revision, error=str(e))
            self._index.apply(entry.key, revision, None)
            return
        self._index.apply(entry.key, revision, record)

    # --- writing: the operator's CLI -------------------------------------------------------------

    async def issue(
        self, role: Role, *, now: datetime, valid_for: timedelta, **scope: Unpack[TokenScope]
    ) -> Issued:
        """Mint a token, store its record, and return the secret (never stored, never logged)."""
        for _ in range(_ATTEMPTS):
            issued = new_token(
                role,
                token_id=secrets.token_hex(8),
                secret=secrets.token_urlsafe(32),
                now=now,
                valid_for=valid_for,
                **scope,
            )
            if await self.add(issued.record):
                return issued
        raise ConflictError("access tokens: no free token id found; try again")

    async def add(self, record: AccessToken) -> bool:
        """Store ``record`` under its id if that key was never written; else False.

        Not ``kv.create``: nats-py's create writes over a deleted key, and a token record that
        was deleted must stay deleted (an import must not bring it back).
        """
        try:
            revision = await self._kv.update(record.token_id, encode_record(record), last=0)
        except KeyWrongLastSequenceError:
            return False
        except _NATS_ERRORS as e:
            raise UnavailableError(
                f"access tokens: token {record.token_id} not stored ({e})"
            ) from e
        self._index.apply(record.token_id, revision, record)  # read our own write at once
        return True

    async def revoke(self, token_id: str, *, now: datetime) -> AccessToken:
        """Revoke one token (idempotent: revoking twice keeps the first time)."""
        done = await self._revoke(token_id, now=now)
        if done is None:
            raise ValidationError(f"--id: no token {token_id}", field="id")
        return done[0]

    async def revoke_accreditations(self, ids: set[str], *, now: datetime) -> list[AccessToken]:
        """Revoke every live token issued for one of the accreditations ``ids``; return those
        this call revoked."""
        await self.load()  # the bucket as it is now, tokens issued elsewhere a moment ago too
        targets = [
            r.token_id
            for r in self._index.records()
            if r.accreditation_id in ids and r.revoked_at is None
        ]
        revoked_now = []
        for token_id in targets:
            done = await self._revoke(token_id, now=now)
            if done is not None and done[1]:
                revoked_now.append(done[0])
        return revoked_now

    async def _revoke(self, token_id: str, *, now: datetime) -> tuple[AccessToken, bool] | None:
        """Compare-and-set: write the record revoked on top of the revision it was read at; if
        another writer came in between, read it again. None if there is no such token; else the
        record and whether this call revoked it."""
        for _ in range(_ATTEMPTS):
            try:
                entry = await self._kv.get(token_id)
            except (KeyNotFoundError, InvalidKeyError):  # deleted keys read as not found too
                return None
            except _NATS_ERRORS as e:
                raise UnavailableError(f"access tokens: token {token_id} not read ({e})") from e
            record = decode_record(token_id, entry.value or b"")
            changed = revoked(record, now=now)
            if changed is None:
                self._index.apply(token_id, entry.revision or 0, record)
                return record, False
            try:
                revision = await self._kv.update(
                    token_id, encode_record(changed), last=entry.revision
                )
            except KeyWrongLastSequenceError:
                continue  # another writer came first: decide again on what it wrote
            except _NATS_ERRORS as e:
                raise UnavailableError(f"access tokens: token {token_id} not revoked ({e})") from e
            self._index.apply(token_id, revision, changed)
            return changed, True
        raise ConflictError(f"access tokens: token {token_id} kept changing; try again")


async def import_token_file(store: TokenStore, path: Path) -> int | None:
    """Put the records of a former token file into the bucket, then rename the file to
    ``<name>.imported`` so this happens once. A record whose id the bucket already knows is
    left as the bucket has it: that one is as new or newer (revoked, or deleted, since an import
    that was interrupted before the rename, say). Returns how many were imported; None without
    a file.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    records = decode_json(data, TokenFile, what=str(path)).tokens
    imported = 0
    for record in records:
        imported += await store.add(record)
    done = path.with_name(path.name + ".imported")
    path.replace(done)
    _log.info(
        "access_tokens_imported",
        path=str(path),
        imported=imported,
        kept=len(records) - imported,
        renamed_to=str(done),
    )
    return imported


async def _stop(watcher: KeyValue.KeyWatcher) -> None:
    # The connection may be closing already; the consumer goes with it then.
    with contextlib.suppress(*_NATS_ERRORS):
        await watcher.stop()  # type: ignore[no-untyped-call]  # (nats-py leaves it bare)
