"""The settings and policy reference in docs/ cannot drift from the loaders: every key a loader
accepts is documented, every documented key is accepted, and the files are what the generator
writes now (python -m gateway.docs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.docs.reference import DOCS, FILES, SCHEMAS, accepted, documentation, main, render
from gateway.settings.load import settings_from_dict
from gateway.yamlsource import TABLES, ConfigInvalid


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_key_the_loader_accepts_is_documented(schema: str) -> None:
    """A key in a loader's Keys table without an entry in gateway/docs/reference.yaml fails."""
    missing = [key for key in accepted(schema) if key not in documentation()[schema]]
    assert missing == [], f"add these {schema} keys to gateway/docs/reference.yaml"


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_documented_key_is_accepted(schema: str) -> None:
    """An entry of reference.yaml that no loader accepts (a removed or misspelt key) fails."""
    unknown = [key for key in documentation()[schema] if key not in accepted(schema)]
    assert unknown == [], f"no loader accepts these {schema} keys"


def test_the_reference_files_are_current() -> None:
    """docs/settings-reference.md and docs/policy-reference.md are what the generator writes
    from the loaders and reference.yaml now; run python -m gateway.docs after a change."""
    docs = documentation()
    for file in FILES:
        written = (DOCS / file).read_text(encoding="utf-8")
        assert written == render(file, docs), f"docs/{file} is stale: run python -m gateway.docs"


def test_the_check_command_says_stale_and_the_writer_makes_current(tmp_path: Path) -> None:
    """`python -m gateway.docs --check` exits 1 on a missing or old file; writing mends it."""
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    assert main(["--docs", str(tmp_path)]) == 0
    assert main(["--check", "--docs", str(tmp_path)]) == 0
    assert main(["--check"]) == 0


def test_the_tables_are_the_ones_the_loader_checks() -> None:
    """A key absent from the tables is refused by the loader itself: the reference documents
    the validator's own schema, not a copy of it."""
    with pytest.raises(ConfigInvalid, match='unknown setting "hostt" in listen'):
        settings_from_dict(
            {"listen": {"hostt": "x"}, "secrets": {}, "applications": {}}, Path("s.yaml")
        )
    assert any(table.where == "listen" and "host" in table.names for table in TABLES)


def test_former_names_are_not_documented_as_keys() -> None:
    """Names kept only to be refused with their new form are not in the key lists."""
    retired = {name for table in TABLES if table.retired for name in table.names}
    assert retired
    assert not retired & {key.rsplit(".", 1)[-1] for key in accepted("settings")}


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_between_the_documents_lead_somewhere() -> None:
    """Every relative link of README.md, SECURITY.md and docs/*.md names a file that exists, and
    an anchor into a Markdown file names one of its headings (reference material moved from the
    README into docs/ must not leave links behind)."""
    root = DOCS.parent
    broken = []
    for page in [root / "README.md", root / "SECURITY.md", *sorted(DOCS.glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file) if file else page
            if not path.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and path.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
                if anchor not in {_slug(heading) for heading in headings}:
                    broken.append(f"{page.name}: {target}")
    assert broken == []
