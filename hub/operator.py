"""The operator's actions: create a hub's identity, and admit authority cards."""

from __future__ import annotations

from datetime import datetime

from hub import ids
from hub.crypto import cards
from hub.crypto.keys import OperatorKey
from hub.errors import CardInvalid, UnavailableError, ValidationError
from hub.gateway.intake_client import IntakeClient
from hub.keyfiles import write_private
from hub.settings import HubPaths, HubSettings, save_settings
from hub.transport_security import create_transport_security
from schemas.codec import decode, encode
from schemas.directory import AdmissionRequest, AuthorityCard, CardFile
from schemas.transport import Verdict

__all__ = ["admission_request", "init_hub", "submit_admission"]


def init_hub(paths: HubPaths, settings: HubSettings, *, now: datetime) -> OperatorKey:
    """Create the operator key, the NATS transport security (TLS CA and certificate, the hub's
    nkey, a configuration admitting nobody yet) and the settings file in a new data folder."""
    if paths.settings.exists():
        raise ValidationError(f"--data: {paths.root} already holds a hub", field="data")
    key = OperatorKey.generate()
    write_private(paths.operator_key, key.to_bytes())
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


async def submit_admission(client: IntakeClient, request: AdmissionRequest, wait: float) -> Verdict:
    """Hand the admission to the hub's intake and wait for the hub's verdict."""
    await client.publish(request.request_id, encode(request))
    verdict = await client.wait_verdict(request.request_id, wait)
    if verdict is None:
        raise UnavailableError(
            "admission queued at the hub intake; no verdict yet (is `hub up` running?)"
        )
    return verdict
