"""A reload parses only the policy files whose content changed: the others' parsed documents are
kept from the last load, by content byte for byte, and only for the files still there."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy import loader
from gateway.policy.loader import load_policy_dir
from gateway.yaml_document import load_yaml_file

COMPANY = "company: {name}\nmembers:\n  domains: [{domain}]\n"


def test_unchanged_files_are_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text(COMPANY.format(name="Acme", domain="acme.example"))
    (tmp_path / "b.yaml").write_text(COMPANY.format(name="Globex", domain="globex.example"))
    load_policy_dir(tmp_path)
    parsed: list[str] = []
    real = loader.load_yaml_file

    def counting(path: Path, cache: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
        before = dict(cache or {})
        document = real(path, cache)
        if before.get(str(path)) is None or before[str(path)][1] is not document:
            parsed.append(path.name)
        return document

    monkeypatch.setattr(loader, "load_yaml_file", counting)
    # the same size, another content: compared byte for byte, not by size or time
    (tmp_path / "b.yaml").write_text(COMPANY.format(name="Globey", domain="globex.example"))
    policy = load_policy_dir(tmp_path)
    assert parsed == ["b.yaml"]
    assert sorted(c.name for c in policy.companies) == ["Acme", "Globey"]
    (tmp_path / "a.yaml").unlink()
    parsed.clear()
    policy = load_policy_dir(tmp_path)
    assert parsed == [] and [c.name for c in policy.companies] == ["Globey"]
    assert sorted(Path(p).name for p in loader._documents) == ["b.yaml"]
    assert sorted(Path(p).name for p in loader._readings) == ["b.yaml"]


def test_a_cached_document_is_the_one_parsed_from_that_content(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text("company: X\n")
    cache: dict = {}  # type: ignore[type-arg]
    first = load_yaml_file(file, cache)
    assert load_yaml_file(file, cache) is first
    file.write_text("company: Y\n")
    second = load_yaml_file(file, cache)
    assert second is not first and second.data == {"company": "Y"}
    file.write_text("company: [\n")  # a syntax error: reported, and as pure a function
    assert load_yaml_file(file, cache).errors
