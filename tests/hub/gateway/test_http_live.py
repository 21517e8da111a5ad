"""The read API beside a real hub on its own nats-server and a real loopback port: live
events fed by the service's ``on_entry``, the ledger and checkpoints read from JetStream, and
``running_hub(http_port=...)`` as ``hub up --http-port`` runs it, with ``hub liaison accredit``,
``hub token issue|revoke`` reaching the running API through the token bucket, and the one-time
import of a former ``tokens.json`` (``hub.gateway.http``, ``hub.runtime``, ``hub.cli_access``;
DESIGN.md 7; issue 5)."""

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
from structlog.testing import capture_logs

from hub import ids
from hub.cli import _parser as hub_parser
from hub.clock import SystemClock
from hub.crypto.consent import sign_consent
from hub.crypto.keys import AuthorityKeys
from hub.gateway.feed import LedgerFeed
from hub.gateway.http import HttpDeps, create_app, serve
from hub.gateway.intake_client import IntakeClient
from hub.gateway.service import HubService
from hub.gateway.token_store import TokenStore
from hub.gateway.tokens import new_token, tokens_path
from hub.operator import admission_request, init_hub, submit_admission
from hub.runtime import operator_key, running_hub
from hub.settings import HubPaths, HubSettings, load_settings
from hub.subjects import OPERATOR
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.access import AuditorAccreditation, LiaisonAccreditation, LiaisonConsent, TokenFile
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
        assert hub.nc is not None
        tokens = await TokenStore.open(hub.nc.jetstream())
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
        liaison = await tokens.issue(
            "liaison", now=now, valid_for=DAY, officer="LO-1", home=A, host=B,
            accreditation_id=accreditation,
        )  # fmt: skip
        auditor = await tokens.issue(
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
            assert issued["accreditation_id"] == accreditation
            again = await run("token", "issue", *data, "--accreditation", accreditation, "--json")
            assert again["scope"] == issued["scope"] and again["token"] != issued["token"]
            auditor = await run(
                "auditor", "admit", *data, "--auditor", "AUD-7", "--name", "Court of Audit",
                "--json",
            )  # fmt: skip
            async with aiohttp.ClientSession(hub.http_url) as session:
                assert (await session.get("/healthz")).status == 200
                for token in (issued["token"], again["token"], auditor["token"]):
                    await _whoami_until(session, token, 200)  # the API's watcher has them
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
                # The ledger ends the accreditation at once; the token record follows within
                # a moment, and then authentication refuses it before the ledger is asked.
                revoked_token = f"authorization: token {auditor['token_id']} was revoked"
                await _whoami_until(session, auditor["token"], 401, revoked_token)
        finally:
            stop.set()
            await task
        url = hub.http_url
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{url}/healthz")


async def test_hub_up_imports_old_tokens_and_follows_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hub up`` on TLS and nkeys: a former ``tokens.json`` is imported into the bucket once
    (and renamed); ``hub token issue`` and ``revoke``, connecting as the hub's own NATS user,
    reach the running read API within a bounded wait."""
    paths = HubPaths(tmp_path / "H")
    now = SystemClock().now()
    init_hub(paths, HubSettings(), now=now)
    old = new_token(
        "authority", token_id="00000000000000aa", secret="s" * 43, now=now, valid_for=DAY,
        authority=A, label="issued before the bucket",
    )  # fmt: skip
    legacy = tokens_path(paths.root)
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_bytes(encode_json(TokenFile(tokens=[old.record])))
    with capture_logs() as logs:
        async with running_hub(paths, load_settings(paths), nats_port=0, http_port=0) as hub:
            assert hub.http_url is not None
            assert not legacy.exists() and legacy.with_name("tokens.json.imported").exists()
            data = ["--data", str(paths.root)]  # no --nats: the running hub's (run.json)
            async with aiohttp.ClientSession(hub.http_url) as session:
                who = await session.get("/api/v1/whoami", headers=_auth(old.token))
                assert (await who.json())["authority"] == A  # imported before the API started
                issued = await _cli(capsys, "token", "issue", *data, "--role", "operator",
                                    "--json")  # fmt: skip
                await _whoami_until(session, issued["token"], 200)
                await _cli(capsys, "token", "revoke", *data, "--id", issued["token_id"], "--json")
                revoked = f"authorization: token {issued['token_id']} was revoked"
                await _whoami_until(session, issued["token"], 401, revoked)
    [event] = [e for e in logs if e["event"] == "access_tokens_imported"]
    assert (event["imported"], event["kept"]) == (1, 0)


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run a ``hub`` command in process; its JSON output (structlog may print before it)."""
    args = hub_parser().parse_args(list(argv))
    assert await args.run(args) == 0, argv
    lines = capsys.readouterr().out.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line[:1] in "{[")
    return json.loads("".join(lines[first:]))


async def _whoami_until(
    session: aiohttp.ClientSession,
    token: str,
    status: int,
    detail: str | None = None,
    seconds: float = 5.0,
) -> Any:
    """Ask ``whoami`` until it answers ``status`` (and ``detail``), within ``seconds``: a token
    issued or revoked through the bucket reaches a running API's index within a moment."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        async with session.get("/api/v1/whoami", headers=_auth(token)) as response:
            body = await response.json()
            if response.status == status and (detail is None or body["detail"] == detail):
                return body
        if loop.time() > deadline:
            raise AssertionError(f"whoami still {response.status} after {seconds} s: {body}")
        await asyncio.sleep(0.02)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
