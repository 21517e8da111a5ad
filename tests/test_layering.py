"""The functional core stays pure (STYLE rule 1) and hazmat stays behind the recipe (rule 3)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = [
    "schemas",
    "hub/crypto",
    "hub/ledger/merkle.py",
    "hub/ledger/lifecycle.py",
    "hub/ledger/describe.py",
    "hub/ledger/projections",
    "hub/gateway/admission.py",
    "hub/gateway/decisions.py",
    "hub/gateway/operator_rules.py",
    "hub/gateway/tokens.py",
    "hub/audit/archive.py",
    "hub/audit/checkpoints.py",
    "hub/audit/entries.py",
    "hub/audit/jobs.py",
    "hub/audit/outcome.py",
    "hub/audit/projection.py",
    "hub/audit/replay.py",
]
FORBIDDEN_IN_CORE = ("aiohttp", "nats", "asyncio", "sqlite3", "socket")


def _modules(target: str) -> list[Path]:
    path = ROOT / target
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def _uses_environ(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}
        for node in ast.walk(tree)
    )


def test_core_modules_do_no_io() -> None:
    offenders = []
    for target in CORE:
        for module in _modules(target):
            for name in _imports(module):
                if name.split(".")[0] in FORBIDDEN_IN_CORE:
                    offenders.append(f"{module.relative_to(ROOT)} imports {name}")
            if _uses_environ(module):
                offenders.append(f"{module.relative_to(ROOT)} reads the environment")
    assert offenders == []


def test_hazmat_only_in_primitives() -> None:
    offenders = [
        str(module.relative_to(ROOT))
        for package in ("hub", "node_agent", "schemas")
        for module in (ROOT / package).rglob("*.py")
        if module.name != "_primitives.py"
        and any(name.startswith("cryptography.hazmat") for name in _imports(module))
    ]
    assert offenders == []
