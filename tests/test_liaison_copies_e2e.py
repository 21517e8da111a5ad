"""A home authority copies its liaison officer on its messages to the host (issue 5, rec. 16).

Real nats-server, hub, node agents, read API on a loopback port and the officer's own CLI:
the officer's keys go into the home authority's consent, the operator's accreditation records
them, the operator-signed directory snapshot lists them, the home agent seals to them as well,
and ``node-agent officer read`` opens the copies after checking them against the pinned
operator key, never trusting the hub for anything but bytes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub import ids
from hub.clock import SystemClock
from hub.crypto.consent import sign_consent
from hub.gateway.copies import JetStreamCopies
from hub.gateway.feed import LedgerFeed
from hub.gateway.http import HttpDeps, HttpServer, create_app, serve
from hub.gateway.token_store import TokenStore
from hub.ledger.store import ContentStore
from hub.settings import HubSettings
from node_agent.agent import Outgoing
from node_agent.cli import _parser as node_parser
from node_agent.officer import OfficerPaths, init_officer
from schemas.access import AccessRevocation, LiaisonAccreditation, LiaisonConsent
from schemas.directory import PublicKeys
from tests.harness import AuthorityHarness, HubHarness, eventually

pytestmark = pytest.mark.nats

A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"
DAY = timedelta(days=1)
OFFICER = "XA-LO-7"


@dataclass
class World:
    hub: HubHarness
    a: AuthorityHarness
    b: AuthorityHarness
    officer: OfficerPaths
    officer_keys: PublicKeys
    api: HttpServer
    tokens: TokenStore


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    hub = HubHarness(tmp_path / "hub")
    await hub.start()
    try:
        a, b, c = await hub.authority(A), await hub.authority(B), await hub.authority(C)
        for authority in (a, b, c):
            await authority.start()
        officer = OfficerPaths(tmp_path / "officer")
        officer_keys = init_officer(officer, OFFICER, hub.operator.public)
        assert hub.service is not None and hub.nc is not None
        service, js = hub.service, hub.nc.jetstream()
        tokens = await TokenStore.open(js)
        deps = HttpDeps(
            state=lambda: service.state,
            ledger=service.ledger,
            feed=LedgerFeed(),
            tokens=tokens,
            clock=SystemClock(),
            copies=JetStreamCopies(js, await ContentStore.open(js)),
        )
        api = await serve(create_app(HubSettings(), deps), "127.0.0.1", 0)
        try:
            yield World(hub, a, b, officer, officer_keys, api, tokens)
        finally:
            await api.stop()
    finally:
        await hub.close()


async def _accredit(world: World) -> tuple[str, str]:
    """Consent with the officer's keys, accreditation through the intake, snapshot, token."""
    now = SystemClock().now()
    consent = sign_consent(
        LiaisonConsent(
            consent_id=ids.uuid7(), officer=OFFICER, home=A, host=B, key_id=world.a.keys.key_id,
            issued_at=now, valid_until=now + 30 * DAY, officer_keys=world.officer_keys,
        ),
        world.a.keys,
    )  # fmt: skip
    accreditation = ids.uuid7()
    verdict = await world.hub.record_access(
        LiaisonAccreditation(
            accreditation_id=accreditation, consent=consent.signed, issued_at=now,
            valid_until=now + 10 * DAY,
        )
    )  # fmt: skip
    assert verdict.status == "accepted", verdict
    await world.hub.publish_snapshot()  # what `hub up` does after each access statement
    issued = await world.tokens.issue(
        "liaison", now=now, valid_for=DAY, officer=OFFICER, home=A, host=B,
        accreditation_id=accreditation,
    )  # fmt: skip
    return accreditation, issued.token


async def _officer_read(
    world: World,
    case_id: str,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    officer: OfficerPaths | None = None,
) -> tuple[int, Any]:
    monkeypatch.setenv("MLA_HUB_TOKEN", token)
    folder = officer or world.officer
    argv = ["officer", "read", "--data", str(folder.root), "--api", world.api.url,
            "--case", case_id, "--json", "--out", str(folder.root / "read")]  # fmt: skip
    args = node_parser().parse_args(argv)
    capsys.readouterr()
    code = await args.run(args)
    out = capsys.readouterr().out
    lines = out.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("["))
    return code, json.loads("".join(lines[first:]))


async def test_the_officer_reads_exactly_what_the_home_authority_copied(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    accreditation, token = await _accredit(world)
    state = world.hub.service.state  # type: ignore[union-attr]
    copied, status = await world.a.send_request(B, "Search the premises at 4 Quay Street.")
    assert status == "accepted"
    not_copied, _ = await world.a.send_request(C)
    assert state.messages.messages[copied].observers == (accreditation,)
    assert state.messages.messages[not_copied].observers == ()
    await eventually(
        lambda: state.messages.receipt_index(copied, B) is not None, "XB-MOJ's receipt"
    )
    case_id = state.messages.messages[copied].case_id

    # the requested side answers: B has no officer of its own, nothing is copied
    reply = await world.b.send(
        Outgoing(to=A, type="request.acknowledge", case_id=case_id, text="received")
    )
    assert reply.status == "accepted", reply
    assert state.messages.messages[reply.message_id].observers == ()
    # the home authority may also leave its officer out of one message
    withheld = await world.a.send(
        Outgoing(to=B, type="request.withdraw", case_id=case_id, text="not for the officer",
                 copy_liaisons=False)
    )  # fmt: skip
    assert (
        withheld.status == "accepted"
        and state.messages.messages[withheld.message_id].observers == ()
    )

    code, read = await _officer_read(world, case_id, token, monkeypatch, capsys)
    assert code == 0
    assert [(r["message_id"], r["sender"], r["text"], r["error"]) for r in read] == [
        (copied, A, "Search the premises at 4 Quay Street.", None)
    ]
    saved = world.officer.root / "read" / copied / "body.txt"
    assert saved.read_text() == "Search the premises at 4 Quay Street."

    # another officer's keys (a folder of its own) open nothing, and say why
    impostor = OfficerPaths(world.officer.root.parent / "impostor")
    init_officer(impostor, OFFICER, world.hub.operator.public)
    code, read = await _officer_read(world, case_id, token, monkeypatch, capsys, officer=impostor)
    assert code == 1
    assert [r["error"] for r in read] == ["decryption_failed: message could not be decrypted"]

    # a case of another pair is out of scope
    other_case = state.messages.messages[not_copied].case_id
    async with aiohttp.ClientSession(world.api.url) as session:
        response = await session.get(
            f"/api/v1/cases/{other_case}/copies", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 403


async def test_revoking_the_officer_stops_the_copies(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    accreditation, token = await _accredit(world)
    state = world.hub.service.state  # type: ignore[union-attr]
    first, _ = await world.a.send_request(B)
    assert state.messages.messages[first].observers == (accreditation,)
    verdict = await world.hub.record_access(
        AccessRevocation(
            accreditation_id=accreditation, reason="posting ended", issued_at=SystemClock().now()
        )
    )
    assert verdict.status == "accepted"
    await world.hub.publish_snapshot()
    # the home agent fetches the snapshot again before sealing to an officer it lists
    second, status = await world.a.send_request(B)
    assert status == "accepted" and state.messages.messages[second].observers == ()
    async with aiohttp.ClientSession(world.api.url) as session:
        case_id = state.messages.messages[first].case_id
        response = await session.get(
            f"/api/v1/cases/{case_id}/copies", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 401
        assert "posting ended" in (await response.json())["detail"]
