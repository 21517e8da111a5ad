"""The hub's transparency log on a real nats-server: proofs on verdicts and deliveries,
checkpoints on request, consistency proofs, witnesses' cosignatures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from hub import subjects
from hub.crypto.checkpoint import cosign_with, tally_cosignatures
from hub.crypto.keys import AuthorityKeys
from hub.gateway._appends import Sent
from hub.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from hub.ledger.transparency import TransparencyLog, witness_verifier
from schemas.codec import decode, encode
from schemas.ledger import EnvelopeRecorded, LedgerEntry
from schemas.transparency import ConsistencyRequest, CosignatureSubmission, TransparencyReply
from tests.harness import HubHarness, eventually

pytestmark = pytest.mark.nats


async def _ask(hub: HubHarness, subject: str, payload: bytes = b"") -> TransparencyReply:
    assert hub.nc is not None
    msg = await hub.nc.request(subject, payload, timeout=5)
    return decode(msg.data, TransparencyReply)


class TestProofsOnAnswers:
    """Every verdict and delivery proves where its entry sits in a signed checkpoint."""

    async def test_verdict_and_delivery_carry_inclusion_proofs(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        message_id, status = await a.send_request("XB-MOJ")
        assert status == "accepted"
        assert hub.nc is not None
        log = TransparencyLog(hub.log_key)
        stored = await hub.nc.jetstream().get_last_msg(
            subjects.VERDICT_STREAM, subjects.verdict("XA-MOJ", message_id)
        )
        from schemas.transport import Delivery, Verdict

        verdict = decode(stored.data or b"", Verdict)
        assert verdict.entry is not None and verdict.checkpoint is not None
        checkpoint = log.open(verdict.checkpoint)
        assert checkpoint.size >= (verdict.ledger_index or 0) + 1
        verify_inclusion(
            leaf_hash(verdict.entry),
            verdict.ledger_index or 0,
            checkpoint.size,
            verdict.inclusion_proof,
            checkpoint.root,
        )
        entry = decode(verdict.entry, LedgerEntry)
        assert isinstance(entry.event, EnvelopeRecorded)
        delivered = await hub.nc.jetstream().get_last_msg(
            subjects.DELIVER_STREAM, subjects.deliver("XB-MOJ")
        )
        delivery = decode(delivered.data or b"", Delivery)
        assert delivery.entry == verdict.entry
        verify_inclusion(
            leaf_hash(delivery.entry or b""),
            delivery.ledger_index,
            log.open(delivery.checkpoint or "").size,
            delivery.inclusion_proof,
            log.open(delivery.checkpoint or "").root,
        )
        with pytest.raises(Exception, match="inclusion"):
            verify_inclusion(
                leaf_hash(verdict.entry + b"x"),
                verdict.ledger_index or 0,
                checkpoint.size,
                verdict.inclusion_proof,
                checkpoint.root,
            )


class TestRequests:
    """Checkpoint on demand, consistency proofs, cosignatures over core request/reply."""

    async def test_checkpoint_and_consistency(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        reply = await _ask(hub, subjects.HUB_CHECKPOINT)
        log = TransparencyLog(hub.log_key)
        first = log.open(reply.note or "")
        await a.send_request("XB-MOJ")
        await a.send_request("XB-MOJ")
        second = log.open((await _ask(hub, subjects.HUB_CHECKPOINT)).note or "")
        assert second.size == first.size + 2, (first.size, second.size)
        proof = await _ask(
            hub,
            subjects.HUB_CONSISTENCY,
            encode(ConsistencyRequest(from_size=first.size, to_size=second.size)),
        )
        assert proof.status == "ok" and proof.proof is not None
        verify_consistency(first.size, second.size, first.root, second.root, proof.proof.hashes)
        bad = await _ask(
            hub,
            subjects.HUB_CONSISTENCY,
            encode(ConsistencyRequest(from_size=1, to_size=second.size + 5)),
        )
        assert (bad.status, bad.code) == ("error", "unavailable"), bad  # not there yet: ask again
        assert f"holds {second.size} entries so far, not {second.size + 5}" in bad.detail, bad
        backwards = await _ask(
            hub,
            subjects.HUB_CONSISTENCY,
            encode(ConsistencyRequest(from_size=2, to_size=1)),
        )
        assert (backwards.status, backwards.code) == ("error", "invalid")
        assert "need 0 <= from_size <= to_size" in backwards.detail
        garbage = await _ask(hub, subjects.HUB_CONSISTENCY, b"\xc1")
        assert garbage.status == "error" and garbage.detail.startswith("malformed")

    async def test_cosignatures_are_verified_and_served(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        log = TransparencyLog(hub.log_key)
        checkpoint = log.open((await _ask(hub, subjects.HUB_CHECKPOINT)).note or "")
        line = cosign_with(
            checkpoint.text, "XA-MOJ", a.keys.signing_public, a.keys.sign, int(time.time())
        )
        reply = await _ask(
            hub,
            subjects.hub_cosign("XA-MOJ"),
            encode(CosignatureSubmission(size=checkpoint.size, line=line)),
        )
        assert reply.status == "ok"
        served = (await _ask(hub, subjects.HUB_CHECKPOINT)).note or ""
        tally = tally_cosignatures(served, [witness_verifier("XA-MOJ", a.keys.signing_public)])
        assert [v.name for v in tally.valid] == ["XA-MOJ"]

        impostor = AuthorityKeys.generate("x25519")
        forged = cosign_with(
            checkpoint.text, "XA-MOJ", impostor.signing_public, impostor.sign, int(time.time())
        )
        refused = await _ask(
            hub,
            subjects.hub_cosign("XA-MOJ"),
            encode(CosignatureSubmission(size=checkpoint.size, line=forged)),
        )
        assert refused.status == "error"
        stranger = await _ask(
            hub,
            subjects.hub_cosign("XZ-NOBODY"),
            encode(CosignatureSubmission(size=checkpoint.size, line=line)),
        )
        assert stranger.status == "error" and "XZ-NOBODY is not admitted" in stranger.detail

    async def test_checkpoint_follows_within_a_second(self, hub: HubHarness) -> None:
        await hub.authority("XA-MOJ")
        assert hub.service is not None
        service = hub.service
        await eventually(
            lambda: service.log.latest is not None and service.log.latest.size == service.log.size,
            "a checkpoint of the whole log",
            timeout=3,
        )


class TestCatchUpRace:
    """The checkpoint ticker folds what other instances appended (``catch_up``). Found by the
    bench: when it ran while one of our own appends was stored but not yet folded, the entry
    was folded twice, a duplicate leaf went into the Merkle tree, and every later proof
    failed at the agents (thousands of transparency alarms a run)."""

    async def test_an_entry_caught_up_mid_append_is_folded_once(
        self, hub: HubHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        service = hub.service
        assert service is not None
        appends = service._appends
        store, send = appends.store, appends.send
        caught: list[int] = []

        async def store_then_catch_up(data: bytes, **kw: Any) -> None:  # admissions: one by one
            await store(data, **kw)
            assert service._busy()  # so the ticker leaves it alone; a direct call still races
            caught.append(await service.catch_up())

        async def send_then_catch_up(data: bytes, **kw: Any) -> Sent:  # batches: in flight
            sent = await send(data, **kw)
            assert service._busy()
            if appends.batch is not None:  # an atomic batch is stored at its commit
                await appends.batch.commit()
            await sent.ack  # stored: what a ticker running right now would read
            caught.append(await service.catch_up())
            return sent

        monkeypatch.setattr(appends, "store", store_then_catch_up)
        monkeypatch.setattr(appends, "send", send_then_catch_up)
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        await b.start()
        _, status = await a.send_request("XB-MOJ")
        assert status == "accepted"
        await eventually(lambda: bool(b.store.inbox_all()), "the delivery at B")
        assert sum(caught) >= 3  # the race did happen: admissions and the request

        entries = await hub.entries()
        assert service.log.size == service.state.next_index == len(entries)
        checkpoint = service.log.checkpoint()
        for entry in entries:
            verify_inclusion(
                leaf_hash(encode(entry)),
                entry.index,
                checkpoint.size,
                service.log.inclusion(entry.index, checkpoint.size),
                checkpoint.root,
            )
        assert b.agent.witness is not None and b.agent.witness.store.alarms() == []

    async def test_the_ticker_does_not_catch_up_while_an_append_is_in_flight(
        self, hub: HubHarness
    ) -> None:
        assert hub.service is not None
        calls: list[float] = []
        busy = {"now": True}

        async def catch_up() -> int:
            calls.append(time.monotonic())
            return 0

        stop = asyncio.Event()
        ticker = asyncio.create_task(
            hub.service.checkpoints.keep_fresh(
                stop, catch_up=catch_up, busy=lambda: busy["now"], every=0.005
            )
        )
        try:
            await asyncio.sleep(0.2)  # some 40 ticks
            assert calls == []
            busy["now"] = False
            await eventually(lambda: len(calls) >= 2, "catch-ups once nothing is in flight")
        finally:
            stop.set()
            await asyncio.wait_for(ticker, 5.0)
