"""Citations stay followable: nothing in the repository cites the reading notes kept outside it (the reference
code is cited as ``owner/repo@commit path:lines``, our own decisions as items of docs/reference-code.md), the
reference commits are the ones that page names, every ``docs/<name>.md`` the code and the docs mention exists,
and every ``#anchor`` such a mention names is on that page."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCANNED = ("src", "docs", "benchmarks", "tests", "README.md", "pyproject.toml")
TEXT = {".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt", ".cfg", ".ini", ".jinja", ".js", ".css", ".html"}
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SELF = Path(__file__).resolve()

OUTSIDE_NOTES = re.compile(r"""
    §                                          # the notes' section numbers: "§4.3", "spec §7 #2"
  | \b(?:love-r1|longvideo-r1)-spec\b          # the notes by name
  | tiny-model-feasibility
  | \b(?:corrections|peers|aesthetics|ecosystem)\.md\b
  | shared/reference
  | (?<!data/)\breference/[a-z-]+\.md          # reference/<note>.md (tests/data/reference/ holds golden files)
  | \bbenchmarks\.md,?\ section\ \d            # the benchmark notes' numbered sections (docs/benchmarks.md has none)
  | \bthe\ spec\b | \bspec's\b
""", re.X)

COMMITS = {"HumanMLLM/LOVE-R1": "aa1facb78ef71379c80349baf8aa63208a27fc96",
           "qiujihao19/LongVideo-R1": "77c87ec64779375b07e23f7f9b40a91f84d7dc35"}
CITED_COMMIT = re.compile(r"\b(HumanMLLM/LOVE-R1|qiujihao19/LongVideo-R1)@([0-9a-f]+)")
DOC_PATH = re.compile(r"\bdocs/([A-Za-z0-9_.-]+?\.md)(?:#([A-Za-z0-9_-]+))?")
RELATIVE_LINK = re.compile(r"\]\(([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?\)")
ITEM = re.compile(r"(?<![\w/])#((?:z|n|lib)\d+)\b")


def scanned_files() -> list[Path]:
    out = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            out.append(path)
            continue
        for p in sorted(path.rglob("*")):
            if not p.is_file() or p.suffix not in TEXT or SKIP_DIRS & set(p.parts) or p.resolve() == SELF:
                continue
            if p.is_relative_to(ROOT / "tests" / "data") and p.suffix != ".md":
                continue  # recorded benchmark data and golden outputs, not prose
            out.append(p)
    return out


FILES = scanned_files()


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def anchors(page: Path) -> set[str]:
    """Explicit ``id``/``name`` anchors and GitHub's heading slugs."""
    s = text(page)
    out = set(re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", s))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", s, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def where(path: Path, s: str, pos: int) -> str:
    line = s.count("\n", 0, pos) + 1
    return f"{path.relative_to(ROOT)}:{line}: {s.splitlines()[line - 1].strip()[:120]}"


def test_the_scan_covers_the_code_and_the_docs():
    names = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert "README.md" in names and "docs/reference-code.md" in names and "src/longlens/rewards.py" in names
    assert any(n.startswith("src/longlens/train/configs/") for n in names)
    assert any(n.startswith("src/longlens/prompts/data/") for n in names)
    assert "tests/test_docs_citations.py" not in names


def test_no_citation_of_notes_outside_the_repository():
    bad = []
    for path in FILES:
        s = text(path)
        bad += dict.fromkeys(where(path, s, m.start()) for m in OUTSIDE_NOTES.finditer(s))
    assert not bad, ("cites notes that are not in the repository; cite the reference code "
                     "(owner/repo@commit path:lines) or docs/reference-code.md instead:\n" + "\n".join(bad))


def test_reference_citations_name_the_documented_commits():
    page = text(DOCS / "reference-code.md")
    for full in COMMITS.values():
        assert full in page
    bad = []
    for path in FILES:
        s = text(path)
        for m in CITED_COMMIT.finditer(s):
            repo, commit = m.groups()
            if len(commit) < 7 or not COMMITS[repo].startswith(commit):
                bad.append(where(path, s, m.start()))
    assert not bad, "a reference commit other than the one docs/reference-code.md names:\n" + "\n".join(bad)


def test_every_docs_page_mentioned_exists_with_its_anchor():
    cache: dict[Path, set[str]] = {}
    bad = []
    for path in FILES:
        s = text(path)
        found = [(DOCS / m.group(1), m.group(2), m.start()) for m in DOC_PATH.finditer(s)]
        if path.is_relative_to(DOCS) and path.suffix == ".md":
            found += [(path.parent / m.group(1), m.group(2), m.start()) for m in RELATIVE_LINK.finditer(s)]
        for page, anchor, pos in found:
            if not page.is_file():
                bad.append(f"{where(path, s, pos)}  (no such file: {page.relative_to(ROOT)})")
            elif anchor and anchor not in cache.setdefault(page, anchors(page)):
                bad.append(f"{where(path, s, pos)}  (no #{anchor} in {page.relative_to(ROOT)})")
    assert not bad, "\n".join(bad)


def test_every_difference_item_cited_is_on_the_reference_page():
    items = anchors(DOCS / "reference-code.md")
    assert {"z1", "z2", "n1", "lib1"} <= items
    bad = []
    for path in FILES:
        s = text(path)
        if "reference-code.md" not in s:
            continue
        bad += [where(path, s, m.start()) for m in ITEM.finditer(s) if m.group(1) not in items]
    assert not bad, "items that docs/reference-code.md does not have:\n" + "\n".join(bad)
