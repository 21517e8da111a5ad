"""Selective disclosure of one message (DESIGN.md section 4; issue 4).

A party to a message hands a third party (an auditor, a court) the sealed envelope and its
content key. With the ledger alone, the third party checks that this is what the named sender
signed at that ledger index, and reads it; no other message's key is revealed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from schemas.codec import Strict
from schemas.common import AuthorityId, MessageId
from schemas.envelope import Envelope

__all__ = ["Disclosure"]


class Disclosure(Strict, frozen=True, kw_only=True, tag="mla.disclosure.v1"):
    message_id: MessageId
    ledger_index: Annotated[int, msgspec.Meta(ge=0)]
    envelope: Envelope
    content_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    disclosed_by: AuthorityId
    disclosed_at: datetime
