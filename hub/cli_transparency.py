"""``hub checkpoint``, ``hub proof``, ``hub audit export|verify``: the verifiable ledger.

The JSON shapes of ``hub proof ... --json`` are a public contract (issue 4)::

    {"leaf_index": N, "tree_size": S, "leaf_hash": "<hex>", "hashes": ["<hex>", ...]}
    {"from_size": M, "to_size": N, "hashes": ["<hex>", ...]}
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from nats.aio.client import Client as NatsClient

from hub import subjects
from hub.audit.archive import ArchiveHeader, ArchiveReader, EntryRecord
from hub.audit.replay import TrustAnchors
from hub.audit.runner import aexport_archive, averify_entries, result_json, verify_archive
from hub.clock import SystemClock
from hub.console import EXIT_REFUSED, print_json
from hub.crypto.disclosure import check_disclosure
from hub.crypto.note import signer_verifier_key
from hub.errors import UnavailableError, ValidationError
from hub.gateway.checkpoints import CheckpointStore
from hub.gateway.connection import close as close_connection
from hub.gateway.connection import connect
from hub.keyfiles import read_private
from hub.ledger.folding import collector_paused
from hub.ledger.merkle import MerkleTree, leaf_hash
from hub.ledger.projections.state import HubState
from hub.ledger.store import Ledger, kv_items
from hub.ledger.transparency import TransparencyLog
from hub.progress import Progress
from hub.runtime import operator_key
from hub.settings import HubPaths, load_settings, nats_url_for
from hub.transport_security import hub_credentials
from schemas.codec import decode, decode_json
from schemas.disclosure import Disclosure
from schemas.ledger import LedgerEntry

__all__ = ["register", "register_audit"]

AddCommand = Callable[..., argparse.ArgumentParser]


@asynccontextmanager
async def _hub_nats(args: argparse.Namespace) -> AsyncIterator[tuple[HubPaths, NatsClient]]:
    paths = HubPaths(args.data)
    settings = load_settings(paths)
    url = nats_url_for(paths, settings, getattr(args, "nats", None))
    nc = await connect(url, name="hub-transparency", credentials=hub_credentials(paths))
    try:
        yield paths, nc
    finally:
        await close_connection(nc)


def _log(paths: HubPaths) -> TransparencyLog:
    return TransparencyLog(read_private(paths.log_key).decode())


async def _tree(ledger: Ledger, size: int | None) -> MerkleTree:
    total = await ledger.size() if size is None else size
    tree = MerkleTree()
    progress = Progress("hashing ledger", total)
    async for index, data in ledger.read(0, total):
        tree.append(leaf_hash(data))
        progress.update(index + 1)
    progress.finish()
    return tree


async def cmd_checkpoint(args: argparse.Namespace) -> int:
    paths = HubPaths(args.data)
    if args.vkey:
        print(signer_verifier_key(read_private(paths.log_key).decode()))
        return 0
    async with _hub_nats(args) as (_, nc):
        store = await CheckpointStore.open(nc.jetstream(), _log(paths))
        note = await store.get()
    if note is None:
        raise UnavailableError("checkpoint: the hub has not signed one yet (is `hub up` running?)")
    sys.stdout.write(note)
    return 0


async def cmd_inclusion(args: argparse.Namespace) -> int:
    async with _hub_nats(args) as (_, nc):
        tree = await _tree(Ledger(nc.jetstream()), args.size)
    size = tree.size
    if not 0 <= args.index < size:
        raise ValidationError(f"--index: {args.index} is not below the tree size {size}")
    proof = tree.inclusion_proof(args.index, size)
    shaped = {
        "leaf_index": args.index,
        "tree_size": size,
        "leaf_hash": tree.leaf_hash(args.index).hex(),
        "hashes": [h.hex() for h in proof],
    }
    if args.json:
        print_json(shaped)
    else:
        print(f"leaf {args.index} in tree of size {size}: {len(proof)} hashes")
        for h in shaped["hashes"]:
            print(f"  {h}")
    return 0


async def cmd_consistency(args: argparse.Namespace) -> int:
    if not 0 <= args.from_size <= args.to_size:
        raise ValidationError("--from, --to: need 0 <= from <= to", field="from")
    async with _hub_nats(args) as (_, nc):
        tree = await _tree(Ledger(nc.jetstream()), args.to_size)
    if tree.size < args.to_size:
        raise ValidationError(f"--to: the ledger holds only {tree.size} entries", field="to")
    hashes = [h.hex() for h in tree.consistency_proof(args.from_size, args.to_size)]
    shaped = {"from_size": args.from_size, "to_size": args.to_size, "hashes": hashes}
    if args.json:
        print_json(shaped)
    else:
        print(f"consistency {args.from_size} -> {args.to_size}: {len(hashes)} hashes")
        for h in hashes:
            print(f"  {h}")
    return 0


def _header(paths: HubPaths) -> ArchiveHeader:
    log = _log(paths)
    return ArchiveHeader(
        origin=log.origin,
        log_key=log.verifier_key,
        operator_keys=[operator_key(paths).public.hex()],
        exported_at=SystemClock().now(),
    )


async def cmd_export(args: argparse.Namespace) -> int:
    async with _hub_nats(args) as (paths, nc):
        js = nc.jetstream()
        notes = await (await CheckpointStore.open(js, _log(paths))).all_notes()
        ledger = Ledger(js)
        total = await ledger.size()
        progress = Progress("exporting", total)

        async def entries() -> AsyncIterator[tuple[int, bytes]]:
            async for index, data in ledger.read(0, total):
                progress.update(index + 1)
                yield index, data

        with Path(args.out).open("wb") as out:
            totals = await aexport_archive(entries(), notes, _header(paths), out)
        progress.finish()
    print(f"wrote {args.out}: {totals.entries} entries, {totals.checkpoints} checkpoints")
    return 0


def _pins(args: argparse.Namespace) -> TrustAnchors | None:
    if not (args.origin or args.log_key or args.operator_key):
        return None
    if not (args.origin and args.log_key and args.operator_key):
        raise ValidationError("--origin, --log-key, --operator-key: give all three or none")
    return TrustAnchors.parse(args.origin, args.log_key, args.operator_key)


async def cmd_verify(args: argparse.Namespace) -> int:
    bar = Progress("verifying", 0)

    def progress(done: int, total: int | None) -> None:
        bar.total = total or max(done, 1)
        bar.enabled = not args.json and (bar.total >= 5_000 or sys.stderr.isatty())
        bar.update(done)

    if args.archive:
        with Path(args.archive).open("rb") as src, collector_paused():
            result = verify_archive(
                src, pins=_pins(args), witnesses=args.witnesses, progress=progress
            )
    else:
        if args.data is None:
            raise ValidationError("give --archive FILE, or --data H (with --nats) for the live hub")
        async with _hub_nats(args) as (paths, nc):
            js = nc.jetstream()
            header = _header(paths)
            anchors = _pins(args) or TrustAnchors.parse(
                header.origin, header.log_key, header.operator_keys
            )
            notes = await (await CheckpointStore.open(js, _log(paths))).all_notes()
            ledger = Ledger(js)
            total = await ledger.size()

            async def served_directory() -> dict[str, bytes]:
                """The directory the live hub serves, compared with the one the replay built."""
                return await kv_items(await js.key_value(subjects.DIRECTORY_BUCKET))

            result = await averify_entries(
                ledger.read(0, total),
                anchors,
                checkpoints=notes,
                total=total,
                witnesses=args.witnesses,
                progress=progress,
                served_directory=served_directory,
            )
    if bar.enabled:
        bar.finish()
    if args.json:
        sys.stdout.write(result_json(result).decode() + "\n")
    elif result.ok and result.report is not None:
        r = result.report
        print(
            f"verified: {r.entries} entries, {r.checkpoints} checkpoints, {r.signatures} "
            f"signatures, final size {r.final_size}; {result.entries_per_s:,.0f} entries/s "
            f"on {result.workers} worker(s)"
        )
    elif result.divergence is not None:
        d = result.divergence
        where = f"entry {d.index}" if d.index is not None else f"checkpoint {d.checkpoint}"
        print(f"DIVERGENCE at {where}: {d.check}: {d.message}")
        print(f"  expected: {d.expected}\n  found:    {d.found}")
    return 0 if result.ok else EXIT_REFUSED


def _entry_and_directory(archive: Path, index: int) -> tuple[LedgerEntry, HubState]:
    """Entry ``index`` of an archive and the directory as it stood just before it."""
    state = HubState()
    with archive.open("rb") as src:
        for record in ArchiveReader(src):
            if not isinstance(record, EntryRecord):
                continue
            entry = decode(record.data, LedgerEntry, what=f"ledger entry {record.index}")
            if record.index == index:
                return entry, state
            state.apply(entry)
    raise ValidationError(f"ledger_index: the archive has no entry {index}", field="ledger_index")


async def cmd_check_disclosure(args: argparse.Namespace) -> int:
    disclosure = decode_json(Path(args.disclosure).read_bytes(), Disclosure, what=args.disclosure)
    with Path(args.archive).open("rb") as src:
        audit = verify_archive(src, pins=_pins(args))
    if not audit.ok:
        sys.stdout.write(result_json(audit).decode() + "\n")
        print("the archive itself does not verify; nothing in it can be relied on", file=sys.stderr)
        return EXIT_REFUSED
    entry, before = _entry_and_directory(Path(args.archive), disclosure.ledger_index)
    shown = check_disclosure(disclosure, entry, before.directory)
    if args.out:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        for i, (meta, data) in enumerate(
            zip(shown.body.attachments, shown.attachments, strict=True)
        ):
            (folder / f"{i:02d}-{Path(meta.name).name}").write_bytes(data)
    header = shown.header
    if args.json:
        print_json(
            {
                "verified": True,
                "message_id": header.message_id,
                "case_id": header.case_id,
                "type": header.type,
                "sender": header.sender,
                "recipients": header.recipients,
                "sent_at": header.sent_at,
                "ledger_index": shown.ledger_index,
                "recorded_at": entry.recorded_at,
                "text": shown.body.text,
                "attachments": [
                    {"name": m.name, "size": m.size, "sha256": m.sha256.hex()}
                    for m in shown.body.attachments
                ],
            }
        )
    else:
        print(
            f"verified: {header.type} {header.message_id} signed by {header.sender} at "
            f"{header.sent_at.isoformat()}, recorded at ledger index {shown.ledger_index} of a "
            f"log whose {audit.report.checkpoints if audit.report else 0} checkpoints verify"
        )
        print(shown.body.text)
    return 0


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """``hub checkpoint`` and ``hub proof inclusion|consistency``."""
    p = command("checkpoint", "the latest signed checkpoint (C2SP signed note)")
    p.add_argument("--vkey", action="store_true", help="print the note verifier key instead")
    p.add_argument("--nats")
    p.set_defaults(run=cmd_checkpoint)
    proof = sub.add_parser("proof", help="RFC 9162 proofs").add_subparsers(
        dest="action", required=True
    )
    p = command("inclusion", "inclusion proof of one entry", proof)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--size", type=int, help="tree size (default: the whole ledger)")
    p.add_argument("--nats")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_inclusion)
    p = command("consistency", "consistency proof between two tree sizes", proof)
    p.add_argument("--from", dest="from_size", type=int, required=True)
    p.add_argument("--to", dest="to_size", type=int, required=True)
    p.add_argument("--nats")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_consistency)


def register_audit(audit: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """``hub audit export`` and ``hub audit verify``."""
    p = command("export", "a self-contained archive: entries, checkpoints, keys", audit)
    p.add_argument("--out", required=True)
    p.add_argument("--nats")
    p.set_defaults(run=cmd_export)
    p = command(
        "verify",
        "replay and check everything; stop at the first divergence",
        audit,
        data_required=False,
    )
    p.set_defaults(run=cmd_verify)
    p.add_argument("--archive", help="an archive made by `hub audit export`")
    p.add_argument("--nats", help="with --data: read the live ledger instead")
    p.add_argument("--witnesses", type=int, default=0, help="cosignatures required at the end")
    p.add_argument("--origin", help="pin: the hub's origin (else the archive's header)")
    p.add_argument("--log-key", help="pin: the checkpoint verifier key")
    p.add_argument("--operator-key", action="append", help="pin: operator key(s), hex")
    p.add_argument("--json", action="store_true")
    p = command(
        "check-disclosure",
        "prove one disclosed message against an archive",
        audit,
        data_required=False,
    )
    p.add_argument("disclosure", help="file made by `node-agent disclose`")
    p.add_argument("--archive", required=True)
    p.add_argument("--out", help="write the disclosed attachments to this folder")
    p.add_argument("--origin")
    p.add_argument("--log-key")
    p.add_argument("--operator-key", action="append")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_check_disclosure)
