"""The hub's intake on a real nats-server: each bad submission is refused with its own typed
reason and recorded as rejected, the hub keeps serving, and a duplicate is never appended twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub import ids, subjects
from hub.clock import SystemClock
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys
from hub.gateway.admission import Limits
from hub.gateway.connection import close as close_connection
from hub.gateway.connection import connect
from hub.gateway.intake_client import IntakeClient
from hub.operator import admission_request, submit_admission
from node_agent.identity import card_file
from schemas.codec import decode, encode
from schemas.envelope import Body, Envelope
from schemas.ledger import SubmissionRejected
from schemas.transport import Verdict
from tests.harness import AuthorityHarness, HubHarness

pytestmark = pytest.mark.nats

MAX_BYTES = 64 * 1024


@pytest.fixture
async def small_hub(tmp_path: Path) -> AsyncIterator[HubHarness]:
    harness = HubHarness(tmp_path, Limits(max_submission_bytes=MAX_BYTES))
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


def _seal(a: AuthorityHarness, recipient: sealing.Recipient, text: str = "x") -> Envelope:
    return sealing.seal(
        sender=a.id,
        sender_keys=a.keys,
        recipients=[recipient],
        message_id=ids.uuid7(),
        case_id=ids.uuid7(),
        type="request.submit",
        body=Body(text=text),
        now=SystemClock().now(),
    )


async def _sender_and_recipient(hub: HubHarness) -> tuple[AuthorityHarness, sealing.Recipient]:
    a = await hub.authority("XA-MOJ")
    b = await hub.authority("XB-MOJ")
    return a, sealing.Recipient(b.id, b.keys.key_id, b.keys.suite, b.keys.encryption_public)


async def _submit(hub: HubHarness, sender: str, payload: bytes, message_id: str) -> Verdict:
    assert hub.nc is not None
    client = IntakeClient(hub.nc, sender)
    async with client.watch_verdicts() as verdicts:
        await client.publish(message_id, payload)
        verdict = await verdicts.wait(message_id, 10.0)
    assert verdict is not None, "no verdict"
    return verdict


async def _submit_raw(hub: HubHarness, sender: str, payload: bytes) -> Verdict:
    """Bytes with no claimable id: the verdict is addressed by the submission digest."""
    assert hub.nc is not None
    client = IntakeClient(hub.nc, sender)
    from hub.crypto.digest import sha256

    async with client.watch_verdicts() as verdicts:
        await client.publish(ids.uuid7(), payload)
        verdict = await verdicts.wait(f"digest-{sha256(payload).hex()}", 10.0)
    assert verdict is not None, "no verdict"
    return verdict


class TestRejections:
    """Each bad submission gets its own reason; a valid one right after still goes through."""

    async def _valid_goes_through(
        self, hub: HubHarness, a: AuthorityHarness, b_rcpt: sealing.Recipient
    ) -> None:
        env = _seal(a, b_rcpt, "valid after a bad one")
        verdict = await _submit(hub, a.id, encode(env), decode(env.header, dict)["message_id"])
        assert verdict.status == "accepted"

    @pytest.mark.parametrize(
        "tamper",
        ["header", "body", "wrapped_key", "signature", "attachment_count"],
    )
    async def test_tampered_envelope(self, small_hub: HubHarness, tamper: str) -> None:
        a, b = await _sender_and_recipient(small_hub)
        env = _seal(a, b)
        message_id = decode(env.header, dict)["message_id"]
        if tamper == "header":
            bad = _replace(env, header=env.header.replace(b"XB-MOJ", b"XB-MOI"))
        elif tamper == "body":
            bad = _replace(env, body=bytes([env.body[0] ^ 1]) + env.body[1:])
        elif tamper == "wrapped_key":
            wk = env.wrapped_keys[0]
            enc = bytes([wk.enc[0] ^ 1]) + wk.enc[1:]
            bad = _replace(
                env,
                wrapped_keys=[
                    type(wk)(recipient=wk.recipient, key_id=wk.key_id, suite=wk.suite, enc=enc)
                ],
            )
        elif tamper == "signature":
            bad = _replace(env, signature=bytes(64))
        else:
            bad = _replace(env, attachments=[b"extra"])
        verdict = await _submit(small_hub, a.id, encode(bad), message_id)
        expected = {
            "header": "recipient_mismatch",  # the header now names someone without a wrapped key
            "body": "bad_signature",
            "wrapped_key": "bad_signature",
            "signature": "bad_signature",
            "attachment_count": "attachment_mismatch",
        }[tamper]
        assert (verdict.status, verdict.reason) == ("rejected", expected)
        await self._valid_goes_through(small_hub, a, b)

    async def test_unknown_sender(self, small_hub: HubHarness) -> None:
        _, b = await _sender_and_recipient(small_hub)
        stranger = await small_hub.authority("XC-MOJ", admit=False)
        env = _seal(stranger, b)
        verdict = await _submit(
            small_hub, "XC-MOJ", encode(env), decode(env.header, dict)["message_id"]
        )
        assert (verdict.status, verdict.reason) == ("rejected", "unknown_sender")
        assert "XC-MOJ is not admitted" in (verdict.detail or "")

    async def test_sender_mismatch(self, small_hub: HubHarness) -> None:
        a, b = await _sender_and_recipient(small_hub)
        env = _seal(a, b)
        verdict = await _submit(
            small_hub, "XB-MOJ", encode(env), decode(env.header, dict)["message_id"]
        )
        assert (verdict.status, verdict.reason) == ("rejected", "sender_mismatch")

    async def test_unknown_recipient(self, small_hub: HubHarness) -> None:
        a, b = await _sender_and_recipient(small_hub)
        ghost_keys = AuthorityKeys.generate("x25519")
        ghost = sealing.Recipient(
            "XZ-NOBODY", ghost_keys.key_id, "x25519", ghost_keys.encryption_public
        )
        env = _seal(a, ghost)
        verdict = await _submit(
            small_hub, a.id, encode(env), decode(env.header, dict)["message_id"]
        )
        assert (verdict.status, verdict.reason) == ("rejected", "unknown_recipient")
        await self._valid_goes_through(small_hub, a, b)

    async def test_oversized(self, small_hub: HubHarness) -> None:
        a, b = await _sender_and_recipient(small_hub)
        env = _seal(a, b, "x" * (MAX_BYTES + 1))
        verdict = await _submit(
            small_hub, a.id, encode(env), decode(env.header, dict)["message_id"]
        )
        assert (verdict.status, verdict.reason) == ("rejected", "too_large")
        assert f"exceeds the limit of {MAX_BYTES} bytes" in (verdict.detail or "")
        await self._valid_goes_through(small_hub, a, b)

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            (b"\xc1garbage", "malformed"),
            (b"", "malformed"),
            (encode({"schema": "mla.envelope.v9", "x": 1}), "schema"),
            (encode({"schema": "mla.envelope.v1", "header": "nope"}), "schema"),
        ],
    )
    async def test_malformed_bytes(
        self, small_hub: HubHarness, payload: bytes, reason: str
    ) -> None:
        a, b = await _sender_and_recipient(small_hub)
        verdict = await _submit_raw(small_hub, a.id, payload)
        assert (verdict.status, verdict.reason) == ("rejected", reason)
        await self._valid_goes_through(small_hub, a, b)

    async def test_rejections_are_recorded_once(self, small_hub: HubHarness) -> None:
        a, _ = await _sender_and_recipient(small_hub)
        first = await _submit_raw(small_hub, a.id, b"\xc1garbage")
        again = await _submit_raw(small_hub, a.id, b"\xc1garbage")
        assert first.ledger_index == again.ledger_index
        rejected = [e for e in await small_hub.entries() if isinstance(e.event, SubmissionRejected)]
        assert len(rejected) == 1
        assert rejected[0].event.reason == "malformed"  # type: ignore[union-attr]
        assert rejected[0].event.claimed_sender == "XA-MOJ"  # type: ignore[union-attr]


class TestDuplicates:
    """A resubmitted message id is answered with its original index and never appended again."""

    async def test_duplicate_submission(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        await b.start()
        env = _seal(
            a, sealing.Recipient(b.id, b.keys.key_id, b.keys.suite, b.keys.encryption_public)
        )
        message_id = decode(env.header, dict)["message_id"]
        first = await _submit(hub, a.id, encode(env), message_id)
        assert first.status == "accepted"
        # Another publish id bypasses JetStream's dedup window: the hub's own index must catch it.
        assert hub.nc is not None
        client = IntakeClient(hub.nc, a.id)
        await client.publish(ids.uuid7(), encode(env))
        sub = await hub.nc.jetstream().subscribe(
            subjects.verdict(a.id, message_id), ordered_consumer=True
        )
        seen = [decode((await sub.next_msg(timeout=10)).data, Verdict) for _ in range(2)]
        await sub.unsubscribe()
        assert [v.status for v in seen] == ["accepted", "duplicate"]
        assert seen[1].ledger_index == first.ledger_index
        entries = await hub.entries()
        assert sum(1 for e in entries if type(e.event).__name__ == "EnvelopeRecorded") == 1
        assert len(b.store.inbox_all()) <= 1

    async def test_same_id_other_bytes_is_refused(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        rcpt = sealing.Recipient(b.id, b.keys.key_id, b.keys.suite, b.keys.encryption_public)
        env = _seal(a, rcpt)
        message_id = decode(env.header, dict)["message_id"]
        assert (await _submit(hub, a.id, encode(env), message_id)).status == "accepted"
        other = sealing.seal(
            sender=a.id,
            sender_keys=a.keys,
            recipients=[rcpt],
            message_id=message_id,
            case_id=ids.uuid7(),
            type="request.submit",
            body=Body(text="different"),
            now=SystemClock().now(),
        )
        assert hub.nc is not None
        client = IntakeClient(hub.nc, a.id)
        await client.publish(ids.uuid7(), encode(other))
        sub = await hub.nc.jetstream().subscribe(
            subjects.verdict(a.id, message_id), ordered_consumer=True
        )
        seen = [decode((await sub.next_msg(timeout=10)).data, Verdict) for _ in range(2)]
        await sub.unsubscribe()
        assert seen[1].status == "rejected"
        assert "already recorded for a different envelope" in (seen[1].detail or "")


def _replace(env: Envelope, **changes: object) -> Envelope:
    import msgspec

    return msgspec.structs.replace(env, **changes)


class TestVerdictWatch:
    """A sender finds its verdict whether the hub sent it alone or among a batch's."""

    async def test_verdicts_of_one_batch_travel_together_and_each_is_found(
        self, hub: HubHarness
    ) -> None:
        a, to_b = await _sender_and_recipient(hub)
        envelopes = [_seal(a, to_b, f"request {i}") for i in range(3)]
        message_ids = [decode(env.header, dict)["message_id"] for env in envelopes]
        await hub.stop_service()  # so that the hub fetches the three in one batch
        nc = await connect(hub.url, name="test-sender")
        try:
            client = IntakeClient(nc, a.id)
            async with client.watch_verdicts() as verdicts:
                for message_id, env in zip(message_ids, envelopes, strict=True):
                    await client.publish(message_id, encode(env))
                await hub.start_service()
                found = [await verdicts.wait(m, 10.0) for m in reversed(message_ids)]
            assert [(v.message_id, v.status) for v in found if v is not None] == [
                (m, "accepted") for m in reversed(message_ids)
            ]
            info = await nc.jetstream().stream_info(
                subjects.VERDICT_STREAM, subjects_filter=subjects.verdict(a.id, ">")
            )
            [(subject, count)] = (info.state.subjects or {}).items()
            assert subject.startswith(f"mla.verdict.{a.id}.batch-") and count == 1  # all three
            # later, a watch opened after the fact finds only what sits on its own subject
            async with client.watch_verdicts() as late:
                assert await late.wait(message_ids[0], 0.3) is None
        finally:
            await close_connection(nc)

    async def test_a_lone_verdict_stored_before_the_watch_is_found(self, hub: HubHarness) -> None:
        a, to_b = await _sender_and_recipient(hub)
        env = _seal(a, to_b)
        message_id = decode(env.header, dict)["message_id"]
        first = await _submit(hub, a.id, encode(env), message_id)
        assert hub.nc is not None
        async with IntakeClient(hub.nc, a.id).watch_verdicts() as verdicts:
            again = await verdicts.wait(message_id, 1.0)
        assert again == first

    async def test_operator_commands_of_one_batch_each_find_their_verdict(
        self, hub: HubHarness
    ) -> None:
        """``hub admit`` run twice at once: both admissions land in one hub batch, their
        verdicts travel together, and each command still gets its own."""
        a = await hub.authority("XA-MOJ", admit=False)
        b = await hub.authority("XB-MOJ", admit=False)
        now = SystemClock().now()
        requests = [
            admission_request(card_file(x.settings, x.keys, now=now), hub.operator, now=now)
            for x in (a, b)
        ]
        await hub.stop_service()
        nc = await connect(hub.url, name="test-operator")
        try:
            intake = IntakeClient(nc, subjects.OPERATOR)
            waiting = [asyncio.create_task(submit_admission(intake, r, 10.0)) for r in requests]
            js = nc.jetstream()
            for _ in range(250):  # both at the intake before the hub fetches them (5 s at most)
                if (await js.stream_info(subjects.SUBMIT_STREAM)).state.messages == 2:
                    break
                await asyncio.sleep(0.02)
            await hub.start_service()
            verdicts = await asyncio.gather(*waiting)
        finally:
            await close_connection(nc)
        assert [(v.message_id, v.status) for v in verdicts] == [
            (r.request_id, "accepted") for r in requests
        ]
        assert verdicts[0].ledger_index != verdicts[1].ledger_index
        assert hub.nc is not None
        info = await hub.nc.jetstream().stream_info(
            subjects.VERDICT_STREAM, subjects_filter=subjects.verdict(subjects.OPERATOR, ">")
        )
        [(subject, count)] = (info.state.subjects or {}).items()  # one message for both
        assert subject.startswith(f"mla.verdict.{subjects.OPERATOR}.batch-") and count == 1
