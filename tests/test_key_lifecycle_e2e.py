"""Key lifecycle through a real hub on a real nats-server (issue 5): rotation in the middle of a
case, sealing to a replaced key, revocation; the whole history still verifies afterwards."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.errors import NoKeysError

from hub import ids, subjects
from hub.audit.outcome import Report
from hub.audit.replay import TrustAnchors
from hub.audit.runner import verify_entries
from hub.gateway.connection import close as close_connection
from hub.gateway.connection import connect
from hub.ledger.store import Ledger
from node_agent.agent import Outgoing
from node_agent.directory import AgentDirectory
from node_agent.errors import RecipientRevoked
from schemas.codec import decode
from schemas.directory import AdmittedCard, RevokedAuthority
from schemas.envelope import CaseMeta, Header
from schemas.ledger import EnvelopeRecorded
from tests.harness import AuthorityHarness, HubHarness, eventually

pytestmark = pytest.mark.nats

A, B = "XA-MOJ", "XB-MOJ"


async def audit(hub: HubHarness) -> Report:
    """The auditor's replay of the whole ledger, against the hub's operator key."""
    assert hub.service is not None and hub.nc is not None
    log = hub.service.log
    anchors = TrustAnchors(log.origin, log.verifier, frozenset({hub.operator.public}))
    entries = [pair async for pair in Ledger(hub.nc.jetstream()).read()]
    result = verify_entries(entries, anchors, workers=1)
    assert result.report is not None, result.divergence
    return result.report


def case_of(authority: AuthorityHarness, message_id: str) -> str:
    row = authority.store.outbox_get(message_id)
    assert row is not None
    return row.case_id


async def envelope_headers(hub: HubHarness) -> list[Header]:
    return [
        decode(e.event.header, Header)
        for e in await hub.entries()
        if isinstance(e.event, EnvelopeRecorded)
    ]


class TestRotation:
    """Rotation mid-case: what the old key signed still verifies; what follows uses the new
    key; a message sealed to the replaced key is refused so the sender seals again."""

    async def test_rotation_in_the_middle_of_a_case(self, hub: HubHarness) -> None:
        a, b = await hub.authority(A), await hub.authority(B)
        await a.start()
        await b.start()
        old = a.keys.key_id
        submitted, status = await a.send_request(B)
        assert status == "accepted"
        case = case_of(a, submitted)
        await eventually(lambda: b.store.inbox_get(submitted) is not None, "the request at B")

        verdict = await hub.rotate(a)
        assert verdict.status == "accepted", verdict
        new = a.keys.key_id
        assert new != old

        ack = await b.send(Outgoing(to=A, type="request.acknowledge", case_id=case, text="ok"))
        assert ack.status == "accepted", ack  # sealed to A's current key, fetched fresh
        await eventually(lambda: a.store.inbox_get(ack.message_id) is not None, "ack at A")
        more = await a.send(
            Outgoing(to=B, type="request.supplemented", case_id=case, text="more facts")
        )
        assert more.status == "accepted", more
        await eventually(lambda: b.store.inbox_get(more.message_id) is not None, "more at B")

        signers = [(h.sender, h.sender_key_id) for h in await envelope_headers(hub)]
        assert signers == [(A, old), (B, b.keys.key_id), (A, new)]
        report = await audit(hub)
        assert (report.rotations, report.envelopes) == (1, 3)

    async def test_sealed_to_a_replaced_key(self, hub: HubHarness) -> None:
        a, b = await hub.authority(A), await hub.authority(B)
        _, status = await a.send_request(B)  # A caches B's card
        assert status == "accepted"
        stale = b.keys.key_id
        verdict = await hub.rotate(b)
        assert verdict.status == "accepted", verdict

        link = await a.connect()
        offline = AgentDirectory(a.store, None, hub.operator.public)  # only the cached card
        outgoing = Outgoing(
            to=B,
            type="request.submit",
            case_id=ids.uuid7(),
            text="sealed from the cache",
            meta=CaseMeta(kind="mla", legal_basis="untoc-art18"),
        )
        message_id = await a.agent.queue(outgoing, offline)
        result = await a.agent.submit(link, message_id, 10.0)
        assert (result.status, result.reason) == ("rejected", "stale_recipient_key")
        assert result.detail == (
            f"wrapped_keys: sealed to XB-MOJ's key {stale}, which is no longer current (now "
            f"{b.keys.key_id}, admitted at ledger index {verdict.ledger_index}); fetch the "
            "directory and seal again"
        )
        _, status = await a.send_request(B)  # the live directory fetches the current card
        assert status == "accepted"


class TestRevocation:
    """After revocation the authority neither submits nor receives; its history verifies; the
    directory says so, signed by the operator."""

    async def test_revocation(self, hub: HubHarness) -> None:
        a, b = await hub.authority(A), await hub.authority(B)
        await b.start()
        earlier, status = await a.send_request(B)
        assert status == "accepted"
        await eventually(lambda: b.store.inbox_get(earlier) is not None, "the request at B")
        await b.stop()

        verdict = await hub.revoke(B, "designation withdrawn")
        assert verdict.status == "accepted" and verdict.recorded_at is not None, verdict
        index, at = verdict.ledger_index, verdict.recorded_at.isoformat()
        again = await hub.revoke(B, "designation withdrawn")
        assert (again.status, again.ledger_index) == ("duplicate", index)

        message_id, status = await a.send_request(B)  # from A's cached card of B
        row = a.store.outbox_get(message_id)
        assert row is not None and status == "rejected"
        assert (row.reason, row.detail) == (
            "revoked",
            f"recipients: XB-MOJ was revoked at ledger index {index} ({at}): designation "
            "withdrawn; nothing more can be sent to it",
        )
        result = await b.send(
            Outgoing(
                to=A,
                type="request.submit",
                case_id=ids.uuid7(),
                text="after the revocation",
                meta=CaseMeta(kind="mla", legal_basis="untoc-art18"),
            )
        )
        assert (result.status, result.reason) == ("rejected", "revoked")
        assert result.detail is not None and result.detail.startswith(
            f"sender: XB-MOJ was revoked at {at} (ledger index {index}: designation withdrawn);"
        )

        await hub.publish_snapshot()  # what `hub up` does at every directory change
        with pytest.raises(RecipientRevoked) as refused:
            await a.send_request(B)  # now refused by A's agent, before sealing
        assert str(refused.value) == (
            f"--to: XB-MOJ was revoked at ledger index {index} ({at}): designation withdrawn; "
            "nothing more can be sent to it"
        )

        assert hub.service is not None and hub.nc is not None
        assert [r.card.id for r in hub.service.state.directory.authorities()] == [A]
        kv = await hub.nc.jetstream().key_value(subjects.DIRECTORY_BUCKET)
        keys: list[str] = []
        for _ in range(20):  # nats-py's kv.keys() says "no keys" if its watcher is slow to start
            try:
                keys = await kv.keys()
                break
            except NoKeysError:
                await asyncio.sleep(0.1)
        served = {key: (await kv.get(key)).value for key in keys}
        assert subjects.card_key(B) not in served
        marker = decode(served[subjects.revoked_key(B)] or b"", RevokedAuthority)
        assert (marker.ledger_index, marker.reason) == (index, "designation withdrawn")
        history = decode(served[subjects.key_history_key(B, b.keys.key_id)] or b"", AdmittedCard)
        assert history.ledger_index == 1  # B's key history stays: its old messages verify

        report = await audit(hub)
        assert report.revocations == 1 and report.rejections == 2

    async def test_directory_reflects_revocation_after_restart(self, hub: HubHarness) -> None:
        await hub.authority(A)
        await hub.authority(B)
        assert (await hub.revoke(B)).status == "accepted"
        await hub.restart()
        assert hub.service is not None
        assert [r.card.id for r in hub.service.state.directory.authorities()] == [A]
        nc = await connect(hub.url, name="test-reader")
        try:
            kv = await nc.jetstream().key_value(subjects.DIRECTORY_BUCKET)
            assert subjects.card_key(B) not in await kv.keys()
        finally:
            await close_connection(nc)
