"""Real, signed access statements for tests: liaison accreditations, auditors, revocations.

Signed with the audit history's operator key and the authorities' keys of
``tests.hub.audit.history``, so they fold into a ``HubState`` built from that history.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.crypto import cards
from hub.crypto.access import sign_statement
from hub.crypto.consent import sign_consent
from hub.crypto.keys import AuthorityKeys, OperatorKey
from schemas.access import (
    AccessRevocation,
    AccessStatement,
    AuditorAccreditation,
    LiaisonAccreditation,
    LiaisonConsent,
    SignedConsent,
)
from schemas.directory import PublicKeys
from schemas.ledger import AccessRecorded, AuthorityRevoked
from tests.hub.audit.history import KEYS, NOW, OPERATOR, mid

__all__ = ["auditor", "authority_revoked", "consent", "liaison", "recorded", "revocation"]


def consent(
    officer: str,
    home: str,
    host: str,
    *,
    keys: AuthorityKeys | None = None,
    issued_at: datetime = NOW,
    valid_until: datetime = NOW + timedelta(days=30),
    officer_keys: PublicKeys | None = None,
    n: int = 900,
) -> SignedConsent:
    """The home authority's signed consent for ``officer`` posted with ``host``."""
    keys = keys or KEYS[home]
    return sign_consent(
        LiaisonConsent(
            consent_id=mid(n),
            officer=officer,
            name=f"Officer {officer}",
            home=home,
            host=host,
            key_id=keys.key_id,
            issued_at=issued_at,
            valid_until=valid_until,
            officer_keys=officer_keys,
        ),
        keys,
    ).signed


def recorded(statement: AccessStatement, operator: OperatorKey = OPERATOR) -> AccessRecorded:
    """The ledger event the hub records for ``statement`` signed by ``operator``."""
    request = sign_statement(statement, operator)
    return AccessRecorded(
        statement=request.statement,
        operator_key=operator.public,
        operator_signature=request.operator_signature,
    )


def liaison(
    accreditation_id: str,
    officer: str,
    home: str,
    host: str,
    *,
    at: datetime = NOW,
    until: datetime = NOW + timedelta(days=10),
    signed_consent: SignedConsent | None = None,
) -> LiaisonAccreditation:
    return LiaisonAccreditation(
        accreditation_id=accreditation_id,
        consent=signed_consent or consent(officer, home, host),
        issued_at=at,
        valid_until=until,
    )


def auditor(
    accreditation_id: str,
    auditor_id: str = "AUD-1",
    *,
    at: datetime = NOW,
    until: datetime = NOW + timedelta(days=10),
) -> AuditorAccreditation:
    return AuditorAccreditation(
        accreditation_id=accreditation_id,
        auditor=auditor_id,
        name=f"Auditor {auditor_id}",
        organisation="Court of Audit",
        issued_at=at,
        valid_until=until,
    )


def revocation(
    accreditation_id: str, reason: str = "posting ended", *, at: datetime = NOW
) -> AccessRevocation:
    return AccessRevocation(accreditation_id=accreditation_id, reason=reason, issued_at=at)


def authority_revoked(authority: str, reason: str = "designation withdrawn") -> AuthorityRevoked:
    """The operator's revocation of an authority (not of an accreditation)."""
    return AuthorityRevoked(
        authority=authority,
        reason=reason,
        operator_key=OPERATOR.public,
        operator_signature=cards.revoke(authority, reason, OPERATOR),
    )
