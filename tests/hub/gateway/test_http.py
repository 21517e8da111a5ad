"""The read API: scopes by role and pair, exports, OpenAPI, dashboard, events, and the wiring
with a real hub (``hub.gateway.http``; DESIGN.md 7; issue 5).

The in-memory tests fold a real ledger history (real seals, signatures and receipts, from
``tests/hub/audit/history.py``) into a real ``HubState``; the last tests run the API beside a
real hub on its own nats-server and a real loopback port.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from html.parser import HTMLParser

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.errors import ValidationError
from hub.gateway import dashboard
from hub.gateway.feed import LedgerFeed
from hub.gateway.http import HttpDeps, create_app
from hub.gateway.token_store import TokenStore
from hub.gateway.tokens import encode_record
from hub.ledger.merkle import leaf_hash
from hub.ledger.projections.state import HubState
from hub.settings import HubSettings
from schemas.codec import decode
from schemas.ledger import LedgerEntry
from tests import access_events
from tests.harness import eventually
from tests.hub.audit.history import NOW, History, mid, standard
from tests.hub.gateway.conftest import TokenBucket

A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"
AB_CASE, AC_CASE, BC_CASE = mid(1), mid(2), mid(3)
DAY = timedelta(days=1)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class MemoryLedger:
    """The ledger's stored bytes, read like ``hub.ledger.store.Ledger.read``."""

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries

    async def read(
        self, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[tuple[int, bytes]]:
        for index in range(start, len(self.entries) if stop is None else stop):
            yield index, self.entries[index]


class Api:
    """A test client on the app, with the state, feed, tokens and clock behind it."""

    def __init__(
        self,
        client: TestClient,
        h: History,
        state: HubState,
        feed: LedgerFeed,
        tokens: TokenStore,
        clock: Clock,
    ) -> None:
        self.client, self.history, self.state = client, h, state
        self.feed, self.tokens, self.clock = feed, tokens, clock

    bucket: TokenBucket  # where ``tokens`` keeps its records (a real nats-server)

    async def token(self, role: str, **scope: str) -> str:
        """A token of ``role``; a liaison officer's or auditor's accreditation is recorded in
        the ledger first, as ``hub liaison accredit`` / ``hub auditor admit`` do."""
        if role == "liaison":
            accreditation = self.accredit(scope["officer"], scope["home"], scope["host"])
        elif role == "auditor":
            accreditation = self.next_id()
            self.fold(
                self.history.entry(access_events.recorded(access_events.auditor(accreditation)))
            )
        else:
            accreditation = None
        issued = await self.tokens.issue(
            role,  # type: ignore[arg-type]
            now=self.clock.now(),
            valid_for=timedelta(days=1),
            accreditation_id=accreditation,
            **scope,
        )
        return issued.token

    def next_id(self) -> str:
        return self.history._next_id()

    def accredit(self, officer: str, home: str, host: str) -> str:
        accreditation = self.next_id()
        statement = access_events.liaison(accreditation, officer, home, host)
        self.fold(self.history.entry(access_events.recorded(statement)))
        return accreditation

    async def get(self, path: str, token: str | None = None) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.get(path, headers=headers)

    async def json(self, path: str, token: str, status: int = 200) -> object:
        response = await self.get(path, token)
        assert response.status == status, (path, response.status, await response.text())
        return await response.json()

    def fold(self, data: bytes) -> None:
        """Fold one more ledger entry, as the service does: state first, then the feed."""
        self.history.entries.append(data)
        entry = decode(data, LedgerEntry)
        self.state.apply(entry)
        self.feed.on_entry(entry)


def _history() -> History:
    h = standard()  # XA->XB request executed (case 1), XA->XC consultation (case 2)
    h.send(B, C, "request.submit", BC_CASE)
    return h


@pytest.fixture
async def api(bucket: TokenBucket) -> AsyncIterator[Api]:
    h = _history()
    state = HubState()
    for data in h.entries:
        state.apply(decode(data, LedgerEntry))
    feed, clock = LedgerFeed(), Clock(NOW + timedelta(hours=1))
    tokens = await bucket.store()  # the app follows the bucket while it runs
    deps = HttpDeps(
        state=lambda: state, ledger=MemoryLedger(h.entries), feed=feed, tokens=tokens, clock=clock
    )
    async with TestClient(TestServer(create_app(HubSettings(), deps))) as client:
        made = Api(client, h, state, feed, tokens, clock)
        made.bucket = bucket
        yield made


def _ids(rows: object) -> set[str]:
    assert isinstance(rows, list)
    return {row["case_id"] for row in rows}


class TestScopes:
    """Each role sees exactly its cases; anything else is 403 (401 without a live token)."""

    async def test_liaison_sees_exactly_its_pair(self, api: Api) -> None:
        token = await api.token("liaison", officer="XA-LO-1", home=A, host=B)
        assert _ids(await api.json("/api/v1/status", token)) == {AB_CASE}
        trail = await api.json(f"/api/v1/cases/{AB_CASE}/trail", token)
        assert isinstance(trail, list) and [t["type"] for t in trail][:2] == [
            "request.submit",
            "receipt",
        ]
        review = await api.json("/api/v1/review", token)  # defaults to the officer's pair
        assert isinstance(review, dict) and review["pair"] == [A, B]
        assert (await api.json(f"/api/v1/review?first={B}&second={A}", token)) is not None
        stats = await api.json("/api/v1/stats?by=authority", token)
        assert isinstance(stats, dict) and stats["requests"] == 1 and stats["consultations"] == 0
        assert len(await api.json("/api/v1/directory", token)) == 3  # type: ignore[arg-type]
        who = await api.json("/api/v1/whoami", token)
        assert isinstance(who, dict) and who["role"] == "liaison" and who["pair"] == [A, B]

        for path in (
            f"/api/v1/cases/{AC_CASE}/trail",  # another pair's case
            f"/api/v1/cases/{mid(999)}/trail",  # no such case: same answer, no oracle
            f"/api/v1/status?case={BC_CASE}",
            f"/api/v1/status?authority={C}",
            f"/api/v1/review?first={A}&second={C}",
            "/api/v1/ledger",
            "/api/v1/checkpoint",
            "/metrics",
        ):
            response = await api.get(path, token)
            assert response.status == 403, path
            assert (await response.json())["error"] == "forbidden"

    async def test_authority_sees_its_own_cases(self, api: Api) -> None:
        token = await api.token("authority", authority=C)
        assert _ids(await api.json("/api/v1/status", token)) == {AC_CASE, BC_CASE}
        assert _ids(await api.json(f"/api/v1/status?authority={B}", token)) == {BC_CASE}
        assert (await api.get(f"/api/v1/cases/{AB_CASE}/trail", token)).status == 403
        assert (await api.get(f"/api/v1/review?first={A}&second={B}", token)).status == 403
        assert (await api.get(f"/api/v1/review?first={B}&second={C}", token)).status == 200
        assert (await api.get("/api/v1/ledger", token)).status == 403

    async def test_auditor_sees_all_metadata_and_no_content(self, api: Api) -> None:
        token = await api.token("auditor")
        assert _ids(await api.json("/api/v1/status", token)) == {AB_CASE, AC_CASE, BC_CASE}
        response = await api.get("/api/v1/ledger?from=0&limit=1000", token)
        entries = await response.json()
        assert [e["index"] for e in entries] == list(range(len(api.history.entries)))
        assert response.headers["X-Ledger-Size"] == str(len(api.history.entries))
        assert [e["leaf_hash"] for e in entries] == [
            leaf_hash(d).hex() for d in api.history.entries
        ]
        assert {e["type"] for e in entries} >= {
            "authority.admit",
            "request.submit",
            "receipt",
            "rejected",
        }
        page = await api.json("/api/v1/ledger?from=3&limit=2", token)
        assert [e["index"] for e in page] == [3, 4]  # type: ignore[union-attr]
        assert (await api.get(f"/api/v1/cases/{mid(999)}/trail", token)).status == 404
        # the sealed bodies say "<type> from <sender>": none of it is anywhere in the answers
        for path in (
            "/api/v1/ledger?limit=1000",
            "/api/v1/status",
            f"/api/v1/cases/{AB_CASE}/trail",
            f"/api/v1/review?first={A}&second={B}",
            "/api/v1/stats",
        ):
            text = await (await api.get(path, token)).text()
            assert " from XA-MOJ" not in text and " from XB-MOJ" not in text, path
        metrics = await (await api.get("/metrics", token)).text()
        assert f"mla_hub_ledger_entries {len(api.history.entries)}" in metrics
        assert 'mla_hub_cases{type="request",state="executed"} 1' in metrics

    async def test_without_a_live_token_everything_but_public_pages_is_401(self, api: Api) -> None:
        protected = [
            "/api/v1/whoami",
            "/api/v1/status",
            f"/api/v1/cases/{AB_CASE}/trail",
            f"/api/v1/review?first={A}&second={B}",
            "/api/v1/stats",
            "/api/v1/directory",
            "/api/v1/ledger",
            "/api/v1/checkpoint",
            "/api/v1/events",
            "/metrics",
        ]
        revoked = await api.token("operator")
        await api.tokens.revoke(revoked.split("_")[1], now=api.clock.now())
        expiring = await api.token("operator")
        forged = (await api.token("operator"))[:-4] + "AAAA"
        api.clock.at += timedelta(days=1, seconds=1)  # `expiring` is now past its day
        alive = await api.token("operator")
        for path in protected:
            for token in (None, "not-a-token", forged, revoked, expiring):
                response = await api.get(path, token)
                assert response.status == 401, (path, token)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            response = await api.get(path, alive)
            assert response.status == (404 if "checkpoint" in path else 200), path
            response.close()
        for public in ("/healthz", "/api/v1/openapi.json", "/"):
            assert (await api.get(public)).status == 200

    async def test_bad_parameters_are_400(self, api: Api) -> None:
        token = await api.token("operator")
        for path in (
            "/api/v1/stats?by=colour",
            "/api/v1/ledger?limit=0",
            "/api/v1/ledger?from=x",
            "/api/v1/review?first=XA-MOJ&second=XB-MOJ&since=yesterday",
            "/api/v1/status?authority=nobody",
            "/api/v1/review",
            "/api/v1/status?format=pdf",
        ):
            response = await api.get(path, token)
            assert response.status == 400, path
            assert (await response.json())["detail"]


class TestExports:
    """Reviews and statistics export as CSV, JSON, HTML and SVG that parse."""

    async def test_exports_parse(self, api: Api) -> None:
        token = await api.token("liaison", officer="XA-LO-1", home=A, host=B)
        response = await api.get("/api/v1/review?format=csv", token)
        assert (
            response.headers["Content-Disposition"]
            == 'attachment; filename="review-XA-MOJ-XB-MOJ.csv"'
        )
        rows = list(csv.reader(io.StringIO(await response.text())))
        assert rows[0] == ["direction", "measure", "key", "value"]
        assert ["XA-MOJ->XB-MOJ", "state", "executed", "1"] in rows
        stats = list(
            csv.DictReader(
                io.StringIO(await (await api.get("/api/v1/stats?format=csv", token)).text())
            )
        )
        assert [(r["kind"], r["requests"], r["executed"]) for r in stats] == [("mla", "1", "1")]
        status = list(
            csv.DictReader(
                io.StringIO(await (await api.get("/api/v1/status?format=csv", token)).text())
            )
        )
        assert [(r["case_id"], r["state"]) for r in status] == [(AB_CASE, "executed")]
        for path in ("/api/v1/review?format=svg", "/api/v1/stats?format=svg"):
            response = await api.get(path, token)
            assert response.content_type == "image/svg+xml"
            ET.fromstring(await response.text())  # well-formed XML
        page = await api.get("/api/v1/review?format=html", token)
        assert "script-src" not in page.headers["Content-Security-Policy"]
        _check_html(await page.text())
        review = await api.json("/api/v1/review?format=json", token)
        assert isinstance(review, dict) and review["directions"][0]["by_state"] == {"executed": 1}


class TestDocuments:
    """The OpenAPI document and the dashboard."""

    async def test_openapi_lists_every_route_and_resolves(self, api: Api) -> None:
        doc = await (await api.get("/api/v1/openapi.json")).json()
        assert doc["openapi"] == "3.1.0"
        routes = {r.canonical for r in api.client.app.router.resources()}  # type: ignore[union-attr]
        assert set(doc["paths"]) == routes
        refs = set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', json.dumps(doc)))
        assert refs and refs <= set(doc["components"]["schemas"])
        assert "CaseStatus" in refs and "Review" in refs and "LedgerItem" in refs

    async def test_dashboard_is_self_contained_and_well_formed(self, api: Api) -> None:
        response = await api.get("/")
        html = await response.text()
        _check_html(html)
        assert "http:" not in html and "https:" not in html
        assert not re.search(r"""(src|href|action)\s*=\s*["']?//""", html)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "unsafe" not in csp
        assert html == dashboard.PAGE
        script = html.split("<script>", 1)[1].split("</script>", 1)[0]
        assert base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() in csp
        assert "innerHTML" not in script  # values go in as text only


class TestAccreditations:
    """A liaison officer's or auditor's token holds only while the ledger's accreditation does."""

    async def _refused(self, api: Api, token: str, reason: str) -> None:
        response = await api.get("/api/v1/whoami", token)
        assert response.status == 401
        body = await response.json()
        assert body["error"] == "unauthenticated"
        assert reason in body["detail"], body["detail"]

    async def test_revoking_the_accreditation_ends_every_token_at_once(self, api: Api) -> None:
        first = await api.token("liaison", officer="XA-LO-1", home=A, host=B)
        accreditation = api.state.access.all()[-1].accreditation_id
        second = (
            await api.tokens.issue(
                "liaison",
                now=api.clock.now(),
                valid_for=DAY,
                officer="XA-LO-1",
                home=A,
                host=B,
                accreditation_id=accreditation,
            )
        ).token
        other = await api.token("liaison", officer="XA-LO-2", home=A, host=B)
        statement = access_events.revocation(accreditation, "posting ended")
        index = api.history.append(access_events.recorded(statement))
        api.fold(api.history.entries.pop())
        for token in (first, second):
            await self._refused(
                api,
                token,
                f"accreditation {accreditation} was revoked at ledger index {index}: posting ended",
            )
        assert (await api.get("/api/v1/whoami", other)).status == 200

    async def test_the_accreditation_expires_before_the_token(self, api: Api) -> None:
        accreditation = api.next_id()
        until = api.clock.now() + timedelta(hours=2)
        statement = access_events.liaison(accreditation, "XA-LO-3", A, B, until=until)
        api.fold(api.history.entry(access_events.recorded(statement)))
        token = (
            await api.tokens.issue(
                "liaison",
                now=api.clock.now(),
                valid_for=timedelta(days=5),
                officer="XA-LO-3",
                home=A,
                host=B,
                accreditation_id=accreditation,
            )
        ).token
        assert (await api.get("/api/v1/whoami", token)).status == 200
        api.clock.at = until
        await self._refused(api, token, f"expired at {until.isoformat()}")

    async def test_revoking_the_host_authority_ends_the_liaison(self, api: Api) -> None:
        liaison = await api.token("liaison", officer="XA-LO-1", home=A, host=B)
        auditor = await api.token("auditor")
        revoked = api.history.append(access_events.authority_revoked(B))
        api.fold(api.history.entries.pop())
        await self._refused(api, liaison, f"{B} was revoked at ledger index {revoked}")
        assert (await api.get("/api/v1/whoami", auditor)).status == 200

    async def test_a_token_naming_no_accreditation_is_refused(self, api: Api) -> None:
        record = await api.tokens.issue(
            "operator", now=api.clock.now(), valid_for=DAY, label="to be tampered with"
        )
        # A record rewritten in the bucket: the role says auditor, nothing in the ledger backs it.
        forged = msgspec.structs.replace(record.record, role="auditor")
        await api.bucket.kv.put(forged.token_id, encode_record(forged))
        await eventually(lambda: api.tokens.records() == [forged], "the forged record")
        await self._refused(api, record.token, "names no accreditation")
        with pytest.raises(ValidationError, match="accreditation: liaison and auditor tokens"):
            await api.tokens.issue("auditor", now=api.clock.now(), valid_for=DAY)

    async def test_a_token_whose_pair_is_not_its_accreditations_is_refused(self, api: Api) -> None:
        accreditation = api.accredit("XA-LO-1", A, B)
        widened = await api.tokens.issue(
            "liaison",
            now=api.clock.now(),
            valid_for=DAY,
            officer="XA-LO-1",
            home=A,
            host=C,  # the ledger accredited the officer for A <-> B only
            accreditation_id=accreditation,
        )
        await self._refused(api, widened.token, "its scope is not its accreditation's")

    async def test_an_auditor_reads_the_ledger_until_revoked(self, api: Api) -> None:
        token = await api.token("auditor")
        accreditation = api.state.access.all()[-1]
        assert accreditation.role == "auditor" and accreditation.holder == "AUD-1"
        assert (await api.get("/api/v1/ledger", token)).status == 200
        rows = await api.json("/api/v1/ledger?limit=1000", token)
        assert isinstance(rows, list) and rows[-1]["type"] == "auditor.admit"
        statement = access_events.revocation(accreditation.accreditation_id, "audit closed")
        api.fold(api.history.entry(access_events.recorded(statement)))
        await self._refused(api, token, "audit closed")


class TestEvents:
    """Server-sent events: scoped status changes, and the end of a revoked token's stream."""

    async def test_status_event_for_the_pair_only_then_revocation(self, api: Api) -> None:
        token = await api.token("liaison", officer="XA-LO-1", home=A, host=B)
        response = await api.get("/api/v1/events", token)
        assert response.content_type == "text/event-stream"
        events = _events(response)
        assert (await asyncio.wait_for(anext(events), 5))[0] == "hello"
        api.fold(
            api.history.entry(api.history.envelope(C, A, "request.submit", mid(4)))
        )  # not ours
        new_case = mid(5)
        api.fold(api.history.entry(api.history.envelope(B, A, "request.submit", new_case)))
        name, data = await asyncio.wait_for(anext(events), 5)
        assert (name, data["case_id"], data["state"]) == ("status", new_case, "submitted")
        await api.tokens.revoke(token.split("_")[1], now=api.clock.now())
        api.fold(api.history.entry(api.history.envelope(A, B, "request.submit", mid(6))))
        assert (await asyncio.wait_for(anext(events), 5))[0] == "revoked"
        assert await _drained(api.feed)

    async def test_the_stream_ends_when_the_ledger_revokes_the_accreditation(
        self, api: Api
    ) -> None:
        token = await api.token("liaison", officer="XA-LO-1", home=A, host=B)
        accreditation = api.state.access.all()[-1].accreditation_id
        events = _events(await api.get("/api/v1/events", token))
        assert (await asyncio.wait_for(anext(events), 5))[0] == "hello"
        statement = access_events.revocation(accreditation)
        api.fold(api.history.entry(access_events.recorded(statement)))
        name, data = await asyncio.wait_for(anext(events), 5)
        assert (name, data["detail"]) == ("revoked", "token or accreditation revoked or expired")
        assert await _drained(api.feed)


async def _drained(feed: LedgerFeed) -> bool:
    for _ in range(100):
        if feed.subscribers == 0:
            return True
        await asyncio.sleep(0.02)
    return False


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, object]]]:
    name, data = "", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif not line and name:
            yield name, json.loads(data)
            name, data = "", ""


class _Balanced(HTMLParser):
    VOID = {"meta", "input", "img", "br", "hr", "link", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()


def _check_html(text: str) -> None:
    parser = _Balanced()
    parser.feed(text)
    parser.close()
    assert parser.stack == []
