"""The token bucket shared by several read APIs (``hub.gateway.token_store``; issue 5), on a real
nats-server: what one instance issues or revokes holds on the others within a moment, concurrent
writers lose nothing, a record that does not decode stops start-up naming its key, and a former
``tokens.json`` is imported once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import msgspec
import pytest
from structlog.testing import capture_logs

from hub.clock import SystemClock
from hub.errors import ValidationError
from hub.gateway.feed import LedgerFeed
from hub.gateway.http import HttpDeps, HttpServer, create_app, serve
from hub.gateway.token_store import TokenStore, import_token_file
from hub.gateway.tokens import encode_record, new_token, tokens_path
from hub.ledger.projections.state import HubState
from hub.settings import HubSettings
from schemas.access import TokenFile
from schemas.codec import encode_json
from tests.harness import eventually
from tests.hub.audit.history import NOW, mid
from tests.hub.gateway.conftest import TokenBucket
from tests.hub.gateway.test_http import MemoryLedger

pytestmark = pytest.mark.nats

DAY = timedelta(days=1)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _api(store: TokenStore) -> HttpServer:
    """One read API instance on a loopback port, reading ``store`` (its own view of the bucket)."""
    state = HubState()
    deps = HttpDeps(
        state=lambda: state,
        ledger=MemoryLedger([]),
        feed=LedgerFeed(),
        tokens=store,
        clock=SystemClock(),
    )
    return await serve(create_app(HubSettings(), deps), "127.0.0.1", 0)


@pytest.fixture
async def two_apis(bucket: TokenBucket) -> AsyncIterator[tuple[TokenStore, str, str]]:
    """Two read APIs, each following the bucket through its own connection, and a CLI's store."""
    servers = [await _api(await bucket.store()), await _api(await bucket.store())]
    try:
        yield await bucket.store(), servers[0].url, servers[1].url
    finally:
        for server in servers:
            await server.stop()


async def _status_within(url: str, token: str, status: int, seconds: float = 5.0) -> str:
    """Ask ``whoami`` until it answers ``status`` (bounded); return the last answer's body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with aiohttp.ClientSession(url) as session:
        while True:
            async with session.get("/api/v1/whoami", headers=_bearer(token)) as response:
                body = await response.text()
                if response.status == status:
                    return body
            if loop.time() > deadline:
                raise AssertionError(f"{url}: still {response.status} after {seconds} s: {body}")
            await asyncio.sleep(0.02)


class TestSeveralInstances:
    """A token issued or revoked anywhere holds, or stops, on every read API within a moment."""

    async def test_issued_on_one_works_on_the_other_and_revoked_stops_both(
        self, two_apis: tuple[TokenStore, str, str]
    ) -> None:
        cli, first, second = two_apis
        now = SystemClock().now()
        issued = await cli.issue("operator", now=now, valid_for=DAY)
        for url in (first, second):
            await _status_within(url, issued.token, 200)
        await cli.revoke(issued.record.token_id, now=SystemClock().now())
        for url in (second, first):
            body = await _status_within(url, issued.token, 401)
            detail = msgspec.json.decode(body)["detail"]
            assert detail == f"authorization: token {issued.record.token_id} was revoked"

    async def test_accreditation_revoked_through_one_store_is_refused_by_another(
        self, bucket: TokenBucket
    ) -> None:
        one, other = await bucket.store(follow=True), await bucket.store(follow=True)
        issued = await one.issue("auditor", now=NOW, valid_for=DAY, accreditation_id=mid(1))
        token_id = issued.record.token_id
        await eventually(lambda: other.still_live(token_id, now=NOW), "the token at the other")
        assert [t.token_id for t in await other.revoke_accreditations({mid(1)}, now=NOW)] == [
            token_id
        ]
        await eventually(lambda: not one.still_live(token_id, now=NOW), "the revocation")


class TestConcurrentWriters:
    """Issues and revocations at the same moment, from several connections, lose nothing."""

    async def test_twenty_issues_at_once(self, bucket: TokenBucket) -> None:
        stores = [await bucket.store() for _ in range(4)]
        made = await asyncio.gather(
            *(stores[n % 4].issue("operator", now=NOW, valid_for=DAY) for n in range(20))
        )
        listing = await bucket.store()
        await listing.load()
        assert sorted(t.token_id for t in listing.records()) == sorted(
            m.record.token_id for m in made
        )

    async def test_one_revocation_wins_and_the_others_see_it(self, bucket: TokenBucket) -> None:
        """Ten revocations of one token, each with its own time: one compare-and-set lands, the
        others lose the race, read again and find it revoked; the bucket holds two revisions."""
        stores = [await bucket.store() for _ in range(2)]
        issued = await stores[0].issue("operator", now=NOW, valid_for=DAY)
        token_id = issued.record.token_id
        results = await asyncio.gather(
            *(stores[n % 2].revoke(token_id, now=NOW + timedelta(seconds=n + 1)) for n in range(10))
        )
        assert len({r.revoked_at for r in results}) == 1
        assert len(await bucket.kv.history(token_id)) == 2

    async def test_accreditation_revocations_and_issues_interleaved(
        self, bucket: TokenBucket
    ) -> None:
        one, two = await bucket.store(), await bucket.store()
        first = [
            await one.issue("auditor", now=NOW, valid_for=DAY, accreditation_id=mid(1))
            for _ in range(10)
        ]
        revoked_by_one, revoked_by_two, *more = await asyncio.gather(
            one.revoke_accreditations({mid(1)}, now=NOW),
            two.revoke_accreditations({mid(1)}, now=NOW),
            *(
                two.issue("auditor", now=NOW, valid_for=DAY, accreditation_id=mid(2))
                for _ in range(10)
            ),
        )
        both = [t.token_id for t in revoked_by_one + revoked_by_two]
        assert sorted(both) == sorted(t.record.token_id for t in first)  # each revoked once
        listing = await bucket.store()
        await listing.load()
        states = {t.token_id: (t.accreditation_id, t.revoked_at) for t in listing.records()}
        assert len(states) == 20
        assert all(states[t.record.token_id] == (mid(1), NOW) for t in first)
        assert all(states[t.record.token_id] == (mid(2), None) for t in more)


class TestUndecodable:
    """A record that does not decode: start-up stops naming its key; later, it is refused."""

    async def test_start_up_stops_naming_the_key(self, bucket: TokenBucket) -> None:
        await (await bucket.store()).issue("operator", now=NOW, valid_for=DAY)
        await bucket.kv.put("00000000000000ff", b"{not json")
        with pytest.raises(ValidationError) as refused:
            await (await bucket.store()).follow()
        assert str(refused.value).startswith("ACCESS_TOKENS key '00000000000000ff': not valid JSON")
        with pytest.raises(ValidationError) as refused:
            await _api(await bucket.store())  # what `hub up --http-port` runs
        assert str(refused.value).startswith("ACCESS_TOKENS key '00000000000000ff': not valid JSON")

    async def test_a_record_under_another_key(self, bucket: TokenBucket) -> None:
        issued = await (await bucket.store()).issue("operator", now=NOW, valid_for=DAY)
        await bucket.kv.put("00000000000000ff", encode_record(issued.record))
        with pytest.raises(ValidationError) as refused:
            await (await bucket.store()).load()
        assert str(refused.value) == (
            f"ACCESS_TOKENS key '00000000000000ff': holds token {issued.record.token_id}"
        )

    async def test_after_start_up_it_is_logged_and_refused(self, bucket: TokenBucket) -> None:
        cli, running = await bucket.store(), await bucket.store(follow=True)
        issued = await cli.issue("operator", now=NOW, valid_for=DAY)
        token_id = issued.record.token_id
        await eventually(lambda: running.still_live(token_id, now=NOW), "the token")
        with capture_logs() as logs:
            await bucket.kv.put(token_id, b"garbage")
            await eventually(lambda: not running.still_live(token_id, now=NOW), "the refusal")
        [event] = [e for e in logs if e["event"] == "access_token_undecodable"]
        assert event["key"] == token_id and event["log_level"] == "error"

    async def test_a_deleted_record_authenticates_nobody(self, bucket: TokenBucket) -> None:
        cli, running = await bucket.store(), await bucket.store(follow=True)
        issued = await cli.issue("operator", now=NOW, valid_for=DAY)
        token_id = issued.record.token_id
        await eventually(lambda: running.still_live(token_id, now=NOW), "the token")
        await bucket.kv.delete(token_id)
        await eventually(lambda: not running.still_live(token_id, now=NOW), "the deletion")
        with pytest.raises(ValidationError) as missing:
            await cli.revoke(token_id, now=NOW)
        assert str(missing.value) == f"--id: no token {token_id}"


class TestImport:
    """``hub up`` moves a former ``tokens.json`` into the bucket once, then renames it."""

    async def test_import_once_keeping_newer_records(
        self, bucket: TokenBucket, tmp_path: Path
    ) -> None:
        store = await bucket.store()
        kept = await store.issue("operator", now=NOW, valid_for=DAY, label="in the bucket")
        await store.revoke(kept.record.token_id, now=NOW)  # newer than the file's copy
        gone = await store.issue("auditor", now=NOW, valid_for=DAY, accreditation_id=mid(1))
        await bucket.kv.delete(gone.record.token_id)  # deleted since: stays deleted
        only_in_file = new_token(
            "authority", token_id="00000000000000aa", secret="s" * 43, now=NOW,
            valid_for=DAY, authority="XA-MOJ",
        )  # fmt: skip
        path = tokens_path(tmp_path)
        path.parent.mkdir(parents=True)
        records = [kept.record, gone.record, only_in_file.record]
        path.write_bytes(encode_json(TokenFile(tokens=records)))
        with capture_logs() as logs:
            assert await import_token_file(store, path) == 1
        assert not path.exists() and path.with_name("tokens.json.imported").exists()
        [event] = [e for e in logs if e["event"] == "access_tokens_imported"]
        assert (event["imported"], event["kept"]) == (1, 2)
        assert await import_token_file(store, path) is None  # once
        running = await bucket.store(follow=True)
        principal = running.authenticate(f"Bearer {only_in_file.token}", now=NOW)
        assert principal.authority == "XA-MOJ"
        assert not running.still_live(kept.record.token_id, now=NOW)  # still revoked
        assert not running.still_live(gone.record.token_id, now=NOW)  # still deleted

    async def test_a_file_that_does_not_decode_stops_the_import(
        self, bucket: TokenBucket, tmp_path: Path
    ) -> None:
        path = tokens_path(tmp_path)
        path.parent.mkdir(parents=True)
        path.write_bytes(b'{"schema": "mla.access.token_file.v1", "tokens": [{}]}')
        with pytest.raises(ValidationError, match=str(path)):
            await import_token_file(await bucket.store(), path)
        assert path.exists()
