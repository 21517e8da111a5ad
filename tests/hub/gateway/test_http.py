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
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from nats.aio.client import Client as NatsClient

from hub import ids
from hub.cli import _parser as hub_parser
from hub.clock import SystemClock
from hub.crypto.consent import sign_consent
from hub.crypto.keys import AuthorityKeys
from hub.gateway import dashboard
from hub.gateway.feed import LedgerFeed
from hub.gateway.http import HttpDeps, create_app, serve
from hub.gateway.intake_client import IntakeClient
from hub.gateway.service import HubService
from hub.gateway.tokens import TokenStore, tokens_path
from hub.ledger.merkle import leaf_hash
from hub.ledger.projections.state import HubState
from hub.operator import admission_request, init_hub, submit_admission
from hub.runtime import operator_key, running_hub
from hub.settings import HubPaths, HubSettings, load_settings
from hub.subjects import OPERATOR
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.access import LiaisonConsent
from schemas.codec import decode, encode_json
from schemas.ledger import LedgerEntry
from tests.harness import HubHarness
from tests.hub.audit.history import NOW, History, mid, standard

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

    def token(self, role: str, **scope: str) -> str:
        return self.tokens.issue(
            role, now=self.clock.now(), valid_for=timedelta(days=1), **scope
        ).token  # type: ignore[arg-type]

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
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    h = _history()
    state = HubState()
    for data in h.entries:
        state.apply(decode(data, LedgerEntry))
    feed, clock = LedgerFeed(), Clock(NOW + timedelta(hours=1))
    tokens = TokenStore(tokens_path(tmp_path))
    deps = HttpDeps(
        state=lambda: state, ledger=MemoryLedger(h.entries), feed=feed, tokens=tokens, clock=clock
    )
    async with TestClient(TestServer(create_app(HubSettings(), deps))) as client:
        yield Api(client, h, state, feed, tokens, clock)


def _ids(rows: object) -> set[str]:
    assert isinstance(rows, list)
    return {row["case_id"] for row in rows}


class TestScopes:
    """Each role sees exactly its cases; anything else is 403 (401 without a live token)."""

    async def test_liaison_sees_exactly_its_pair(self, api: Api) -> None:
        token = api.token("liaison", officer="XA-LO-1", home=A, host=B)
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
        token = api.token("authority", authority=C)
        assert _ids(await api.json("/api/v1/status", token)) == {AC_CASE, BC_CASE}
        assert _ids(await api.json(f"/api/v1/status?authority={B}", token)) == {BC_CASE}
        assert (await api.get(f"/api/v1/cases/{AB_CASE}/trail", token)).status == 403
        assert (await api.get(f"/api/v1/review?first={A}&second={B}", token)).status == 403
        assert (await api.get(f"/api/v1/review?first={B}&second={C}", token)).status == 200
        assert (await api.get("/api/v1/ledger", token)).status == 403

    async def test_auditor_sees_all_metadata_and_no_content(self, api: Api) -> None:
        token = api.token("auditor")
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
        revoked = api.token("operator")
        api.tokens.revoke(revoked.split("_")[1], now=api.clock.now())
        expiring = api.token("operator")
        forged = api.token("operator")[:-4] + "AAAA"
        api.clock.at += timedelta(days=1, seconds=1)  # `expiring` is now past its day
        alive = api.token("operator")
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
        token = api.token("operator")
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
        token = api.token("liaison", officer="XA-LO-1", home=A, host=B)
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


class TestEvents:
    """Server-sent events: scoped status changes, and the end of a revoked token's stream."""

    async def test_status_event_for_the_pair_only_then_revocation(self, api: Api) -> None:
        token = api.token("liaison", officer="XA-LO-1", home=A, host=B)
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
        api.tokens.revoke(token.split("_")[1], now=api.clock.now())
        api.fold(api.history.entry(api.history.envelope(A, B, "request.submit", mid(6))))
        assert (await asyncio.wait_for(anext(events), 5))[0] == "revoked"
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


# --- beside a real hub ---------------------------------------------------------------------------


async def _next_event(
    events: AsyncIterator[tuple[str, dict[str, object]]], name: str
) -> dict[str, object]:
    """The next event called ``name`` (others skipped), within a bounded wait."""

    async def find() -> dict[str, object]:
        async for got, data in events:
            if got == name:
                return data
        raise AssertionError(f"stream ended before a {name!r} event")

    return await asyncio.wait_for(find(), 10)


@pytest.mark.nats
async def test_live_status_beside_a_real_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's ``on_entry`` feeds the streams, as ``hub up`` wires it: a liaison officer's
    stream shows its pair's new case, not another pair's; the ledger and checkpoint endpoints
    read the real JetStream; stopping the server ends an open stream at once."""
    feed = LedgerFeed()
    opened = HubService.open

    async def open_with_feed(nc: NatsClient, **options: Any) -> HubService:
        return await opened(nc, on_entry=feed.on_entry, **options)

    monkeypatch.setattr(HubService, "open", open_with_feed)
    hub = HubHarness(tmp_path)
    await hub.start()
    try:
        a, _, _ = await hub.authority(A), await hub.authority(B), await hub.authority(C)
        assert hub.service is not None
        service = hub.service
        tokens = TokenStore(tokens_path(tmp_path))
        deps = HttpDeps(
            state=lambda: service.state,
            ledger=service.ledger,
            feed=feed,
            tokens=tokens,
            clock=SystemClock(),
            checkpoints=service.checkpoints,
        )
        server = await serve(create_app(HubSettings(), deps), "127.0.0.1", 0)
        now = SystemClock().now()
        liaison = tokens.issue("liaison", now=now, valid_for=DAY, officer="LO", home=A, host=B)
        auditor = tokens.issue("auditor", now=now, valid_for=DAY)
        try:
            async with aiohttp.ClientSession(server.url) as session:
                stream = await session.get("/api/v1/events", headers=_auth(liaison.token))
                events = _events(stream)
                await _next_event(events, "hello")
                await a.send_request(C)  # another pair: not in the officer's stream
                message_id, status = await a.send_request(B)
                assert status == "accepted"
                case_id = service.state.messages.messages[message_id].case_id
                seen = await _next_event(events, "status")
                assert (seen["case_id"], seen["state"], seen["requested"]) == (
                    case_id,
                    "submitted",
                    B,
                )
                ledger = await session.get(
                    "/api/v1/ledger?limit=1000", headers=_auth(auditor.token)
                )
                entries = await ledger.json()
                assert len(entries) == int(ledger.headers["X-Ledger-Size"]) >= 5
                assert entries[-1]["index"] == len(entries) - 1
                note = await session.get("/api/v1/checkpoint", headers=_auth(auditor.token))
                assert note.status == 200 and "\n\u2014 " in await note.text()
                loop = asyncio.get_running_loop()
                started = loop.time()
                await server.stop()  # the stream above is still open
                assert loop.time() - started < 3.0
                assert (await _next_event(events, "reset"))["reason"] == "shutdown"
        finally:
            await server.stop()
    finally:
        await hub.close()


@pytest.mark.nats
async def test_hub_up_serves_the_api_and_accredits_a_liaison_officer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``running_hub(http_port=0)`` (what ``hub up --http-port`` runs) serves the API; ``hub
    liaison accredit`` checks the home authority's consent against the ledger's directory and
    prints a token for the pair; ``hub liaison revoke`` ends it at once in the running hub."""
    paths = HubPaths(tmp_path / "H")
    now = SystemClock().now()
    init_hub(paths, HubSettings(), now=now)
    # Without the NATS access list (a supported mode; test_cli covers TLS + nkeys): admitting
    # reloads nats-server, and a JetStream request right after the reload can meet no responder.
    paths.security_conf.unlink()
    keys = {ident: AuthorityKeys.generate("x25519") for ident in (A, B)}
    async with running_hub(paths, load_settings(paths), nats_port=0, http_port=0) as hub:
        assert hub.http_url is not None and hub.http_url.startswith("http://127.0.0.1:")
        stop = asyncio.Event()
        task = asyncio.create_task(hub.service.run(stop))
        try:
            for ident, key in keys.items():
                settings = AgentSettings(
                    id=ident, state=ident[:2], name=ident, kinds=["mla"], languages=["en"]
                )
                request = admission_request(
                    card_file(settings, key, now=now), operator_key(paths), now=now
                )
                verdict = await submit_admission(IntakeClient(hub.nc, OPERATOR), request, 10.0)
                assert verdict.status == "accepted", verdict
            consent = tmp_path / "consent.json"
            made = sign_consent(
                LiaisonConsent(
                    consent_id=ids.uuid7(), officer="XA-LO-7", home=A, host=B,
                    key_id=keys[A].key_id, issued_at=SystemClock().now(),
                    valid_until=now + timedelta(days=30),
                ),
                keys[A],
            )  # fmt: skip
            consent.write_bytes(encode_json(made))
            base = ["--data", str(paths.root), "--officer", "XA-LO-7"]
            args = hub_parser().parse_args(
                ["liaison", "accredit", *base, "--home", A, "--host", B,
                 "--consent", str(consent), "--nats", hub.nats_url, "--json"]
            )  # fmt: skip
            assert await args.run(args) == 0
            out = capsys.readouterr().out  # (unconfigured structlog also prints here)
            issued = json.loads(out[out.index("\n{\n") :])
            assert issued["scope"] == f"officer XA-LO-7: {A} <-> {B}"
            async with aiohttp.ClientSession(hub.http_url) as session:
                assert (await session.get("/healthz")).status == 200
                who = await session.get("/api/v1/whoami", headers=_auth(issued["token"]))
                assert (await who.json())["pair"] == [A, B]
                args = hub_parser().parse_args(["liaison", "revoke", *base])
                assert await args.run(args) == 0
                who = await session.get("/api/v1/whoami", headers=_auth(issued["token"]))
                assert who.status == 401
        finally:
            stop.set()
            await task
        url = hub.http_url
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{url}/healthz")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
