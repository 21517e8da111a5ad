"""The documented key-lifecycle commands as separate processes (issue 5): contacts on the card,
``hub directory``, ``node-agent directory``, ``node-agent rotate``, ``hub revoke``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import Background, _free_port, run

pytestmark = pytest.mark.nats


@pytest.fixture
def running_hub(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    hub = tmp_path / "H"
    init = json.loads(run("hub", "init", "--data", str(hub), "--json").stdout)
    port = _free_port()
    process = Background("hub", "up", "--data", str(hub), "--nats-port", str(port), ready="hub up")
    try:
        yield hub, f"nats://127.0.0.1:{port}", init["operator_key"]
    finally:
        assert process.stop() == 0


def _json(*args: str) -> Any:
    return json.loads(run(*args).stdout)


def test_directory_rotation_and_revocation(
    tmp_path: Path, running_hub: tuple[Path, str, str]
) -> None:
    hub, url, operator_key = running_hub
    a, b = tmp_path / "A", tmp_path / "B"
    nkeys = {}
    for folder, ident in ((a, "XA-MOJ"), (b, "XB-MOJ")):
        run(
            "node-agent", "init", "--data", str(folder), "--id", ident, "--state", ident[:2],
            "--name", f"Central Authority of {ident[:2]}", "--hub", url,
            "--operator-key", operator_key, "--hub-ca", str(hub / "nats" / "tls" / "ca.pem"),
            "--contact", "Duty officer|duty@moj.example|+1 555 0100|24/7",
            "--contact", "Registry|registry@moj.example||office-hours",
        )  # fmt: skip
        card = tmp_path / f"{ident}.card.json"
        card.write_text(run("node-agent", "card", "--data", str(folder)).stdout)
        nkeys[ident] = json.loads(card.read_text())["readable"]["keys"]["nats"]
        assert (
            _json("hub", "admit", "--data", str(hub), str(card), "--json")["status"] == "accepted"
        )

    directory = _json("hub", "directory", "--data", str(hub), "--json")
    assert [x["id"] for x in directory["authorities"]] == ["XA-MOJ", "XB-MOJ"]
    assert directory["authorities"][0]["contacts"] == [
        {"name": "Duty officer", "email": "duty@moj.example", "phone": "+1 555 0100",
         "available_24_7": True},
        {"name": "Registry", "email": "registry@moj.example", "phone": None,
         "available_24_7": False},
    ]  # fmt: skip
    assert [k["status"] for k in directory["keys"]] == ["current", "current"]
    seen_by_a = _json("node-agent", "directory", "--data", str(a), "--json")
    assert seen_by_a["source"] == "verified, from the hub"
    assert seen_by_a["authorities"] == directory["authorities"]
    assert (a / "directory-snapshot.bin").exists()

    old_key = directory["authorities"][1]["key_id"]
    rotated = run("node-agent", "rotate", "--data", str(b))
    assert "is kept in" in rotated.stderr
    card = tmp_path / "XB-MOJ.rotated.json"
    card.write_text(rotated.stdout)
    new_key = json.loads(rotated.stdout)["readable"]["keys"]["key_id"]
    assert json.loads(rotated.stdout)["readable"]["previous_key_id"] == old_key
    assert (b / "keys" / "previous" / f"{old_key}.key").stat().st_mode & 0o777 == 0o600
    admitted = _json("hub", "admit", "--data", str(hub), str(card), "--json")
    assert (admitted["status"], admitted["ledger_index"]) == ("accepted", 2)
    keys = {k["key_id"]: k for k in _json("hub", "directory", "--data", str(hub), "--json")["keys"]}
    assert (keys[old_key]["status"], keys[old_key]["superseded_by"]) == ("retired", new_key)
    assert (keys[old_key]["retired_index"], keys[new_key]["status"]) == (2, "current")

    unknown = run("hub", "revoke", "--data", str(hub), "XQ-NONE", "--reason", "x", check=False)
    assert unknown.returncode == 1
    assert unknown.stdout.strip() == (
        "XQ-NONE: rejected (unknown_recipient): authority: XQ-NONE is not admitted to the directory"
    )
    revoked = _json(
        "hub", "revoke", "--data", str(hub), "XB-MOJ", "--reason", "designation withdrawn",
        "--json",
    )  # fmt: skip
    assert (revoked["status"], revoked["ledger_index"]) == ("accepted", 4)
    security = (hub / "nats" / "security.conf").read_text()
    assert nkeys["XA-MOJ"] in security and nkeys["XB-MOJ"] not in security

    body = tmp_path / "req.txt"
    body.write_text("Please hear witness W.")
    refused = run(
        "node-agent", "request", "submit", "--data", str(a), "--to", "XB-MOJ", "--kind", "mla",
        "--legal-basis", "untoc-art18", "--nature", "taking-evidence", "--body-file", str(body),
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "refused (revoked): --to: XB-MOJ was revoked at ledger index 4 ("
    )
    assert refused.stderr.rstrip().endswith("designation withdrawn; nothing more can be sent to it")

    after = _json("node-agent", "directory", "--data", str(a), "--json")
    assert [x["id"] for x in after["authorities"]] == ["XA-MOJ"]
    assert [(r["authority"], r["ledger_index"], r["reason"]) for r in after["revoked"]] == [
        ("XB-MOJ", 4, "designation withdrawn")
    ]
    assert {k["key_id"]: k["status"] for k in after["keys"]}[new_key] == "revoked"
    types = [e["type"] for e in _json("hub", "ledger", "--data", str(hub), "--json")]
    assert types[2:] == ["authority.rotate", "rejected", "authority.revoke"]
    text = run("hub", "directory", "--data", str(hub)).stdout
    assert "directory after 5 ledger entries (ledger)" in text and "designation withdrawn" in text
