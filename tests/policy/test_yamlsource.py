"""YAML with line numbers, and the Reader that turns every problem into one ConfigError."""

import ipaddress
from datetime import timedelta
from pathlib import Path

import yaml

from gateway.yamlsource import (
    ConfigError,
    ConfigInvalid,
    Document,
    Keys,
    Reader,
    load_yaml_file,
    parse_yaml,
)

SAMPLE = """\
company: Acme
members:
  domains:
    - acme.example
    - acme.test
flag: yes
on: true
base: &base {a: 1, b: 2}
derived:
  <<: *base
  b: 3
when: 2024-01-02
"""


def test_values_are_plain_and_every_key_and_value_has_its_line() -> None:
    """Paths index the lines of values and keys, 1-based."""
    document = parse_yaml(SAMPLE, "x.yaml")
    assert document.errors == []
    assert document.data["members"] == {"domains": ["acme.example", "acme.test"]}
    assert document.lines[("members", "domains", 1)] == 5
    assert document.key_lines[("members", "domains")] == 3
    assert document.lines[("members", "domains")] == 4
    assert document.key_line(("company",)) == 1
    assert document.line(("members", "domains", 7)) == 4  # falls back to the nearest ancestor


def test_yes_and_on_stay_text_and_timestamps_stay_text() -> None:
    """Only true/false are booleans (the YAML 1.1 "Norway problem" is avoided)."""
    data = parse_yaml(SAMPLE, "x.yaml").data
    assert data["flag"] == "yes"
    assert data["on"] is True
    assert "on" in data
    assert data["when"] == "2024-01-02"


def test_anchors_aliases_and_merge_keys_work() -> None:
    """A merge key brings the anchored mapping in, and the mapping's own keys win."""
    data = parse_yaml(SAMPLE, "x.yaml").data
    assert data["derived"] == {"a": 1, "b": 3}


def test_duplicate_keys_are_errors_at_the_second_occurrence() -> None:
    """PyYAML would silently keep the last one; we report it."""
    document = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "d.yaml")
    assert [str(error) for error in document.errors] == [
        'd.yaml:4: duplicate key "c" (first given on line 3)',
        'd.yaml:5: duplicate key "a" (first given on line 1)',
    ]
    assert document.data == {"a": 1, "b": {"c": 1}}


def test_syntax_error_reports_the_line_where_parsing_failed() -> None:
    """The syntax error's line is the parser's, and no data comes back."""
    document = parse_yaml("a: 1\nb: [1, 2\nc: 3\n", "s.yaml")
    assert document.data is None
    assert len(document.errors) == 1
    assert document.errors[0].line == 3
    assert document.errors[0].message.startswith("YAML syntax error: ")


def test_unsupported_tags_and_self_referencing_aliases_are_errors() -> None:
    """Python object tags and recursive aliases cannot sneak through."""
    document = parse_yaml("a: !!python/object:os.system x\nb: &b [*b]\n", "t.yaml")
    messages = [error.message for error in document.errors]
    assert any("tag" in message for message in messages)
    assert any("alias" in message for message in messages)


def test_unreadable_files_are_one_error_on_line_zero(tmp_path: Path) -> None:
    """A missing or non-UTF-8 file is reported, not raised."""
    missing = load_yaml_file(tmp_path / "nope.yaml")
    assert missing.data is None
    assert missing.errors[0].line == 0
    assert "cannot read" in missing.errors[0].message
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "UTF-8" in load_yaml_file(binary).errors[0].message


def test_config_error_and_config_invalid_render_file_line_message() -> None:
    """str() is "file:line: message", one error per line."""
    errors = [ConfigError("a.yaml", 3, "first"), ConfigError("b.yaml", 0, "second")]
    assert str(errors[0]) == "a.yaml:3: first"
    invalid = ConfigInvalid(errors)
    assert invalid.errors == errors
    assert str(invalid) == "a.yaml:3: first\nb.yaml:0: second"


def _reader(text: str) -> Reader:
    return Reader(parse_yaml(text, "r.yaml"))


def test_reader_returns_values_or_defaults_and_collects_every_error() -> None:
    """Each typed getter records one plain sentence and carries on with the default."""
    reader = _reader(
        "enforce_2fa: yes\nport: 80a\nname: 123\nkind: vendor\nwait: 2 days\n"
        "nets: [10.0.0.300/8, 10.0.0.1/8, 10.0.0.0/8, 10.0.0.0/8]\nlist: one\n"
    )
    assert reader.boolean(("enforce_2fa",), False) is False
    assert reader.integer(("port",), 8080, 0, 65535) == 8080
    assert reader.string(("name",), "d") == "d"
    assert reader.choice(("kind",), ("partner", "client"), "partner") == "partner"
    assert reader.duration(("wait",), timedelta(hours=1)) == timedelta(hours=1)
    assert reader.networks(("nets",)) == (ipaddress.ip_network("10.0.0.0/8"),)
    assert reader.sequence(("list",)) == []
    assert reader.string(("upstream",), required=True) == ""
    assert [str(error) for error in reader.errors] == [
        'r.yaml:1: enforce_2fa must be true or false, not "yes"',
        'r.yaml:2: port must be a whole number from 0 to 65535, not "80a"',
        "r.yaml:3: name must be text, not 123 (put it in quotes)",
        'r.yaml:4: kind must be one of partner, client, not "vendor"',
        'r.yaml:5: wait must be a duration such as "30m", "48h" or "21d", not "2 days"',
        'r.yaml:6: "10.0.0.300/8" is not an IPv4 or IPv6 network',
        'r.yaml:6: "10.0.0.1/8" has host bits set; did you mean "10.0.0.0/8"?',
        'r.yaml:7: list must be a list, not "one" (write ["one"] for a single item)',
        'r.yaml:1: missing required setting "upstream"',
    ]


def test_reader_single_addresses_are_host_networks() -> None:
    """A bare address means /32 or /128."""
    reader = _reader('nets: [192.0.2.7, "2001:db8::1"]\n')
    assert [str(net) for net in reader.networks(("nets",))] == ["192.0.2.7/32", "2001:db8::1/128"]
    assert reader.errors == []


def test_reader_missing_nested_key_is_reported_at_the_parent_key() -> None:
    """The line is where the enclosing mapping is named."""
    reader = _reader("x: 1\napp:\n  a: 1\n  b: 2\n")
    reader.string(("app", "upstream"), required=True)
    assert [str(error) for error in reader.errors] == [
        'r.yaml:2: missing required setting "app.upstream"'
    ]


def test_reader_empty_required_values_say_so() -> None:
    """A key with no value, or empty text, is "has no value"; a required empty list is named."""
    reader = _reader('company:\nname: ""\nhosts: []\n')
    reader.string(("company",), required=True)
    reader.string(("name",), required=True)
    reader.sequence(("hosts",), required=True)
    assert [str(error) for error in reader.errors] == [
        'r.yaml:1: setting "company" has no value',
        'r.yaml:2: setting "name" has no value',
        "r.yaml:3: hosts must list at least one item",
    ]


def test_reader_unknown_keys_suggest_the_closest_name() -> None:
    """Unknown keys are reported at the key with a "did you mean" when one is close."""
    reader = _reader("enforce2fa: true\nsession:\n  idle: 1\n  zzz: 2\n")
    reader.unknown_keys((), Keys("test", "", ("enforce_2fa", "session")))
    reader.unknown_keys(("session",), Keys("test", "session", ("idle_timeout", "lifetime")))
    assert [str(error) for error in reader.errors] == [
        'r.yaml:1: unknown setting "enforce2fa" (did you mean "enforce_2fa"?)',
        'r.yaml:3: unknown setting "idle" in session (did you mean "idle_timeout"?)',
        'r.yaml:4: unknown setting "zzz" in session',
    ]


def test_reader_over_in_memory_data_reports_line_zero() -> None:
    """Without a file there are no lines: errors carry line 0."""
    reader = Reader(Document("<memory>", {"port": "x", "items": ("a", "b")}))
    assert reader.integer(("port",), 1, 0, 10) == 1
    assert [text for _, text in reader.strings(("items",))] == ["a", "b"]
    assert [str(error) for error in reader.errors] == [
        '<memory>:0: port must be a whole number from 0 to 10, not "x"'
    ]


def test_alias_bombs_are_stopped() -> None:
    """A few lines of nested aliases cannot expand into millions of values."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    document = parse_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert document.data is None
    assert [error.message for error in document.errors] == [
        "the file expands to more than 100000 values through its aliases"
    ]


def test_our_loader_leaves_pyyaml_defaults_alone() -> None:
    """Reading "yes" as text is local to this module."""
    assert yaml.safe_load("a: yes") == {"a": True}
