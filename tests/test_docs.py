"""The documentation speaks for the project: it cites no document outside the repository, its
links within the repository lead somewhere, and the license file is the one pyproject.toml names."""

from __future__ import annotations

import re
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


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_cites_no_document_outside_the_repository(document: Path) -> None:
    found = [
        f"{_name(document)}:{number}: {line.strip()}"
        for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1)
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
