"""The hub's transparency log on a real nats-server: proofs on verdicts and deliveries,
checkpoints on request, consistency proofs, witnesses' cosignatures."""

from __future__ import annotations

import time

import pytest

from hub import subjects
from hub.crypto.checkpoint import cosign_with, tally_cosignatures
from hub.crypto.keys import AuthorityKeys
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
        assert second.size == first.size + 2
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
        assert bad.status == "error"
        assert "to_size" in bad.detail
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
