"""parse_yaml reads most files in one pass over libyaml's events (_read_events) and leaves
anything unusual to the node path (_read_nodes), which words every error and bound. The two
must give the same Document, value for value and line for line: these tests compare them on
hand-picked documents and on random ones, and check which path each kind of file takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import scale_policy
from gateway import yaml_document
from gateway.yaml_document import _read_events, _read_nodes, _Unusual, parse_yaml

pytestmark = pytest.mark.skipif(not yaml.__with_libyaml__, reason="the event path needs libyaml")

PLAIN = [
    "",
    "# only a comment\n",
    "---\n",
    "---\nx\n...\n",
    "x",
    "company: Acme\nmembers:\n  domains: [acme.example, 'b.example']\n",
    "a: 1\nb: [x, 'y', true, false, null, ~, 1.5, 0x1f, 0o17, -3, +4, 1_000, 1:30, .inf, .nan]\n",
    "yes: no\non: off\ny: n\nTrue: FALSE\n",
    "when: 2001-12-14t21:59:43.10-05:00\nday: 2002-12-14\n",
    "text: |\n  line one\n  line two\nfolded: >-\n  a\n  b\n",
    '"<<": quoted is a plain key\n',
    "1: number key\nnull: null key\n~: tilde key\n'': empty key\n",
    "- a\n- b: 2\n  c: 3\n- - deep\n  - [1, {x: y}]\n- {}\n- []\n",
    "a:\nb:\n  c:\n",
    "flow: {a: [1, 2, {b: c}], d: e}\n",
    "big: 9223372036854775807\nsmall: -9223372036854775807\n",
    "\ufeffbom: first\n",
    "k: 'it''s'\nq: \"tab\\there\"\n",
]
UNUSUAL = [
    "base: &b {x: 1}\ncopy: *b\n",
    "base: &b {x: 1}\nmerged: {<<: *b, y: 2}\n",
    "a: &x 1\n",
    "a: !!str 1\n",
    "a: !custom x\n",
    "a: !!python/object/apply:os.system ['true']\n",
    "a: [!!set {x}]\n",
    "a: 1\na: 2\n",
    "? [a, b]\n: c\n",
    "? {a: b}\n: c\n",
    "a: 0x" + "f" * 40 + "\n",
    "a: 9223372036854775808\n",
    "a: !!int x\n",
    "a: =\n",
    "a: <<\n",
    "<<: {x: 1}\n",
    "first\n---\nsecond\n",
    "a: [\n",
    "a: b: c\n",
    ": no key\n",
    "\tx: 1\n",
    "a: &a [*a]\n",
    "a: " + "[" * 70 + "]" * 70 + "\n",
    "[" * 100_000,
    "{a: " * 20_000,
    "- " * 100 + "x\n",
    "a: [" + ", ".join(["1"] * (yaml_document._MAX_VALUES + 1)) + "]\n",
]


def assert_same(text: str) -> yaml_document.Document:
    fast, full = parse_yaml(text, "f.yaml"), _read_nodes(text, "f.yaml")
    assert fast == full
    assert list(fast.lines) == list(full.lines)
    assert list(fast.key_lines) == list(full.key_lines)
    return fast


@pytest.mark.parametrize("text", PLAIN)
def test_plain_data_is_read_from_events_as_the_node_path_reads_it(text: str) -> None:
    assert _read_events(text, "f.yaml") == _read_nodes(text, "f.yaml")
    assert_same(text)


@pytest.mark.parametrize("text", UNUSUAL, ids=lambda text: repr(text[:30]))
def test_anything_unusual_is_left_to_the_node_path(text: str) -> None:
    with pytest.raises((_Unusual, yaml.YAMLError)):
        _read_events(text, "f.yaml")
    assert_same(text)


def test_nesting_within_the_limit_is_read_from_events_and_beyond_it_is_refused() -> None:
    limit = yaml_document._MAX_DEPTH
    within = "[" * limit + "]" * limit
    assert _read_events(within, "f.yaml") == _read_nodes(within, "f.yaml")
    beyond = "[" * (limit + 1) + "]" * (limit + 1)
    with pytest.raises(_Unusual):
        _read_events(beyond, "f.yaml")
    assert [error.message for error in parse_yaml(beyond, "f.yaml").errors] == [
        f"values are nested more than {limit} levels deep"
    ]
    keyed = "".join("  " * level + "k:\n" for level in range(limit)) + "  " * limit + "x: 1\n"
    assert parse_yaml(keyed, "f.yaml").errors  # a key one level too deep counts too
    assert_same(keyed)


def test_a_megabyte_of_opening_brackets_is_an_error_not_a_crash() -> None:
    document = parse_yaml("[" * (1024 * 1024 - 1), "f.yaml")
    assert [error.message for error in document.errors] == [
        f"values are nested more than {yaml_document._MAX_DEPTH} levels deep"
    ]


def test_the_benchmark_policy_files_take_the_event_path() -> None:
    for text in scale_policy.policy_files(20, 50, 3).values():
        assert _read_events(text, "f.yaml") == _read_nodes(text, "f.yaml")


SOUP = [
    "&a ", "*a", "<<: *a\n", "? ", ": ", "- ", "{", "}", "[", "]", ",", "#", "\n", "  ", "'",
    '"', "|\n", ">-\n", "---\n", "!!str ", "!!int ", "!x ", "1e9", "0x1f", "~", "null", "yes",
    "true", "key", "a: 1\n", "b:\n  - x\n", "2001-12-14", "=", "<<", "é", "\t", "9" * 30,
]  # fmt: skip
KEYS = st.sampled_from(["a", "b", "<<", "1", "", "yes", "null", "~"]) | st.text(max_size=6)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)
RANDOM = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@RANDOM
@given(st.lists(st.sampled_from(SOUP), max_size=30).map("".join))
def test_token_soup_reads_the_same_either_way(text: str) -> None:
    assert_same(text)


@RANDOM
@given(STRUCTURES, st.sampled_from([None, True, False]))
def test_dumped_structures_read_the_same_either_way(data: Any, flow: bool | None) -> None:
    assert_same(yaml.safe_dump(data, allow_unicode=True, default_flow_style=flow))


@pytest.mark.parametrize("tag", ["int", "float", "bool"])
def test_an_empty_number_is_an_error_not_a_crash(tag: str) -> None:
    document = assert_same(f"a: !!{tag}\n")  # PyYAML's readers raised IndexError on ""
    kind = yaml_document._NUMBER_KINDS[tag]
    assert [(error.line, error.message) for error in document.errors] == [
        (1, f'"" cannot be read as {kind}')
    ]


def test_a_fifo_in_a_files_place_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """Review finding: a FIFO renamed over a policy file after the directory was listed held
    the reading thread for ever (and, during a reload, the collector paused). It is opened
    without blocking and refused as no regular file; run in a child so a hang fails the test."""
    fifo = tmp_path / "acme.yaml"
    os.mkfifo(fifo)
    code = (
        "import sys; from pathlib import Path; from gateway.yaml_document import load_yaml_file;"
        f" print(load_yaml_file(Path({str(fifo)!r})).errors[0].message)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=True
    )
    assert "not a regular file" in done.stdout
