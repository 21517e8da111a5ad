"""The operator's actions: create a hub's identity, admit authority cards, revoke authorities,
accredit liaison officers and auditors (each a signed command the hub records in the ledger)."""

from __future__ import annotations

import os
from datetime import datetime

from hub import ids, subjects
from hub.crypto import cards
from hub.crypto.keys import OperatorKey
from hub.errors import CardInvalid, UnavailableError, ValidationError
from hub.gateway.connection import connect
from hub.gateway.intake_client import IntakeClient
from hub.keyfiles import write_private
from hub.ledger.transparency import new_log_key
from hub.settings import HubPaths, HubSettings, nats_url_for, save_settings
from hub.transport_security import create_transport_security, hub_credentials
from schemas.access import AccessRequest
from schemas.codec import decode, encode
from schemas.directory import AdmissionRequest, AuthorityCard, CardFile, RevocationRequest
from schemas.transport import Verdict

__all__ = [
    "OperatorCommand",
    "submit_as_operator",
    "admission_request",
    "init_hub",
    "revocation_request",
    "submit_admission",
]


def init_hub(paths: HubPaths, settings: HubSettings, *, now: datetime) -> OperatorKey:
    """Create the operator key, the NATS transport security (TLS CA and certificate, the hub's
    nkey, a configuration admitting nobody yet) and the settings file in a new data folder."""
    if paths.settings.exists():
        raise ValidationError(f"--data: {paths.root} already holds a hub", field="data")
    key = OperatorKey.generate()
    write_private(paths.operator_key, key.to_bytes())
    write_private(paths.log_key, new_log_key(settings.origin, os.urandom(32)).encode())
    create_transport_security(paths, settings.nats_hosts, now=now)
    save_settings(paths, settings)
    return key


def admission_request(
    card_file: CardFile, operator: OperatorKey, *, now: datetime
) -> AdmissionRequest:
    """Check a card file and sign the operator's admission of it."""
    if decode(card_file.signed.card, AuthorityCard, what="card") != card_file.readable:
        raise CardInvalid("readable: does not match the signed card bytes; refusing to admit")
    return AdmissionRequest(
        request_id=ids.uuid7(),
        signed=card_file.signed,
        operator_signature=cards.admit(card_file.signed, operator, now=now),
    )


def revocation_request(authority: str, reason: str, operator: OperatorKey) -> RevocationRequest:
    """Sign the operator's revocation of ``authority`` (checked by the hub against the ledger)."""
    request = RevocationRequest(
        request_id=ids.uuid7(),
        authority=authority,
        reason=reason,
        operator_signature=cards.revoke(authority, reason, operator),
    )
    decode(encode(request), RevocationRequest, what="revocation")  # constraints: on decode only
    return request


OperatorCommand = AdmissionRequest | RevocationRequest | AccessRequest


async def submit_admission(client: IntakeClient, request: OperatorCommand, wait: float) -> Verdict:
    """Hand an operator command (admission, revocation, access statement) to the hub's intake
    and wait for the hub's verdict."""
    what = {
        AdmissionRequest: "admission",
        RevocationRequest: "revocation",
        AccessRequest: "access statement",
    }[type(request)]
    async with client.watch_verdicts() as verdicts:  # open before it is sent: none is missed
        await client.publish(request.request_id, encode(request))
        verdict = await verdicts.wait(request.request_id, wait)
    if verdict is None:
        raise UnavailableError(
            f"{what} queued at the hub intake; no verdict yet (is `hub up` running?)"
        )
    return verdict


async def submit_as_operator(
    paths: HubPaths,
    settings: HubSettings,
    request: OperatorCommand,
    *,
    nats_url: str | None,
    wait: float,
) -> Verdict:
    """Connect as the hub's own user, submit an operator command, return the hub's verdict."""
    nc = await connect(
        nats_url_for(paths, settings, nats_url),
        name="mla-hub-operator",
        credentials=hub_credentials(paths),
    )
    client = IntakeClient(nc, subjects.OPERATOR)
    try:
        return await submit_admission(client, request, wait)
    finally:
        await client.close()
