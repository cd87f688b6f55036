"""The import graph points one way: every module under adapter/ is parsed and
each of its imports checked against the layers below (a rule is data; a new
module or package needs its line here).

Read a line as: the modules of this part may import those parts (and their
own). The domain (messaging/) sits on the store, which imports nothing of
the adapter; the web services, webhooks and the dispatcher sit on the
domain; app.py wires everything and only cli.py imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import adapter

ROOT = Path(adapter.__file__).parent

MAY_IMPORT: dict[str, frozenset[str]] = {name: frozenset(parts) for name, parts in {
    "store": (),
    "logs": (),
    "passwords": (),
    "access_log": ("logs",),
    "http_server": ("logs",),
    "http_client": ("logs",),
    "http_outcome": ("http_client",),
    "web_requests": (),
    "messaging": ("store",),
    # (the log formats and the password hashing cost it validates)
    "config": ("logs", "passwords"),
    "providers": ("messaging", "config", "http_client", "http_outcome", "web_requests", "logs"),
    "push": ("messaging", "store", "config", "http_client", "http_outcome", "logs"),
    "acrobits": ("messaging", "store", "config", "passwords", "web_requests", "logs"),
    "hooks": ("messaging", "providers", "store", "config", "access_log", "web_requests", "logs"),
    "dispatch": ("messaging", "providers", "push", "store", "config", "logs"),
    "app": ("acrobits", "hooks", "dispatch", "messaging", "providers", "push", "store", "config",
            "passwords", "access_log", "http_client", "http_server", "logs"),
    "cli": ("app", "acrobits", "hooks", "dispatch", "messaging", "providers", "push", "store",
            "config", "passwords", "access_log", "http_client", "http_server", "logs"),
    "__main__": ("cli",),
    "__init__": (),
}.items()}



def part_of(module: str) -> str:
    """``adapter.store.rows`` -> ``store``; ``adapter`` itself -> ``__init__``."""
    names = module.split(".")
    assert names[0] == "adapter", module
    return names[1] if len(names) > 1 else "__init__"


def module_name(path: Path) -> str:
    names = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if names[-1] == "__init__" and len(names) > 1:
        names.pop()
    return ".".join(names)


def imported(path: Path) -> set[str]:
    """Every adapter module ``path`` imports, anywhere in it (also inside
    functions and ``if TYPE_CHECKING:``)."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from . import hooks``: a name may be a module of its own.
            for alias in node.names:
                submodule = ROOT.parent / f"{target}.{alias.name}".replace(".", "/")
                is_module = submodule.with_suffix(".py").exists() or submodule.is_dir()
                found.add(f"{target}.{alias.name}" if is_module else target)
    return {name for name in found if name == "adapter" or name.startswith("adapter.")}


def wrong_way_imports() -> set[tuple[str, str, str]]:
    """(importing module, its part, the part it may not import)."""
    found = set()
    for path in sorted(ROOT.rglob("*.py")):
        importer = part_of(module_name(path))
        allowed = MAY_IMPORT.get(importer)
        assert allowed is not None, f"{path}: part {importer!r} has no line in MAY_IMPORT"
        for target in imported(path):
            part = part_of(target)
            if part != importer and part not in allowed:
                found.add((module_name(path), importer, part))
    return found


def test_the_import_graph_points_one_way():
    wrong = wrong_way_imports()
    assert wrong == set(), "wrong-way imports (module, its part, what it may not import)"


def test_the_rules_say_what_the_issue_says():
    for lower in ("messaging", "providers", "push", "acrobits", "hooks", "dispatch", "app",
                  "cli"):
        assert lower not in MAY_IMPORT["store"]
    assert "providers" not in MAY_IMPORT["messaging"] | MAY_IMPORT["push"]
    assert "acrobits" not in MAY_IMPORT["hooks"]
    # Nothing imports up into app.py or cli.py.
    assert {part for part, allowed in MAY_IMPORT.items() if "app" in allowed} == {"cli"}
    assert {part for part, allowed in MAY_IMPORT.items() if "cli" in allowed} == {"__main__"}


def test_a_wrong_way_import_is_found(tmp_path, monkeypatch):
    # The parser itself: relative, absolute and in-function imports resolve.
    fake = tmp_path / "adapter"
    (fake / "store").mkdir(parents=True)
    (fake / "messaging").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "store" / "__init__.py").write_text("")
    (fake / "messaging" / "__init__.py").write_text("")
    (fake / "messaging" / "routing.py").write_text("")
    (fake / "store" / "rows.py").write_text(
        "from ..messaging import routing\n"
        "def later():\n    import adapter.messaging.routing\n")
    monkeypatch.setattr(f"{__name__}.ROOT", fake)
    assert imported(fake / "store" / "rows.py") == {"adapter.messaging.routing"}
    assert wrong_way_imports() == {("adapter.store.rows", "store", "messaging")}
