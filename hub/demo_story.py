"""The cases ``hub demo`` plays between two central authorities, told as it goes.

One realistic MLA case from consultation to closure (supplement, two transfers, a refusal
consultation, partial and final execution), then a few shorter cases so that the bilateral
review and the statistics have something to count: a refusal after consultation, a withdrawal,
an urgent extradition request whose signed deadline passes, and a request still pending.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from hub import ids
from hub.clock import SystemClock
from hub.errors import UnavailableError
from node_agent.agent import Agent, Attachment, Outgoing
from node_agent.directory import AgentDirectory
from node_agent.store import AgentStore
from node_agent.transport import HubLink
from schemas.codec import decode
from schemas.envelope import ActionMeta, Body, CaseMeta, Handling

__all__ = ["Online", "play"]

REQUEST_TEXT = """\
Request for mutual legal assistance under article 18 of the United Nations Convention against
Transnational Organized Crime. The Central Authority of XA requests the Central Authority of XB
to take the evidence of two witnesses in proceedings for laundering of the proceeds of crime,
and to provide certified copies of the bank records listed in the attached evidence list.
"""
EVIDENCE_LIST = b"%PDF-1.4\n% evidence list (demo)\n1. Account statements 2024-2025\n2. KYC file\n"


@dataclass
class Online:
    """One authority with its agent running."""

    id: str
    agent: Agent
    store: AgentStore
    link: HubLink
    directory: AgentDirectory


def say(text: str) -> None:
    print(textwrap.indent(text.rstrip(), "    "))


async def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise UnavailableError(f"demo: timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def send(sender: Online, receiver: Online, outgoing: Outgoing, *, quiet: bool = False) -> str:
    """Send, wait until the receiver's agent holds it decrypted, and say what happened."""
    message_id = await sender.agent.queue(outgoing, sender.directory)
    result = await sender.agent.submit(sender.link, message_id, 10.0)
    if result.status != "accepted":
        raise UnavailableError(f"demo: {outgoing.type} was {result.status}: {result.detail}")
    await until(lambda: receiver.store.inbox_get(message_id) is not None, outgoing.type)
    if not quiet:
        say(f"#{result.ledger_index:<3} {sender.id} -> {receiver.id}  {outgoing.type}")
    return message_id


def _out(to: Online, type_: str, case: str, text: str = "", **kw: object) -> Outgoing:
    return Outgoing(to=to.id, type=type_, case_id=case, text=text or type_, **kw)  # type: ignore[arg-type]


async def play(xa: Online, xb: Online) -> str:
    """Play every case; returns the id of the main case."""
    print("\n[5] An informal consultation before the request (resolution 7/4 rec. 8):")
    consultation = ids.uuid7()
    await send(
        xa, xb, _out(xb, "consultation.open", consultation, "Would XB assist with bank records?")
    )
    await send(xb, xa, _out(xa, "consultation.message", consultation, "Yes; please cite art. 18."))
    await send(xa, xb, _out(xb, "consultation.close", consultation))

    print("\n[6] XA-MOJ seals the formal MLA request (text + attachment) and sends it:")
    case = ids.uuid7()
    meta = CaseMeta(
        kind="mla",
        nature=["taking-evidence", "bank-records"],
        legal_basis="untoc-art18",
        handling=Handling(use_limitation=True, confidential=True, code="H2"),
        language="en",
    )
    submitted = await send(
        xa,
        xb,
        _out(
            xb,
            "request.submit",
            case,
            REQUEST_TEXT,
            meta=meta,
            attachments=[Attachment("evidence-list.pdf", EVIDENCE_LIST, "application/pdf")],
            action=ActionMeta(after_consultation=consultation),
        ),
    )
    row = xb.store.inbox_get(submitted)
    assert row is not None
    body = decode(row.body, Body, what="body")
    say(f"XB-MOJ's agent checked XA-MOJ's signature and decrypted it (ledger #{row.ledger_index}):")
    say(textwrap.indent(body.text, "  | "))
    for meta_ in body.attachments:
        say(f"  | attachment {meta_.name}, {meta_.size} bytes, sha256 {meta_.sha256.hex()[:16]}...")
    await until(lambda: bool(xa.store.receipts_for(submitted)), "XB-MOJ's receipt")
    receipt = xa.store.receipts_for(submitted)[0]
    say(f"XB-MOJ's signed receipt is recorded at #{receipt.ledger_index} and verified by XA-MOJ")

    print("\n[7] The case goes on, every step sealed, signed, recorded and checked:")
    steps = [
        (
            xb,
            xa,
            "request.acknowledge",
            "Received; our reference XB/2026/117.",
            ActionMeta(reference="XB/2026/117"),
        ),
        (
            xb,
            xa,
            "request.supplement_requested",
            "Please send a translation of the legal provisions.",
            None,
        ),
        (xa, xb, "request.supplemented", "Translation attached.", None),
        (
            xb,
            xa,
            "request.transfer",
            "Transferred for execution.",
            ActionMeta(
                competent_authority="Public Prosecutor's Office of Y", reference="PPO-Y 55/26"
            ),
        ),
        (
            xb,
            xa,
            "request.transfer",
            "Witness hearing moved to the court.",
            ActionMeta(competent_authority="District Court of Y", reference="DC-Y 9/26"),
        ),
        (
            xb,
            xa,
            "request.refusal_consultation",
            "Item 2 may conflict with bank secrecy; can XA narrow it?",
            None,
        ),
        (xa, xb, "request.supplemented", "Item 2 narrowed to the three named accounts.", None),
        (xb, xa, "request.execute", "Witness statements attached.", ActionMeta(partial=True)),
        (
            xb,
            xa,
            "request.execute",
            "Certified bank records attached. Execution complete.",
            ActionMeta(),
        ),
        (xa, xb, "case.close", "Thank you; closing the case.", None),
    ]
    for sender, receiver, type_, text, action in steps:
        await send(sender, receiver, _out(receiver, type_, case, text, action=action))

    print("\n[8] A few more cases, so that the review and the statistics count something:")
    other = ids.uuid7()
    await send(
        xa,
        xb,
        _out(
            xb,
            "request.submit",
            other,
            meta=CaseMeta(kind="confiscation", legal_basis="untoc-art13", nature=["confiscation"]),
        ),
        quiet=True,
    )
    await send(xb, xa, _out(xa, "request.acknowledge", other), quiet=True)
    await send(xb, xa, _out(xa, "request.refusal_consultation", other), quiet=True)
    await send(xb, xa, _out(xa, "request.refuse", other, "Dual criminality not met."), quiet=True)
    say(f"{other[:13]}...  confiscation XA->XB: refused after a refusal consultation")
    withdrawn = ids.uuid7()
    await send(
        xa,
        xb,
        _out(
            xb,
            "request.submit",
            withdrawn,
            meta=CaseMeta(
                legal_basis="treaty:XA-XB MLA Treaty 1998", nature=["service-of-documents"]
            ),
        ),
        quiet=True,
    )
    await send(xa, xb, _out(xb, "request.withdraw", withdrawn), quiet=True)
    say(f"{withdrawn[:13]}...  MLA XA->XB under a bilateral treaty: withdrawn")
    deadline = SystemClock().now() + timedelta(seconds=1)
    urgent = ids.uuid7()
    await send(
        xb,
        xa,
        _out(
            xa,
            "request.submit",
            urgent,
            meta=CaseMeta(
                kind="extradition",
                legal_basis="untoc-art16",
                urgency="urgent",
                provisional_arrest=True,
                deadline=deadline,
            ),
        ),
        quiet=True,
    )
    await send(xa, xb, _out(xb, "request.acknowledge", urgent), quiet=True)
    say(f"{urgent[:13]}...  urgent extradition XB->XA, provisional-arrest deadline in 1 s")
    pending = ids.uuid7()
    await send(
        xb,
        xa,
        _out(
            xa,
            "request.submit",
            pending,
            meta=CaseMeta(legal_basis="reciprocity", nature=["search-and-seizure"]),
        ),
        quiet=True,
    )
    say(f"{pending[:13]}...  MLA XB->XA on reciprocity: submitted, not yet acknowledged")
    await asyncio.sleep(max(0.0, (deadline - SystemClock().now()).total_seconds()) + 0.1)
    return case
