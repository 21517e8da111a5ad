"""The read API beside a real hub on its own nats-server and a real loopback port: live
events fed by the service's ``on_entry``, the ledger and checkpoints read from JetStream, and
``running_hub(http_port=...)`` as ``hub up --http-port`` runs it, with ``hub liaison accredit``
(``hub.gateway.http``, ``hub.runtime``, ``hub.cli_access``; DESIGN.md 7; issue 5)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nats.aio.client import Client as NatsClient

from hub import ids
from hub.cli import _parser as hub_parser
from hub.clock import SystemClock
from hub.crypto.consent import sign_consent
from hub.crypto.keys import AuthorityKeys
from hub.gateway.feed import LedgerFeed
from hub.gateway.http import HttpDeps, create_app, serve
from hub.gateway.intake_client import IntakeClient
from hub.gateway.service import HubService
from hub.gateway.tokens import TokenStore, tokens_path
from hub.operator import admission_request, init_hub, submit_admission
from hub.runtime import operator_key, running_hub
from hub.settings import HubPaths, HubSettings, load_settings
from hub.subjects import OPERATOR
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.access import AuditorAccreditation, LiaisonAccreditation, LiaisonConsent
from schemas.codec import encode_json
from tests.harness import HubHarness
from tests.hub.gateway.test_http import DAY, A, B, C, _events

pytestmark = pytest.mark.nats


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
        consent = sign_consent(
            LiaisonConsent(
                consent_id=ids.uuid7(), officer="LO-1", home=A, host=B, key_id=a.keys.key_id,
                issued_at=now, valid_until=now + 2 * DAY,
            ),
            a.keys,
        )  # fmt: skip
        accreditation, auditor_accreditation = ids.uuid7(), ids.uuid7()
        verdicts = [
            await hub.record_access(
                LiaisonAccreditation(
                    accreditation_id=accreditation, consent=consent.signed, issued_at=now,
                    valid_until=now + DAY,
                )
            ),
            await hub.record_access(
                AuditorAccreditation(
                    accreditation_id=auditor_accreditation, auditor="AUD-1", name="Auditor",
                    issued_at=now, valid_until=now + DAY,
                )
            ),
        ]  # fmt: skip
        assert [v.status for v in verdicts] == ["accepted", "accepted"], verdicts
        liaison = tokens.issue(
            "liaison", now=now, valid_for=DAY, officer="LO-1", home=A, host=B,
            accreditation_id=accreditation,
        )  # fmt: skip
        auditor = tokens.issue(
            "auditor", now=now, valid_for=DAY, accreditation_id=auditor_accreditation
        )
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


async def test_hub_up_serves_the_api_and_accredits_a_liaison_officer(  # noqa: PLR0915 - one operator's session, in order
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
            data = ["--data", str(paths.root), "--nats", hub.nats_url]
            base = [*data, "--officer", "XA-LO-7"]

            async def run(*argv: str) -> Any:
                args = hub_parser().parse_args(list(argv))
                assert await args.run(args) == 0, argv
                out = capsys.readouterr().out  # (unconfigured structlog also prints here)
                lines = out.splitlines(keepends=True)
                first = next(i for i, line in enumerate(lines) if line[:1] in "{[")
                return json.loads("".join(lines[first:]))

            issued = await run(
                "liaison", "accredit", *base, "--home", A, "--host", B, "--consent", str(consent),
                "--json",
            )  # fmt: skip
            assert issued["scope"] == f"officer XA-LO-7: {A} <-> {B}"
            listed = await run("liaison", "list", *data, "--json")
            assert [(v["holder"], v["status"]) for v in listed] == [("XA-LO-7", "active")]
            accreditation = listed[0]["accreditation_id"]
            again = await run("token", "issue", *data, "--accreditation", accreditation, "--json")
            assert again["scope"] == issued["scope"] and again["token"] != issued["token"]
            auditor = await run(
                "auditor", "admit", *data, "--auditor", "AUD-7", "--name", "Court of Audit",
                "--json",
            )  # fmt: skip
            async with aiohttp.ClientSession(hub.http_url) as session:
                assert (await session.get("/healthz")).status == 200
                for token in (issued["token"], again["token"]):
                    who = await session.get("/api/v1/whoami", headers=_auth(token))
                    assert (await who.json())["pair"] == [A, B]
                ledger = await session.get("/api/v1/ledger", headers=_auth(auditor["token"]))
                kinds = [row["type"] for row in await ledger.json()]
                assert kinds[-2:] == ["liaison.accredit", "auditor.admit"], kinds
                revoked = await run(
                    "liaison", "revoke", *base, "--reason", "posting over", "--json"
                )
                assert [r["accreditation_id"] for r in revoked["revoked"]] == [accreditation]
                assert sorted(revoked["tokens_revoked"]) == sorted(
                    t["token_id"] for t in (issued, again)
                )
                for token in (issued["token"], again["token"]):
                    who = await session.get("/api/v1/whoami", headers=_auth(token))
                    assert who.status == 401
                listed = await run("liaison", "list", *data, "--all", "--json")
                assert [(v["status"], v["revoked_reason"]) for v in listed] == [
                    ("revoked", "posting over")
                ]
                await run("auditor", "revoke", *data, "--auditor", "AUD-7", "--reason", "done",
                          "--json")  # fmt: skip
                who = await session.get("/api/v1/whoami", headers=_auth(auditor["token"]))
                assert who.status == 401
                assert (await who.json())["detail"].endswith(" was revoked")
        finally:
            stop.set()
            await task
        url = hub.http_url
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{url}/healthz")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
