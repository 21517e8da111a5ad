"""The demo's liaison magistrate (resolution 7/4 rec. 16): XA-MOJ's officer posted with XB-MOJ.

The officer makes keys of their own; XA-MOJ signs a consent that vouches for them; the operator
accredits the officer in the ledger and issues a read-API token. From then on XA-MOJ's agent
seals its messages to XB-MOJ to the officer as well, and the officer reads them through the
read API, checking every copy against the operator key, never trusting the hub's word.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from hub import ids, subjects
from hub.clock import SystemClock
from hub.console import table
from hub.crypto.access import sign_statement
from hub.crypto.consent import sign_consent
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.errors import UnavailableError
from hub.gateway.intake_client import IntakeClient
from hub.gateway.snapshot import publish_snapshot
from hub.gateway.token_store import TokenStore
from hub.operator import submit_admission
from hub.runtime import RunningHub
from node_agent.cli_officer import fetch_copies
from node_agent.officer import OfficerPaths, init_officer, load_officer, open_copies
from schemas.access import LiaisonAccreditation, LiaisonConsent

__all__ = ["DemoOfficer", "accredit_officer", "officer_reads"]

OFFICER = "XA-LO-7"


@dataclass(frozen=True, slots=True)
class DemoOfficer:
    paths: OfficerPaths
    accreditation_id: str
    token: str


async def accredit_officer(
    root: Path,
    hub: RunningHub,
    operator: OperatorKey,
    home: str,
    home_keys: AuthorityKeys,
    host: str,
) -> DemoOfficer:
    """Officer keys, the home authority's consent, the operator's accreditation and a token."""
    paths = OfficerPaths(root / "liaison-officer")
    officer_keys = init_officer(paths, OFFICER, operator.public)
    now = SystemClock().now()
    consent = sign_consent(
        LiaisonConsent(
            consent_id=ids.uuid7(),
            officer=OFFICER,
            name="Liaison magistrate of XA in XB",
            home=home,
            host=host,
            key_id=home_keys.key_id,
            issued_at=now,
            valid_until=now + timedelta(days=365),
            officer_keys=officer_keys,
        ),
        home_keys,
    )
    statement = LiaisonAccreditation(
        accreditation_id=ids.uuid7(),
        consent=consent.signed,
        issued_at=now,
        valid_until=now + timedelta(days=180),
    )
    client = IntakeClient(hub.nc, subjects.OPERATOR)
    verdict = await submit_admission(client, sign_statement(statement, operator), 10.0)
    if verdict.status != "accepted":
        raise UnavailableError(f"demo: accreditation {verdict.status}: {verdict.detail}")
    await publish_snapshot(hub.nc.jetstream(), hub.service.state, operator)
    tokens = await TokenStore.open(hub.nc.jetstream())
    issued = await tokens.issue(
        "liaison",
        now=now,
        valid_for=timedelta(days=30),
        label="demo liaison magistrate",
        officer=OFFICER,
        home=home,
        host=host,
        accreditation_id=statement.accreditation_id,
    )
    print(
        f"    liaison magistrate {OFFICER} of {home} posted with {host}: own keys "
        f"{officer_keys.key_id}, {home}'s signed consent, accredited at ledger index "
        f"{verdict.ledger_index}; read-API token issued"
    )
    return DemoOfficer(paths, statement.accreditation_id, issued.token)


async def officer_reads(officer: DemoOfficer, api_url: str, case_id: str, step: int) -> None:
    """Fetch the main case's copies from the read API, verify and open them, show them."""
    settings, keys = load_officer(officer.paths)
    copies = await fetch_copies(api_url, case_id, officer.token)
    read = open_copies(copies, keys, settings.operator_key)
    print(
        f"\n[{step}] Liaison magistrate {OFFICER} reads, with keys of their own, the {len(read)} "
        "messages of the main case\n     their home authority copied them on (each checked "
        "against the operator key;\n     the other side's messages are not theirs to read):"
    )
    rows = [
        (str(c.ledger_index), c.type, c.sender, "NOT VERIFIED" if c.error else c.text[:48])
        for c in read
    ]
    print(textwrap.indent(table(("index", "type", "from", "content"), rows), "    "))
