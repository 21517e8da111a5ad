"""A whole case through real hub and agents: the lifecycle is enforced on both sides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub import ids
from hub.clock import SystemClock
from hub.crypto import envelope as sealing
from hub.errors import InvalidTransition
from hub.gateway.intake_client import IntakeClient
from hub.ledger.projections.cases import status_of
from node_agent.agent import Outgoing
from schemas.codec import decode, encode
from schemas.envelope import ActionMeta, Body, CaseMeta
from tests.harness import AuthorityHarness, HubHarness, eventually

pytestmark = pytest.mark.nats


def _out(to: str, type_: str, case: str, **kw: object) -> Outgoing:
    return Outgoing(to=to, type=type_, case_id=case, text=kw.pop("text", type_), **kw)  # type: ignore[arg-type]


async def _parties(hub: HubHarness) -> tuple[AuthorityHarness, AuthorityHarness]:
    a = await hub.authority("XA-MOJ")
    b = await hub.authority("XB-MOJ")
    await a.start()
    await b.start()
    return a, b


async def _step(sender: AuthorityHarness, receiver: AuthorityHarness, out: Outgoing) -> int:
    result = await sender.send(out)
    assert result.status == "accepted", result
    await eventually(lambda: receiver.store.inbox_get(result.message_id) is not None, out.type)
    assert result.ledger_index is not None
    return result.ledger_index


class TestWholeCase:
    """Consultation, request, supplement, transfers, refusal consultation, results, closure."""

    async def test_full_life(self, hub: HubHarness) -> None:
        a, b = await _parties(hub)
        consultation = ids.uuid7()
        await _step(a, b, _out("XB-MOJ", "consultation.open", consultation))
        await _step(b, a, _out("XA-MOJ", "consultation.message", consultation))
        await _step(a, b, _out("XB-MOJ", "consultation.close", consultation))
        case = ids.uuid7()
        deadline = SystemClock().now() + timedelta(days=30)
        await _step(
            a,
            b,
            _out(
                "XB-MOJ",
                "request.submit",
                case,
                meta=CaseMeta(
                    kind="mla", legal_basis="untoc-art18", urgency="urgent", deadline=deadline
                ),
                action=ActionMeta(after_consultation=consultation),
            ),
        )
        await _step(
            b,
            a,
            _out("XA-MOJ", "request.acknowledge", case, action=ActionMeta(reference="B/2026/17")),
        )
        await _step(b, a, _out("XA-MOJ", "request.supplement_requested", case))
        await _step(a, b, _out("XB-MOJ", "request.supplemented", case))
        await _step(
            b,
            a,
            _out(
                "XA-MOJ",
                "request.transfer",
                case,
                action=ActionMeta(competent_authority="Prosecutor of Z", reference="Z-1"),
            ),
        )
        await _step(
            b,
            a,
            _out(
                "XA-MOJ",
                "request.transfer",
                case,
                action=ActionMeta(
                    competent_authority="Court of Y",
                    competent_authority_id="XB-COURT-Y",
                    reference="Y-9",
                ),
            ),
        )
        await _step(b, a, _out("XA-MOJ", "request.refusal_consultation", case))
        await _step(b, a, _out("XA-MOJ", "request.execute", case, action=ActionMeta(partial=True)))
        await _step(b, a, _out("XA-MOJ", "request.execute", case))
        close_index = await _step(a, b, _out("XB-MOJ", "case.close", case))  # fmt: skip

        assert hub.service is not None
        record = hub.service.state.cases.by_id[case]
        status = status_of(record, SystemClock().now())
        assert (status.state, status.holder, status.holder_id, status.transfers) == (
            "closed",
            "Court of Y",
            "XB-COURT-Y",
            2,
        )
        assert [h.name for h in record.transfers] == ["Prosecutor of Z", "Court of Y"]
        assert record.outcome == "executed"
        assert record.after_consultation == consultation
        assert hub.service.state.cases.by_id[consultation].led_to == [case]
        actions = [t for t in record.trail if t.type != "receipt"]
        assert actions[-1].index == close_index
        assert [t.type for t in record.trail if t.type != "receipt"][:2] == [
            "request.submit",
            "request.acknowledge",
        ]
        # Both agents see the same state the hub does.
        from node_agent.cases import local_case

        for party in (a, b):
            local = local_case(party.store, case)
            assert local is not None and local.state == "closed"


class TestRefusalNeedsConsultation:
    """UNTOC art. 18(26): refusal without prior consultation is refused at node and hub."""

    async def test_refused_at_node_and_hub(self, hub: HubHarness) -> None:
        a, b = await _parties(hub)
        case = ids.uuid7()
        await _step(
            a, b, _out("XB-MOJ", "request.submit", case, meta=CaseMeta(legal_basis="untoc-art18"))
        )
        await _step(b, a, _out("XA-MOJ", "request.acknowledge", case))
        with pytest.raises(InvalidTransition) as at_node:
            await b.send(_out("XA-MOJ", "request.refuse", case))
        assert at_node.value.rule == "refuse_requires_refusal_consultation"
        assert "UNTOC art. 18(26)" in str(at_node.value)

        # Bypass the agent's check: the hub refuses with the same rule.
        a_record = sealing.Recipient(a.id, a.keys.key_id, a.keys.suite, a.keys.encryption_public)
        env = sealing.seal(
            sender=b.id, sender_keys=b.keys, recipients=[a_record], message_id=ids.uuid7(),
            case_id=case, type="request.refuse", body=Body(text="refused"), now=SystemClock().now(),
        )  # fmt: skip
        assert hub.nc is not None
        client = IntakeClient(hub.nc, b.id)
        message_id = decode(env.header, dict)["message_id"]
        async with client.watch_verdicts() as verdicts:
            await client.publish(message_id, encode(env))
            verdict = await verdicts.wait(message_id, 10.0)
        assert verdict is not None
        assert (verdict.status, verdict.reason, verdict.rule) == (
            "rejected",
            "invalid_transition",
            "refuse_requires_refusal_consultation",
        )
        # After a refusal consultation the same refusal goes through.
        await _step(b, a, _out("XA-MOJ", "request.refusal_consultation", case))
        await _step(b, a, _out("XA-MOJ", "request.refuse", case))
        assert hub.service is not None
        record = hub.service.state.cases.by_id[case]
        assert (record.state, record.refused_after_consultation) == ("refused", True)

    async def test_only_requested_side_executes(self, hub: HubHarness) -> None:
        a, b = await _parties(hub)
        case = ids.uuid7()
        await _step(
            a, b, _out("XB-MOJ", "request.submit", case, meta=CaseMeta(legal_basis="untoc-art18"))
        )
        with pytest.raises(InvalidTransition) as caught:
            await a.send(_out("XB-MOJ", "request.execute", case))
        assert caught.value.rule == "requested_side_only"

    async def test_urgent_request_needs_a_deadline(self, hub: HubHarness) -> None:
        a, _ = await _parties(hub)
        from hub.errors import ValidationError

        with pytest.raises(ValidationError, match=r"meta\.deadline"):
            await a.send(
                _out("XB-MOJ", "request.submit", ids.uuid7(), meta=CaseMeta(urgency="urgent"))
            )


async def test_overdue_is_raised_when_deadline_passes(hub: HubHarness) -> None:
    a, b = await _parties(hub)
    case = ids.uuid7()
    deadline = datetime.now(UTC) + timedelta(hours=1)
    await _step(
        a,
        b,
        _out("XB-MOJ", "request.submit", case, meta=CaseMeta(urgency="urgent", deadline=deadline)),
    )
    assert hub.service is not None
    record = hub.service.state.cases.by_id[case]
    assert not status_of(record, deadline - timedelta(seconds=1)).overdue
    assert status_of(record, deadline + timedelta(seconds=1)).overdue
