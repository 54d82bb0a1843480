"""The documentation speaks for the project: it cites no document outside the repository, its
links within the repository lead somewhere, and the license file is the one pyproject.toml names."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "client" / "README.md", *(ROOT / "docs").rglob("*.md")]
)
# Citations of an outside document: section signs, and the name the project's early notes used.
OUTSIDE_CITATION = re.compile(r"§|\bthe seed\b|\bseed's\b|\bseed document\b", re.IGNORECASE)
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [ROOT / name for name in listed.decode().split("\0") if name]
    return [
        path for path in paths if path.is_file() and path != Path(__file__) and b"\0" not in path.read_bytes()
    ]


def test_cites_no_document_outside_the_repository() -> None:
    """The project speaks in its own words: no file (docs, code, rules, dashboards) cites a design
    document it does not hold."""
    found = [
        f"{_name(path)}:{number}: {line.strip()}"
        for path in _tracked_text_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE_CITATION.search(line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_links_within_the_repository_resolve(document: Path) -> None:
    targets = [
        target
        for target in MARKDOWN_LINK.findall(document.read_text(encoding="utf-8"))
        if not re.match(r"[a-z]+:", target)
    ]
    missing = [target for target in targets if not (document.parent / target).exists()]
    assert not missing, missing


def test_the_license_file_is_the_license_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
