"""The floors of the package: a module imports only from its own floor or the ones below, and nothing imports in
a circle. Read from the source with the AST (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import longlens

ROOT = Path(longlens.__file__).parent
FLOORS = {
    # the ground floor: no longlens imports but each other
    "errors": 0, "jsonl": 0, "spans": 0, "_imports": 0, "_torchvision_shim": 0, "memory": 0,
    "video": 1, "synth": 1,
    "prompts": 2,
    "backends": 3,
    "agents": 4,
    "bench": 5,
    "rewards": 5,
    "data": 6,
    "train": 7,
    "api": 8, "serve": 8,
    "cli": 9, "__main__": 9, "__init__": 9,
}


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(["longlens", *parts])] = path
    return out


def imports(path: Path, name: str) -> set[str]:
    """The longlens modules `path` imports, resolved to the modules that exist."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("longlens")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, `level - 1` packages up
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.startswith("longlens"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def floor(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    assert top in FLOORS, f"{module}: a new top-level part of the package; give it a floor in this test"
    return FLOORS[top]


def test_no_module_imports_from_a_floor_above_its_own():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        for target in imports(path, name):
            if target in mods and floor(target) > floor(name):
                wrong.append(f"{name} (floor {floor(name)}) imports {target} (floor {floor(target)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles_between_top_level_parts():
    """Between the package's parts (video, prompts, backends ...), imports go one way."""
    mods = modules()
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        src = name.split(".")[1] if "." in name else "__init__"
        for target in imports(path, name):
            if target in mods and "." in target:
                dst = target.split(".")[1]
                if dst != src and src not in ("__init__", "__main__"):
                    edges.setdefault(src, set()).add(dst)

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        for nxt in edges.get(a, ()):
            if nxt == b or (nxt not in seen and reaches(nxt, b, seen | {nxt})):
                return True
        return False

    cycles = sorted(f"{a} -> {b} -> ... -> {a}" for a in edges for b in edges[a] if reaches(b, a, {b}))
    assert not cycles, "\n".join(cycles)


def test_the_test_sees_every_module():
    mods = modules()
    assert "longlens.jsonl" in mods and "longlens.bench.runner" in mods and len(mods) > 80
    assert "longlens.bench.runner" in imports(mods["longlens.cli.eval"], "longlens.cli.eval")
