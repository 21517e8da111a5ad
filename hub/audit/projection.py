"""Rebuilt vs served: the directory the replay folds against what a live hub serves.

The hub materializes its directory projection in the DIRECTORY key-value bucket
(``hub/gateway/service.py``: ``card_key(id)`` and ``key_history_key(id, key_id)`` both hold the
encoded ``AdmittedCard``; a revocation deletes ``card_key(id)`` and writes ``revoked_key(id)``,
the encoded ``RevokedAuthority``). The replay folds the same entries with the same projection
code (:meth:`hub.audit.replay.Replayer.directory_projection`); this module compares the two,
byte for byte. The hub's published ``log_key`` (pinned by auditors themselves) and the
operator-signed ``snapshot`` are not compared: node agents check it against
the operator key they pin. Pure (STYLE rule 1): the shell reads the bucket.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from hub import subjects
from hub.audit.outcome import Divergence
from hub.errors import HubError
from schemas.codec import decode
from schemas.directory import AdmittedCard, RevokedAuthority

__all__ = ["compare_directory"]


def _ledger_index(value: bytes) -> int | None:
    try:
        served: AdmittedCard | RevokedAuthority = decode(
            value, AdmittedCard | RevokedAuthority, what="served directory entry"
        )
    except HubError:
        return None
    return served.ledger_index


def _describe(value: bytes | None) -> str:
    if value is None:
        return "absent"
    index = _ledger_index(value)
    where = f"recorded at {index}" if index is not None else "not a directory entry"
    return f"sha256 {hashlib.sha256(value).hexdigest()} ({where})"


def compare_directory(
    rebuilt: Mapping[str, bytes], served: Mapping[str, bytes], *, size: int
) -> Divergence | None:
    """The first key (in sorted order) where ``served`` differs from ``rebuilt``, or ``None``.

    ``size`` is the number of entries replayed: served cards admitted at or after it (the hub
    went on while the audit ran) are not compared. Fetch ``served`` after the replay.
    """
    for key in sorted((set(rebuilt) | set(served)) - {subjects.SNAPSHOT_KEY, subjects.LOG_KEY}):
        want, have = rebuilt.get(key), served.get(key)
        if want == have:
            continue
        newer = _ledger_index(have) if have is not None else None
        if newer is not None and newer >= size:
            continue
        return Divergence(
            index=_ledger_index(want) if want is not None else None,
            checkpoint=None,
            check="projection",
            expected=_describe(want),
            found=_describe(have),
            message=f"directory key {key}: the hub serves something other than the ledger says",
        )
    return None
