"""The documented deployment flow, as separate processes: the real `hub` and `node-agent`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.nats

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / args[0]), *args[1:]], check=False, capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


class Background:
    """A long-running command, stopped with SIGTERM like an operator's Ctrl-C."""

    def __init__(self, *args: str, ready: str) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            stdout=subprocess.PIPE,
            stderr=open(os.environ.get("BG_STDERR", os.devnull), "a"),  # noqa: SIM115
            text=True,
        )
        deadline = time.monotonic() + 20
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if ready in line:
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError(f"{args} did not print {ready!r}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


@pytest.fixture
def hub_up(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    hub = tmp_path / "H"
    init = json.loads(run("hub", "init", "--data", str(hub), "--json").stdout)
    assert init["hub_ca"] == str(hub / "nats" / "tls" / "ca.pem")
    port = _free_port()
    process = Background("hub", "up", "--data", str(hub), "--nats-port", str(port), ready="hub up")
    try:
        yield hub, f"nats://127.0.0.1:{port}", init["operator_key"]
    finally:
        assert process.stop() == 0


def test_separate_processes_flow(tmp_path: Path, hub_up: tuple[Path, str, str]) -> None:
    hub, url, operator_key = hub_up
    a, b = tmp_path / "A", tmp_path / "B"
    for folder, ident in ((a, "XA-MOJ"), (b, "XB-MOJ")):
        run(
            "node-agent", "init", "--data", str(folder), "--id", ident, "--state", ident[:2],
            "--name", f"Central Authority of {ident[:2]}", "--kinds", "mla,extradition",
            "--languages", "en,fr", "--hub", url, "--operator-key", operator_key,
            "--hub-ca", str(hub / "nats" / "tls" / "ca.pem"),
        )  # fmt: skip
        card = tmp_path / f"{ident}.card.json"
        card.write_text(run("node-agent", "card", "--data", str(folder)).stdout)
        admitted = json.loads(run("hub", "admit", "--data", str(hub), str(card), "--json").stdout)
        assert (admitted["authority"], admitted["status"]) == (ident, "accepted")
        assert stat_mode(folder / "keys" / "authority.key") == 0o600

    receiver = Background("node-agent", "run", "--data", str(b), ready="running")
    try:
        body = tmp_path / "req.txt"
        body.write_text("Please hear witness W. on the transfers of March 2025.")
        pdf = tmp_path / "evidence-list.pdf"
        pdf.write_bytes(b"%PDF-1.4 list")
        submitted = json.loads(
            run(
                "node-agent", "request", "submit", "--data", str(a), "--to", "XB-MOJ",
                "--kind", "mla", "--legal-basis", "untoc-art18", "--nature", "taking-evidence",
                "--body-file", str(body), "--attach", str(pdf), "--json",
            ).stdout
        )  # fmt: skip
        assert submitted["status"] == "accepted"
        assert {"case_id", "message_id", "ledger_index"} <= submitted.keys()
        assert submitted["ledger_index"] == 2

        inbox: list[dict[str, object]] = []
        for _ in range(100):
            inbox = json.loads(run("node-agent", "inbox", "--data", str(b), "--json").stdout)
            if inbox and inbox[0]["receipt_status"] == "accepted":
                break
            time.sleep(0.1)
        assert len(inbox) == 1
        message = inbox[0]
        assert message["message_id"] == submitted["message_id"]
        assert message["body"] == "Please hear witness W. on the transfers of March 2025."
        assert message["verified"] is True
        assert message["attachments"][0]["name"] == "evidence-list.pdf"  # type: ignore[index]
        assert message["receipt_status"] == "accepted"
    finally:
        assert receiver.stop() == 0

    ledger = json.loads(run("hub", "ledger", "--data", str(hub), "--json").stdout)
    assert [(e["index"], e["type"], e["actor"]) for e in ledger] == [
        (0, "authority.admit", "operator"),
        (1, "authority.admit", "operator"),
        (2, "request.submit", "XA-MOJ"),
        (3, "receipt", "XB-MOJ"),
    ]
    assert ledger[2]["case_id"] == submitted["case_id"]


def test_bad_identifier_is_refused_clearly(tmp_path: Path) -> None:
    result = run(
        "node-agent", "init", "--data", str(tmp_path / "A"), "--id", "xa_moj", "--state", "XA",
        "--name", "A", check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "'xa_moj' is not an authority id" in result.stderr
    assert "^[A-Z]{2}-[A-Z0-9-]{2,32}$" in result.stderr
    assert not (tmp_path / "A").exists()


def test_commands_on_an_uninitialised_folder(tmp_path: Path) -> None:
    result = run("node-agent", "inbox", "--data", str(tmp_path / "none"), "--json", check=False)
    assert result.returncode == 2
    assert "holds no node agent" in result.stderr
    result = run("hub", "ledger", "--data", str(tmp_path / "none"), check=False)
    assert result.returncode == 2
    assert "holds no hub" in result.stderr


def test_demo_runs_and_cleans_up(tmp_path: Path) -> None:
    result = run("hub", "demo", "--data", str(tmp_path / "demo"))
    out = result.stdout
    assert "XB-MOJ's signed receipt is recorded" in out
    assert "Witness hearing moved" not in out  # content never printed from the ledger side
    assert "closed        District Court of Y" in out  # holder after two transfers
    assert "OVERDUE" in out  # the urgent extradition's signed deadline passed
    officer = out[out.index("Liaison magistrate XA-LO-7 reads") :]
    assert "the 4 messages of the main case" in officer and "NOT VERIFIED" not in officer
    assert "Thank you; closing the case." in officer
    review = tmp_path / "demo" / "review-XA-MOJ-XB-MOJ.html"
    assert review.read_text().count("<svg") == 1
    assert "Demo complete" in out
    log = (tmp_path / "demo" / "hub" / "nats" / "nats-server.log").read_text()
    pid = int(log.split("]", 1)[0].lstrip("["))  # nats-server prefixes each line with its pid
    assert "Server Exiting" in log
    assert not _alive(pid), f"nats-server {pid} left running"


def test_demo_interrupted_cleans_up(tmp_path: Path) -> None:
    demo = Background("hub", "demo", "--data", str(tmp_path / "demo"), ready="[3]")
    demo.proc.send_signal(signal.SIGINT)
    assert demo.stop() == 130
    log = (tmp_path / "demo" / "hub" / "nats" / "nats-server.log").read_text()
    pid = int(log.split("]", 1)[0].lstrip("["))
    assert not _alive(pid), f"nats-server {pid} left running after Ctrl-C"


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _agent(tmp_path: Path, ident: str, hub: Path, url: str, operator_key: str, *extra: str) -> Path:
    folder = tmp_path / ident
    run(
        "node-agent", "init", "--data", str(folder), "--id", ident, "--state", ident[:2],
        "--name", f"Central Authority of {ident[:2]}", "--hub", url, "--operator-key",
        operator_key, "--hub-ca", str(hub / "nats" / "tls" / "ca.pem"), *extra,
    )  # fmt: skip
    card = tmp_path / f"{ident}.card.json"
    card.write_text(run("node-agent", "card", "--data", str(folder)).stdout)
    run("hub", "admit", "--data", str(hub), str(card))
    return folder


def test_case_commands_and_reports(tmp_path: Path, hub_up: tuple[Path, str, str]) -> None:
    hub, url, operator_key = hub_up
    requirements = tmp_path / "req.json"
    requirements.write_text(
        json.dumps([{"kind": "mla", "languages": ["fr", "en"],
                     "attachments_required": ["translation"],
                     "fields_required": ["summary-of-facts"]}])
    )  # fmt: skip
    a = _agent(tmp_path, "XA-MOJ", hub, url, operator_key)
    b = _agent(tmp_path, "XB-MOJ", hub, url, operator_key, "--requirements", str(requirements))
    draft = ["--data", str(a), "--to", "XB-MOJ", "--kind", "mla", "--legal-basis", "untoc-art18",
             "--language", "de"]  # fmt: skip

    checked = run("node-agent", "request", "check", *draft, "--json", check=False)
    assert checked.returncode == 1
    assert [u["name"] for u in json.loads(checked.stdout)["unmet"]] == [
        "language:de",
        "attachment:translation",
        "field:summary-of-facts",
    ]
    refused = run("node-agent", "request", "submit", *draft, check=False)
    assert refused.returncode == 2
    assert "3 requirement(s) of XB-MOJ not met" in refused.stderr
    assert "--accept-incomplete" in refused.stderr
    sent = json.loads(
        run("node-agent", "request", "submit", *draft, "--accept-incomplete", "--json").stdout
    )
    assert sent["status"] == "accepted"
    case = sent["case_id"]

    receiver = Background("node-agent", "run", "--data", str(b), ready="running")
    try:
        for _ in range(100):
            listed = json.loads(
                run("node-agent", "case", "list", "--data", str(b), "--json").stdout
            )
            if listed:
                break
            time.sleep(0.1)
        assert [c["case_id"] for c in listed] == [case]
        early = run("node-agent", "request", "refuse", "--data", str(b), "--case", case,
                    "--grounds-file", str(requirements), check=False)  # fmt: skip
        assert early.returncode == 2
        assert "rule: requested_side_only" not in early.stderr
        assert (
            "refuse_requires_refusal_consultation" in early.stderr or "wrong_state" in early.stderr
        )
        for action in (
            ["acknowledge", "--reference", "B-17"],
            ["transfer", "--competent-authority", "Court of Y", "--reference", "Y-9"],
        ):
            out = json.loads(
                run("node-agent", "request", action[0], "--data", str(b), "--case", case,
                    *action[1:], "--json").stdout
            )  # fmt: skip
            assert out["status"] == "accepted", out
    finally:
        assert receiver.stop() == 0

    shown = json.loads(
        run("node-agent", "case", "show", "--data", str(b), "--case", case, "--json").stdout
    )
    assert shown["status"]["state"] == "in_execution"
    assert shown["status"]["holder"] == "Court of Y"
    assert shown["unmet_requirements"] == [
        "language:de",
        "attachment:translation",
        "field:summary-of-facts",
    ]
    assert "request.execute" in shown["you_may_now"]

    status = json.loads(run("hub", "status", "--data", str(hub), "--case", case, "--json").stdout)
    assert {k: status[k] for k in ("case_id", "state", "holder", "deadline", "overdue")} == {
        "case_id": case,
        "state": "in_execution",
        "holder": "Court of Y",
        "deadline": None,
        "overdue": False,
    }
    trail = json.loads(
        run("hub", "audit", "trail", "--data", str(hub), "--case", case, "--json").stdout
    )
    assert [t["type"] for t in trail if t["type"] != "receipt"] == [
        "request.submit",
        "request.acknowledge",
        "request.transfer",
    ]
    review_csv = run(
        "hub", "review", "--data", str(hub), "XA-MOJ", "XB-MOJ", "--format", "csv"
    ).stdout
    assert ["XA-MOJ->XB-MOJ", "state", "in_execution", "1"] in [
        line.split(",") for line in review_csv.splitlines()
    ]
    html = tmp_path / "review.html"
    run("hub", "review", "--data", str(hub), "XA-MOJ", "XB-MOJ", "--out", str(html))
    assert "<svg" in html.read_text()
    stats = json.loads(run("hub", "stats", "--data", str(hub), "--by", "legal-basis").stdout)
    assert [(r["group"], r["requests"]) for r in stats["rows"]] == [("UNTOC art. 18", 1)]


def test_transport_refuses_strangers(tmp_path: Path, hub_up: tuple[Path, str, str]) -> None:
    """Only admitted authorities connect, and only over TLS with their nkey."""
    hub, url, _ = hub_up
    ca = str(hub / "nats" / "tls" / "ca.pem")
    stranger = tmp_path / "XC"
    run("node-agent", "init", "--data", str(stranger), "--id", "XC-MOJ", "--state", "XC",
        "--name", "C", "--hub", url, "--hub-ca", ca)  # fmt: skip
    refused = run("node-agent", "run", "--data", str(stranger), check=False)
    assert refused.returncode == 1
    assert (
        "refused node-agent-XC-MOJ's credentials (nkey not admitted or revoked)" in refused.stderr
    )
    assert "eof_received" not in refused.stderr  # no asyncio noise on the console
    plain = tmp_path / "XD"
    run("node-agent", "init", "--data", str(plain), "--id", "XD-MOJ", "--state", "XD",
        "--name", "D", "--hub", url)  # fmt: skip
    refused = run("node-agent", "run", "--data", str(plain), check=False)
    assert refused.returncode == 3
    assert "if the hub requires TLS, init with --hub-ca" in refused.stderr


def test_checkpoints_proofs_and_audit(  # noqa: PLR0915 - one auditor's session, in order
    tmp_path: Path, hub_up: tuple[Path, str, str]
) -> None:
    """The verifiable ledger from the command line: checkpoint, proofs, export, replay."""
    import base64

    from hub.crypto.note import open_note, parse_verifier_key
    from hub.ledger.merkle import MerkleTree, verify_consistency, verify_inclusion

    hub, url, operator_key = hub_up
    for ident in ("XA-MOJ", "XB-MOJ"):
        _agent(tmp_path, ident, hub, url, operator_key)
    a = tmp_path / "XA-MOJ"
    body = tmp_path / "facts.txt"
    body.write_text("The facts of the case, for the court only.")
    sent = [
        json.loads(
            run(
                "node-agent",
                "request",
                "submit",
                "--data",
                str(a),
                "--to",
                "XB-MOJ",
                "--legal-basis",
                "untoc-art18",
                "--body-file",
                str(body),
                "--json",
            ).stdout
        )
        for _ in range(3)
    ]
    time.sleep(1.2)  # a checkpoint is issued at least once a second
    vkey = run("hub", "checkpoint", "--data", str(hub), "--vkey").stdout.strip()
    note = run("hub", "checkpoint", "--data", str(hub)).stdout
    text = open_note(note, [parse_verifier_key(vkey)]).text
    origin, size, root_b64 = text.splitlines()[:3]
    assert (origin, int(size)) == ("mla-hub.example", 5)
    root = base64.b64decode(root_b64)

    proof = json.loads(
        run("hub", "proof", "inclusion", "--data", str(hub), "--index", "2", "--json").stdout
    )
    assert (proof["leaf_index"], proof["tree_size"]) == (2, 5)
    verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]), 2, 5, [bytes.fromhex(h) for h in proof["hashes"]], root
    )
    ledger = json.loads(run("hub", "ledger", "--data", str(hub), "--json").stdout)
    assert ledger[2]["leaf_hash"] == proof["leaf_hash"]
    consistency = json.loads(
        run(
            "hub", "proof", "consistency", "--data", str(hub), "--from", "2", "--to", "5", "--json"
        ).stdout
    )
    # The old root is rebuilt from the ledger's own leaf hashes (hub ledger --json).
    old_tree = MerkleTree.from_leaf_hashes([bytes.fromhex(e["leaf_hash"]) for e in ledger[:2]])
    verify_consistency(
        2, 5, old_tree.root(), root, [bytes.fromhex(h) for h in consistency["hashes"]]
    )
    old = json.loads(
        run(
            "hub", "proof", "inclusion", "--data", str(hub), "--index", "0", "--size", "2", "--json"
        ).stdout
    )
    assert old["tree_size"] == 2 and consistency["from_size"] == 2

    archive = tmp_path / "ledger.archive"
    run("hub", "audit", "export", "--data", str(hub), "--out", str(archive))
    ok = json.loads(run("hub", "audit", "verify", "--archive", str(archive), "--json").stdout)
    assert ok["ok"] is True and ok["report"]["entries"] == 5
    assert ok["report"]["final_root"] == root.hex()
    pinned = run("hub", "audit", "verify", "--archive", str(archive), "--origin", "mla-hub.example",
                 "--log-key", vkey, "--operator-key", operator_key)  # fmt: skip
    assert "verified: 5 entries" in pinned.stdout
    live = json.loads(run("hub", "audit", "verify", "--data", str(hub), "--json").stdout)
    assert live["ok"] is True

    disclosure = tmp_path / "m.disclosure"
    run("node-agent", "disclose", "--data", str(a), "--message", sent[1]["message_id"],
        "--out", str(disclosure))  # fmt: skip
    shown = json.loads(
        run("hub", "audit", "check-disclosure", str(disclosure), "--archive", str(archive),
            "--json").stdout
    )  # fmt: skip
    assert (shown["verified"], shown["ledger_index"], shown["sender"]) == (True, 3, "XA-MOJ")
    assert shown["text"] == "The facts of the case, for the court only."
    assert "The facts" not in archive.read_text(errors="replace")  # the ledger never held it

    data = bytearray(archive.read_bytes())
    marker = data.find(b"untoc-art18")  # inside entry 2's signed header
    data[marker] ^= 0x20
    tampered = tmp_path / "tampered.archive"
    tampered.write_bytes(bytes(data))
    bad = run("hub", "audit", "verify", "--archive", str(tampered), "--json", check=False)
    assert bad.returncode == 1
    divergence = json.loads(bad.stdout)["divergence"]
    assert divergence["index"] == 2
    assert divergence["check"] in {"sender_signature", "entry_decode"}
