"""The layout is the architecture (spec/adr/0009-layout.md): folders are layers, imports point
down only, there is no import cycle, ``import callproof`` is light, and the public surface and the
installed wheel stay what integrators were promised.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import callproof

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"callproof": ROOT / "src" / "callproof", "verifier_app": ROOT / "verifier_app"}

#: The names ``callproof`` exported before the layout moved its modules (commit f22e3b7).
PUBLIC_NAMES = {
    "Admin", "Agent", "AlertWebhook", "BadAlgorithm", "BadClaims", "BadHeader", "BadSignature",
    "BadType", "CallTicket", "CallproofError", "CheckFailed", "CheckFlow", "CheckStep",
    "CheckWord", "Clock", "CodeError", "CodeFormatError", "CodeReport", "CodeTypo", "Company",
    "Config", "ConfigError", "DataDir", "Deployment", "DeskUser", "DeskUsers", "EnrolledProofs",
    "Expired", "FixedClock", "FraudDesk", "InputError", "IssuedTicket", "Issuer", "KeySet",
    "LifetimeTooLong", "Limits", "MalformedTicket", "NotFound", "NotYetValid", "Reason",
    "RetiredKey", "RevokedKey", "SPEC_VERSION", "SigningKey", "StoreError", "SystemClock",
    "TicketError", "TicketKey", "TicketStatus", "TicketTooLarge", "TransitionRefused",
    "UnknownKey", "WORDS", "WrongIssuer", "__version__", "display_code", "encode_ticket",
    "init_data_dir", "new_client_token", "normalise_code", "verify_ticket",
}

#: What each layer may import from callproof (itself included). Services (the modules and
#: folders at callproof/ level not named here) may import every layer below audit/; audit/ may
#: import services; the two shells (_cli/, verifier_app/) anything but each other's insides.
_BOTTOM = {"errors", "data"}
MAY_IMPORT = {
    "errors": set(),
    "protocol": _BOTTOM | {"protocol"},
    "tlog": _BOTTOM | {"protocol", "tlog"},
    "_files": _BOTTOM | {"protocol"},  # key and secret files: PEM from protocol/keys
    "store": _BOTTOM | {"protocol", "tlog", "store", "_files"},
    "auditor": _BOTTOM | {"protocol", "tlog", "auditor"},
    "witness": _BOTTOM | {"protocol", "tlog", "witness", "_files"},
}
_HIGH = {"audit", "auditor", "witness", "_cli"}
HEAVY = ("sqlalchemy", "flask", "argon2", "alembic", "PIL")


def _modules() -> dict[str, Path]:
    found = {}
    for top, base in SOURCES.items():
        for path in base.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = [top, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every callproof/verifier_app module ``name`` imports, anywhere in the file (under
    TYPE_CHECKING and inside functions too), resolved to the module it names."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "verifier_app":
        return "verifier_app"
    if parts[-1] == "__main__":
        return "_cli"
    return parts[1] if len(parts) > 1 else "callproof"


def test_the_public_surface_is_the_same_set_of_names() -> None:
    assert set(callproof.__all__) == PUBLIC_NAMES
    assert set(callproof._WHERE) | {"SPEC_VERSION", "__version__"} == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(callproof, name) is not None
    assert PUBLIC_NAMES <= set(dir(callproof))
    with pytest.raises(AttributeError):
        _ = callproof.NoSuchName  # type: ignore[attr-defined]


def test_there_is_no_import_cycle() -> None:
    # Tarjan's strongly connected components over the whole import graph.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        layer = _layer(module)
        for target in targets:
            to = _layer(target)
            if target == "callproof":
                ok = layer in ("verifier_app", "_cli")  # only the shells use the package root
            elif layer in MAY_IMPORT:
                ok = to in MAY_IMPORT[layer]
            elif layer == "verifier_app":
                ok = to != "_cli"
            elif layer == "_cli":
                # The one climb between the shells: `callproof serve` starts the web app.
                ok = to != "verifier_app" or module == "callproof._cli.serve"
            elif layer == "audit":
                ok = to not in {"auditor", "witness", "_cli", "verifier_app"}
            else:  # a service
                ok = to not in _HIGH | {"verifier_app"}
            if not ok:
                wrong.append(f"{module} -> {target}")
    assert sorted(wrong) == []


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    return set(out.split())


def test_import_callproof_loads_nothing_heavy() -> None:
    loaded = _loaded_after("import callproof")
    assert [m for m in HEAVY if m in loaded] == []
    assert sorted(m for m in loaded if m.startswith("callproof")) == ["callproof"]


@pytest.mark.parametrize("module", ["callproof.tlog.merkle", "callproof.tlog.proof",
                                    "callproof.protocol.ticket", "callproof.auditor.bundle",
                                    "callproof.auditor.report"])
def test_the_pure_and_offline_layers_load_no_storage(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert [m for m in HEAVY if m in loaded] == []
    assert [m for m in loaded if m.startswith(("callproof.store", "callproof.deployment"))] == []


def test_the_first_names_an_integrator_uses_cost_no_password_hash() -> None:
    loaded = _loaded_after("from callproof import verify_ticket, KeySet, CallTicket")
    assert "argon2" not in loaded and "sqlalchemy" not in loaded


@pytest.mark.slow
def test_the_wheel_installs_the_library_and_the_web_app(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    (wheel,) = (tmp_path / "dist").glob("callproof-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    for expected in ("verifier_app/__init__.py", "verifier_app/templates/base.html",
                     "verifier_app/static/style.css",
                     "verifier_app/translations/zh_Hant/LC_MESSAGES/messages.mo",
                     "callproof/data/check_words.json", "callproof/py.typed",
                     "callproof/store/migrations/env.py"):
        assert expected in names
    assert not any(n.startswith(("tests/", "fuzz/", "benchmarks/", "src/")) for n in names)
    site = tmp_path / "site"
    code = ("import verifier_app, callproof.store, callproof.protocol.words as w; "
            "print(verifier_app.__file__); print(len(w.WORDS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(site)}).stdout.split()
    assert out[0].startswith(str(site))
    assert int(out[1]) > 0
