"""verify/ is built in rooms that import only downward: leaves < train < sweeps < claims, testing < cli < commands."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEVEL = {"verify.files": 0, "verify.plots": 0, "verify.train": 1, "verify.sweeps": 2, "verify.claims": 3,
         "verify.testing": 3, "verify.cli": 4, "verify.all": 5, "verify.bench": 5, "verify.calibrate": 5,
         "verify.gpu": 5, "verify.sweep": 5}


def room(module: str) -> str:
    for name in sorted(LEVEL, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    raise AssertionError(f"{module} belongs to no room: add it to a room of verify/")


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every verify module a file imports, lazy imports inside functions included."""
    mod = module_of(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found |= {f"{base}.{a.name}" for a in node.names} | {base}
    return {m for m in found if m.startswith("verify.")}


MODULES = sorted(p for p in (ROOT / "verify").rglob("*.py") if p.name != "__init__.py" or p.parent.name != "verify")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_of(p))
def test_a_room_imports_only_downward(path):
    here = room(module_of(path))
    upward = sorted(m for m in imports(path)
                    if m in LEVEL or any(m.startswith(r + ".") for r in LEVEL)
                    if room(m) != here and LEVEL[room(m)] >= LEVEL[here])
    assert not upward, f"{module_of(path)} ({here}) imports {upward}: a room may import only rooms below it"
