"""``node-agent liaison consent``: the home authority's signed consent to a liaison officer.

Resolution 7/4 rec. 16. The authority signs, with its current key, that ``--officer`` (its
liaison magistrate or officer posted with ``--host``) may watch the status, trail and review of
the cases between the two authorities on the hub. The operator then runs ``hub liaison
accredit --consent FILE``, which checks this signature against the directory. With
``--officer-keys`` the consent also vouches for the officer's own public keys: from the
accreditation on, this authority's agent seals its messages to the host to the officer too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from hub import ids
from hub.clock import SystemClock
from hub.crypto.consent import sign_consent
from hub.crypto.keys import AuthorityKeys
from hub.errors import ValidationError
from hub.keyfiles import read_private
from node_agent.config import AgentPaths, load_settings
from node_agent.session import authority_id
from schemas.access import LiaisonConsent
from schemas.codec import decode_json, encode_json
from schemas.directory import PublicKeys

__all__ = ["cmd_consent", "register"]

AddCommand = Callable[..., argparse.ArgumentParser]


async def cmd_consent(args: argparse.Namespace) -> int:
    """Print the signed consent file (JSON) on stdout."""
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    keys = AuthorityKeys.from_bytes(read_private(paths.keys))
    officer_keys = _officer_keys(args.officer_keys) if args.officer_keys else None
    now = SystemClock().now()
    made = sign_consent(
        LiaisonConsent(
            consent_id=ids.uuid7(),
            officer=args.officer,
            name=args.name,
            home=settings.id,
            host=args.host,
            key_id=keys.key_id,
            issued_at=now,
            valid_until=now + timedelta(days=args.valid_days),
            officer_keys=officer_keys,
        ),
        keys,
    )
    sys.stdout.write(encode_json(made).decode() + "\n")
    return 0


def _officer_keys(path: str) -> PublicKeys:
    """The officer's public keys (``node-agent officer init`` output)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ValidationError(f"--officer-keys: cannot read {path}: {e.strerror}") from e
    return decode_json(data, PublicKeys, what=path)


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """Add ``liaison consent`` to the node-agent parser."""
    liaison = sub.add_parser("liaison", help="liaison officers (rec. 16)").add_subparsers(
        dest="action", required=True
    )
    p = command("consent", "sign this authority's consent to a liaison officer (JSON)", liaison)
    p.add_argument("--officer", required=True, help="your identifier for the officer")
    p.add_argument("--host", type=authority_id, required=True, help="where the officer is posted")
    p.add_argument("--name", default="", help="the officer's name, as the operator will see it")
    p.add_argument("--valid-days", type=int, default=365)
    p.add_argument(
        "--officer-keys",
        help="the officer's public keys (node-agent officer init): lets this authority seal its "
        "messages to the officer too",
    )
    p.set_defaults(run=cmd_consent)
