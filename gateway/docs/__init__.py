"""The reference for every settings and policy key (docs/settings-reference.md and
docs/policy-reference.md), written from the loaders' own Keys tables and the text of
reference.yaml: `python -m gateway.docs` writes them, `--check` says whether they are current."""
