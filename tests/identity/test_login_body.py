"""The strict login body reader: every refusal rule, the attacks that made the gateway read one
user name while the application read another, and round trips of the canonical re-serialisation
through other parsers (the stdlib, the multipart library, email.parser)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import multipart
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.identity.login_body import (
    MAX_FIELDS,
    LoginBody,
    UnreadableLogin,
    field_reading,
    read_login,
)

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
B = "BOUNDARY"
MP = f"multipart/form-data; boundary={B}"


def form(body: str, query: str = "", field: str | None = "username") -> LoginBody:
    return read_login(FORM, body.encode(), query, username_field=field)


def js(body: str, query: str = "", field: str | None = "username") -> LoginBody:
    return read_login(JSON, body.encode(), query, username_field=field)


def part(name: str, value: str, *headers: str, disposition: str | None = None) -> str:
    head = disposition if disposition is not None else f'form-data; name="{name}"'
    lines = [f"Content-Disposition: {head}", *headers]
    return f"--{B}\r\n" + "\r\n".join(lines) + f"\r\n\r\n{value}\r\n"


def mp_body(*parts: str, end: str = f"--{B}--\r\n") -> bytes:
    return ("".join(parts) + end).encode()


def mp(*parts: str, query: str = "", field: str | None = "username") -> LoginBody:
    return read_login(MP, mp_body(*parts), query, username_field=field)


def refused(
    content_type: str | None,
    body: bytes | str,
    query: str = "",
    field: str | None = "username",
    match: str | None = None,
) -> str:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(UnreadableLogin, match=match) as caught:
        read_login(content_type, raw, query, username_field=field)
    return str(caught.value)


def email_parts(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """Another parser's reading of a multipart body: email.parser from the stdlib."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart() and not message.defects
    parts = []
    for sub in message.iter_parts():
        assert not sub.defects
        name = sub.get_param("name", header="content-disposition")
        assert isinstance(name, str)
        payload = sub.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append((name, payload))
    return parts


def library_parts(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The multipart library's own high-level reading, strict mode."""
    boundary = content_type.split("boundary=", 1)[1].split(";")[0]
    stream = io.BytesIO(body)
    parser = multipart.MultipartParser(stream, boundary, len(body), strict=True)
    return [(p.name, p.value) for p in parser]


# ---------------------------------------------------------------- Content-Type


@pytest.mark.parametrize("content_type", [None, "", "  "])
def test_a_content_type_is_required(content_type: str | None) -> None:
    refused(content_type, "username=alice", match="no Content-Type")


def test_json_without_content_type_is_refused() -> None:
    refused(None, '{"username": "alice"}', match="no Content-Type")


@pytest.mark.parametrize(
    ("content_type", "media"),
    [
        (FORM, FORM),
        ("Application/X-WWW-Form-URLencoded", FORM),
        (JSON, JSON),
        ("APPLICATION/JSON", JSON),
        ("application/vnd.api+json", "application/vnd.api+json"),
        ("application/ld+json", "application/ld+json"),
    ],
)
def test_accepted_media_types(content_type: str, media: str) -> None:
    body = b"username=alice" if media == FORM else b'{"username":"alice"}'
    login = read_login(content_type, body, "", username_field="username")
    assert login.media_type == media
    assert login.content_type == media
    assert login.text("username") == "alice"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/json",
        "application/xml",
        "application/+json",
        "application/json-seq",
        "multipart/mixed; boundary=x",
        "application/x-www-form-urlencoded/x",
        "application",
        "json",
    ],
)
def test_other_media_types_are_refused(content_type: str) -> None:
    refused(content_type, '{"username":"alice"}')


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset",
        "application/json;",
        "application/json;; charset=utf-8",
        "application/json; charset=utf-8;",
        "application/json; charset = utf-8",
        "application/json; charset=utf-8 x",
        'application/json; charset="utf\\-8"',
        'application/json; charset="utf-8',
        "application/json, text/plain",
        "application /json",
        "application/json; charset=utf-8; charset=utf-8",
        "application/json; Charset=utf-8; charset=utf-16le",
        "application/json; charset=ütf-8",
        "application/json\x00; charset=utf-8",
    ],
)
def test_malformed_or_duplicated_parameters_are_refused(content_type: str) -> None:
    refused(content_type, '{"username":"alice"}')


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "Utf-8", '"utf-8"', "utf-8 "])
def test_charset_utf8_is_accepted_and_kept(charset: str) -> None:
    login = read_login(
        f"{FORM}; charset={charset}", b"username=alice", "", username_field="username"
    )
    assert login.content_type == f"{FORM}; charset=utf-8"
    login = read_login(
        f"{JSON};charset={charset}", b'{"username":"alice"}', "", username_field="username"
    )
    assert login.content_type == f"{JSON}; charset=utf-8"


@pytest.mark.parametrize(
    "charset", ["utf8", "utf-16le", "UTF-16", "iso-8859-1", "us-ascii", "utf-7", '""']
)
def test_any_other_charset_is_refused(charset: str) -> None:
    refused(f"{FORM}; charset={charset}", "username=alice", match="charset|malformed")
    refused(
        f"{MP}; charset={charset}", mp_body(part("username", "alice")), match="charset|malformed"
    )


def test_utf16le_body_that_php_would_read_as_another_user_is_refused() -> None:
    # PHP ignores the charset and reads the bytes; Python would decode them as UTF-16LE.
    body = "username=alice".encode("utf-16le")
    refused(f"{FORM}; charset=utf-16le", body, match="charset")
    refused(FORM, body)  # without the charset, the NULs make it neither a form nor UTF-8 text


@pytest.mark.parametrize(
    "content_type",
    [
        f"{FORM}; boundary=x",
        f"{JSON}; version=2",
        f"{JSON}; q=1",
        f"{MP}; name=x",
        f'{MP}; type="text/plain"',
    ],
)
def test_unknown_parameters_are_refused(content_type: str) -> None:
    body = (
        mp_body(part("username", "alice"))
        if "multipart" in content_type
        else b'{"username":"alice"}'
    )
    refused(content_type, body, match="takes no parameter")


@pytest.mark.parametrize(
    ("parameters", "boundary", "match"),
    [
        ("", B, "missing or not RFC 2046"),
        ("; charset=utf-8", B, "missing or not RFC 2046"),
        ('; boundary=""', B, "missing or not RFC 2046"),
        ('; boundary="a@b"', "a@b", "not RFC 2046"),
        ("; boundary=a@b", "a@b", "malformed parameters"),
        ('; boundary="abc "', "abc ", "not RFC 2046"),
        ('; boundary="ab\tc"', "ab\tc", "not RFC 2046"),
        ("; boundary=" + "a" * 71, "a" * 71, "not RFC 2046"),
        ('; boundary="a\\b"', "a\\b", "backslash"),
        (f"; boundary={B}; boundary=other", B, "repeats the parameter"),
        (f"; boundary={B}; Boundary={B}", B, "repeats the parameter"),
    ],
)
def test_bad_multipart_boundary_parameters_are_refused(
    parameters: str, boundary: str, match: str
) -> None:
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--{boundary}--\r\n'
    refused("multipart/form-data" + parameters, body, match=match)


@pytest.mark.parametrize(
    "boundary", ["a" * 70, "'()+_,-./:=?", "a b", "----WebKitFormBoundary7MA4YWxkTrZu0gW"]
)
def test_every_rfc_2046_boundary_is_accepted(boundary: str) -> None:
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--{boundary}--\r\n'
    login = read_login(
        f'multipart/form-data; boundary="{boundary}"', body.encode(), "", username_field="username"
    )
    assert login.text("username") == "alice"


# ---------------------------------------------------------------- the body as text


def test_invalid_utf8_is_refused() -> None:
    refused(JSON, b'{"username":"al\xffice"}', match="not valid UTF-8")
    refused(MP, mp_body(part("username", "alice")).replace(b"alice", b"al\xc3ice"), match="UTF-8")
    refused(FORM, "username=al%FFice", match="not UTF-8")
    refused(FORM, "username=al%C0%AEice", match="not UTF-8")  # an overlong encoding


def test_a_byte_order_mark_is_refused() -> None:
    refused(JSON, b'\xef\xbb\xbf{"username":"alice"}', match="byte order mark")
    refused(FORM, b"\xef\xbb\xbfusername=alice", match="byte order mark")
    refused(MP, b"\xef\xbb\xbf" + mp_body(part("username", "alice")), match="byte order mark")


@pytest.mark.parametrize("name", ["user%00name", "user%01", "a%7F", "a%09b", "a%0Ab", "a%0Db"])
def test_control_characters_in_field_names_are_refused(name: str) -> None:
    refused(FORM, f"username=alice&{name}=1", match="control")


def test_control_characters_in_json_and_multipart_names_are_refused() -> None:
    refused(JSON, '{"username":"alice","user\\u0000name":1}', match="control")
    refused(MP, mp_body(part("username", "alice"), part("a\x01b", "1")), match="control")


def test_control_characters_in_values_are_refused_except_tab_cr_lf() -> None:
    refused(FORM, "username=alice&note=a%00b", match="control")
    refused(JSON, '{"username":"alice","n":"a\\u0001"}', match="control")
    refused(JSON, '{"username":"alice","n\\u0002":1}', match="control")
    login = form("username=alice&note=a%09b%0D%0Ac%0Ad")
    assert login.fields["note"] == "a\tb\r\nc\nd"


def test_the_user_name_holds_no_control_character_at_all() -> None:
    refused(FORM, "username=ali%09ce", match="control")
    refused(FORM, "username=ali%0D%0Ace", match="control")


# ---------------------------------------------------------------- urlencoded


def test_a_form_is_read_and_re_serialised_in_order() -> None:
    login = form("username=alice%40acme.example&password=p%26ss+w%3Drd&b=2&a=1")
    assert dict(login.fields) == {
        "username": "alice@acme.example",
        "password": "p&ss w=rd",
        "b": "2",
        "a": "1",
    }
    assert login.body == b"username=alice%40acme.example&password=p%26ss%20w%3Drd&b=2&a=1"
    assert login.content_type == FORM
    assert login.media_type == FORM


def test_a_semicolon_is_no_separator_and_a_raw_one_is_refused() -> None:
    # Old Python, Rack and Perl's CGI split on ';' too: a raw one would read as two fields there.
    refused(FORM, "username=alice;username=mallory", match="holds a raw ';'")
    login = form("username=alice&note=a%3Bb")
    assert login.fields["note"] == "a;b"
    assert login.body == b"username=alice&note=a%3Bb"


@pytest.mark.parametrize("raw", [" ", "é", "\t", "\x7f"])
def test_characters_browsers_percent_encode_are_refused_raw(raw: str) -> None:
    refused(FORM, f"username=alice&note=a{raw}b", match="holds a raw")


def test_a_bare_key_is_refused_and_an_empty_value_is_read() -> None:
    refused(FORM, "username=alice&remember", match="without '='")
    assert form("username=alice&remember=").fields["remember"] == ""
    assert form("username=alice&remember=").body == b"username=alice&remember="


def test_empty_pairs_are_skipped() -> None:
    login = form("&username=alice&&x=1&")
    assert dict(login.fields) == {"username": "alice", "x": "1"}
    assert login.body == b"username=alice&x=1"
    assert dict(form("", field=None).fields) == {}


def test_plus_is_a_space() -> None:
    login = form("username=alice&pw=a+b%2Bc")
    assert login.fields["pw"] == "a b+c"
    assert login.body == b"username=alice&pw=a%20b%2Bc"


@pytest.mark.parametrize("bad", ["%", "%4", "%zz", "%%41", "a%4g", "%u0041"])
def test_percent_decoding_is_strict(bad: str) -> None:
    refused(FORM, f"username=alice&note={bad}", match="two hex digits")
    refused(FORM, f"username=alice&{bad}=1", match="two hex digits")


def test_a_form_with_an_empty_name_is_refused() -> None:
    refused(FORM, "username=alice&=x", match="empty")


# ---------------------------------------------------------------- names read as one


@pytest.mark.parametrize(
    ("name", "reading"),
    [
        ("username", "username"),
        ("UserName", "username"),
        ("USERNAME", "username"),
        ("user.name", "user_name"),
        ("user name", "user_name"),
        ("user[name", "user_name"),
        ("user_name", "user_name"),
        ("username[]", "username"),
        ("username[x]", "username"),
        ("username[a][b]", "username"),
        ("  username", "username"),
        ("a.b[c", "a_b_c"),
        ("a[b].c", "a"),
        ("Straße", "strasse"),
    ],
)
def test_field_reading(name: str, reading: str) -> None:
    assert field_reading(name) == reading


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("username", "username"),
        ("username", "USERNAME"),
        ("username", "UserName"),
        ("user.name", "user_name"),
        ("user name", "user_name"),
        ("user[name", "user_name"),
        ("username", "username[]"),
        ("username", "username[0]"),
        ("username", " username"),
        ("password", "Password"),
        ("remember.me", "remember_me"),
    ],
)
def test_two_names_one_reading_are_refused_in_every_media_type(first: str, second: str) -> None:
    match = "twice|repeats the key|read as one field"
    refused(FORM, f"{quote(first)}=alice&{quote(second)}=mallory", field=None, match=match)
    refused(
        JSON,
        json.dumps({first: "alice"})[:-1] + "," + json.dumps(second) + ':"mallory"}',
        field=None,
        match=match,
    )
    refused(MP, mp_body(part(first, "alice"), part(second, "mallory")), field=None, match=match)


def test_the_user_name_field_must_be_there_exactly_once() -> None:
    refused(FORM, "password=x", match="missing")
    refused(FORM, "Username=alice", match="missing")  # read the same by ASP.NET, but not the field
    refused(FORM, "user.name=alice", field="user_name", match="missing")
    refused(FORM, "username=alice&username=mallory", match="twice")
    refused(FORM, "username=alice&Username=mallory", match="read as one field")
    refused(FORM, "username=alice&username%5B%5D=mallory", match="read as one field")
    refused(FORM, "user_name=alice&user.name=mallory", field="user_name", match="read as one field")
    refused(JSON, '{"username":"alice","USERNAME":"mallory"}', match="read as one field")


@pytest.mark.parametrize("value", ["", "+++", "%20alice", "alice%20", "%09alice", "a" * 321])
def test_the_user_name_must_be_a_plain_non_empty_string(value: str) -> None:
    refused(FORM, f"username={value}")


def test_user_name_length_limit() -> None:
    assert form("username=" + "a" * 320).text("username") == "a" * 320


@pytest.mark.parametrize(
    "value", ["1", "null", "true", '["alice"]', '{"a":"alice"}', '""', '" alice"']
)
def test_a_json_user_name_must_be_a_string(value: str) -> None:
    refused(JSON, f'{{"username":{value}}}')


def test_text_is_the_value_only_for_strings() -> None:
    login = js('{"username":"alice","n":1,"b":true,"s":"y"}')
    assert login.text("username") == "alice"
    assert login.text("s") == "y"
    assert login.text("n") is None
    assert login.text("b") is None
    assert login.text("missing") is None


def test_without_a_user_name_field_anything_unambiguous_is_read() -> None:
    assert dict(form("a=1&b=2", field=None).fields) == {"a": "1", "b": "2"}


# ---------------------------------------------------------------- JSON


def test_json_is_re_serialised_compactly_in_utf8() -> None:
    login = js(
        '{ "username" : "al\\u00e9ice", "n": 1.50, "e": 1E2, "x": true, "y": null }'
    )
    assert login.body == '{"username":"aléice","n":1.5,"e":100.0,"x":true,"y":null}'.encode()
    assert login.text("username") == "aléice"


def test_duplicate_json_keys_are_refused_at_every_level() -> None:
    refused(JSON, '{"username":"alice","username":"mallory"}', match="repeats the key")
    refused(JSON, '{"username":"alice","profile":{"id":1,"id":2}}', match="repeats the key")
    refused(JSON, '{"username":"alice","a":[{"b":[{"c":1,"c":1}]}]}', match="repeats the key")
    refused(JSON, '{"username":"alice","user\\u006eame":"mallory"}', match="repeats the key")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_refused(constant: str) -> None:
    refused(JSON, f'{{"username":"alice","n":{constant}}}', match="does not allow")


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5e999"])
def test_json_numbers_too_large_for_a_double_are_refused(number: str) -> None:
    refused(JSON, f'{{"username":"alice","n":[{number}]}}', match="too large")


def test_huge_json_integers_are_refused() -> None:
    refused(JSON, '{"username":"alice","n":' + "9" * 5000 + "}", match="cannot be read")


@pytest.mark.parametrize("body", ['["alice"]', '"alice"', "1", "null", ""])
def test_a_json_body_must_be_an_object(body: str) -> None:
    refused(JSON, body)


@pytest.mark.parametrize(
    "body",
    [
        '{"username":"\\ud800x"}',
        '{"username":"alice","n":"\\udfff"}',
        '{"username":"alice","\\ud800":1}',
    ],
)
def test_lone_surrogates_are_refused(body: str) -> None:
    refused(JSON, body, match="cannot be written as UTF-8")


def test_a_surrogate_pair_is_one_character() -> None:
    assert js('{"username":"alice\\ud83d\\ude00"}').text("username") == "alice\U0001f600"


@pytest.mark.parametrize(
    "body",
    [
        '{"username":"alice","session":{"username":"victim"}}',  # Rails' ParamsWrapper
        '{"username":"alice","n":[1]}',
        '{"username":"alice","n":' + "[" * 40 + "]" * 40 + "}",
    ],
)
def test_nested_json_is_refused(body: str) -> None:
    """Only plain values: a framework may read a nested object instead of the top level."""
    refused(JSON, body, match="not a plain value")


def test_too_deep_json_is_refused_not_a_crash() -> None:
    refused(JSON, '{"username":"alice","n":' + "[" * 100_000 + "]" * 100_000 + "}")


def test_malformed_json_is_refused() -> None:
    refused(JSON, '{"username":"alice",}', match="cannot be read")
    refused(JSON, '{"username":"alice"} x', match="cannot be read")


def test_a_json_type_is_forwarded_as_sent() -> None:
    login = read_login(
        "application/vnd.acme+json", b'{"username":"alice"}', "", username_field="username"
    )
    assert login.content_type == "application/vnd.acme+json"
    assert login.media_type == "application/vnd.acme+json"


# ---------------------------------------------------------------- multipart


def test_a_multipart_login_is_read_and_re_serialised_with_a_fresh_boundary() -> None:
    login = mp(
        part("username", "alice"),
        part("password", "pa\r\nss", "Content-Type: text/plain"),
        part("note", "é", "content-type: text/plain; charset=UTF-8"),
    )
    assert dict(login.fields) == {"username": "alice", "password": "pa\r\nss", "note": "é"}
    match = re.fullmatch(r"multipart/form-data; boundary=(login-[0-9a-f]{32})", login.content_type)
    assert match
    fresh = match[1]
    assert (
        login.body
        == (
            f'--{fresh}\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n'
            f'--{fresh}\r\nContent-Disposition: form-data; name="password"\r\n\r\npa\r\nss\r\n'
            f'--{fresh}\r\nContent-Disposition: form-data; name="note"\r\n\r\né\r\n'
            f"--{fresh}--\r\n"
        ).encode()
    )
    again = mp(part("username", "alice"))
    assert again.content_type != login.content_type


def test_multipart_charset_utf8_is_kept() -> None:
    login = read_login(
        f"{MP}; charset=utf-8", mp_body(part("username", "alice")), "", username_field="username"
    )
    assert login.content_type.endswith("; charset=utf-8")


def test_the_closing_boundary_may_lack_its_crlf_but_nothing_else_may_follow() -> None:
    assert mp(part("username", "alice")).text("username") == "alice"
    body = mp_body(part("username", "alice"), end=f"--{B}--")
    assert read_login(MP, body, "", username_field="username").text("username") == "alice"
    for end in (f"--{B}--\r\n\r\n", f"--{B}--x", f"--{B}-- \r\n", f"--{B}--\r\nepilogue"):
        refused(MP, mp_body(part("username", "alice"), end=end), match="after its closing boundary")


def test_an_empty_multipart_form() -> None:
    login = read_login(MP, f"--{B}--\r\n".encode(), "", username_field=None)
    assert dict(login.fields) == {}
    assert login.body.endswith(b"--\r\n") and login.body.startswith(b"--login-")
    refused(MP, f"--{B}--\r\n", match="missing")


ATTACK_VALUE = f'a--{B}\r\nContent-Disposition: form-data; name="username"\r\n\r\nmallory@x'


def test_boundary_in_a_quoted_parameter_and_a_fake_part_in_a_value_are_refused() -> None:
    body = mp_body(
        part("username", "alice", disposition=f'form-data; name="username"; x="--{B}"'),
        part("note", ATTACK_VALUE),
    )
    refused(MP, body)
    # The library alone reads the value as one harmless field; some parsers would start a part
    # at the boundary string, so the gateway refuses it rather than trust every reader to agree.
    refused(
        MP, mp_body(part("username", "alice"), part("note", ATTACK_VALUE)), match="boundary string"
    )
    assert library_parts(MP, mp_body(part("username", "alice"), part("note", ATTACK_VALUE))) == [
        ("username", "alice"),
        ("note", ATTACK_VALUE),
    ]


def test_the_boundary_string_anywhere_inside_a_part_is_refused() -> None:
    refused(MP, mp_body(part("username", "alice"), part("note", f"x{B}y")), match="boundary string")
    refused(
        MP,
        mp_body(part("username", "alice"), part("note", f"\r\n--{B}"[2:])),
        match="boundary string",
    )
    refused(MP, mp_body(part(f"a{B}", "1"), part("username", "alice")), match="boundary string")
    refused(
        MP, mp_body(part("username", "alice", disposition=f'form-data; name="username"; x="--{B}"'))
    )


def test_a_fake_part_inside_a_value_without_the_boundary_stays_one_value() -> None:
    # The harmless reading: one value. The canonical body carries it intact, and another
    # parser reads the same single user name from it.
    fake = 'a--OTHER\r\nContent-Disposition: form-data; name="username"\r\n\r\nmallory@x'
    login = mp(part("username", "alice@acme.example"), part("note", fake))
    assert login.text("username") == "alice@acme.example"
    assert login.fields["note"] == fake
    parts = email_parts(login.content_type, login.body)
    assert [name for name, _ in parts] == ["username", "note"]
    assert dict(parts) == {"username": b"alice@acme.example", "note": fake.encode()}
    assert library_parts(login.content_type, login.body) == [
        ("username", "alice@acme.example"),
        ("note", fake),
    ]


def test_a_part_after_the_closing_boundary_is_refused() -> None:
    body = mp_body(
        part("username", "alice"), end=f"--{B}--\r\n" + part("username", "mallory") + f"--{B}--\r\n"
    )
    refused(MP, body)
    body = mp_body(part("username", "alice"), end=f"--{B}--\r\n" + part("role", "admin"))
    refused(MP, body)


def test_a_preamble_is_refused() -> None:
    refused(
        MP, b"preamble\r\n" + mp_body(part("username", "alice")), match="before its first boundary"
    )
    refused(MP, b"\r\n" + mp_body(part("username", "alice")), match="before its first boundary")
    refused(
        MP,
        (
            part("username", "mallory").replace(f"--{B}", f"--X{B}", 1)
            + part("username", "alice")
            + f"--{B}--"
        ).encode(),
    )


def test_lf_only_line_ends_are_refused() -> None:
    hidden = f'alice\n--{B}\nContent-Disposition: form-data; name="username"\n\nmallory'
    refused(MP, mp_body(part("username", hidden)), match="not CRLF")
    refused(MP, mp_body(part("username", "alice")).replace(b"\r\n", b"\n"))
    refused(MP, mp_body(part("username", "alice"), part("note", "a\nb")), match="not CRLF")
    refused(MP, mp_body(part("username", "alice"), part("note", "a\rb")), match="not CRLF")
    header_lf = (
        f'--{B}\r\nContent-Disposition: form-data; name="username"\nX-A: b\r\n\r\nalice\r\n--{B}--'
    )
    refused(MP, header_lf, match="not CRLF")


@pytest.mark.parametrize(
    ("disposition", "match"),
    [
        ('form-data; name="no\\"te"', "backslash"),
        ('form-data; name="note\\\\"', "backslash"),
        ('form-data; name="no%22te"', "holds '%'"),
        ('form-data; name="no%5Fte"', "holds '%'"),
        ("form-data; name=note", "not one quoted name"),
        ('form-data; name=""', "empty"),
        ("form-data", "Missing name"),
        ('form-data; name="note"; name="x"', "repeats the parameter"),
        ('form-data; name="note"; NAME="x"', "repeats the parameter"),
        ('form-data; name="note"; filename="a.txt"', "carries a file"),
        ("form-data; name=\"note\"; filename*=UTF-8''a.txt", "carries a file"),
        ("form-data; name*=UTF-8''note", "Missing name"),
        ("form-data; name=\"note\"; name*=UTF-8''x", "not one quoted name"),
        ('form-data; name="note"; x=y', "not one quoted name"),
        ('attachment; name="note"', "Wrong type"),
        ('inline; name="note"', "Wrong type"),
        ('form-data; name="note";', "malformed parameters"),
        ('form-data; name="note" x', "malformed parameters"),
        ('form-data; name="no"te"', "malformed parameters"),
        ('form-data name="note"', "Wrong type"),
        ('form-data; name="no\x01te"', "control"),
        ('form-data; name="no\x7fte"', "control"),
    ],
)
def test_a_part_has_one_quoted_name_and_nothing_else(disposition: str, match: str) -> None:
    body = mp_body(part("username", "alice"), part("", "x", disposition=disposition))
    refused(MP, body, match=match)
    good = mp_body(part("username", "alice"), part("note", "x"))
    assert read_login(MP, good, "", username_field="username").fields["note"] == "x"


def test_backslash_escaped_names_are_refused() -> None:
    message = refused(MP, mp_body(part('user\\"name', "mallory"), part("username", "alice")))
    assert "backslash" in message


def test_files_are_refused() -> None:
    body = mp_body(
        part("username", "alice", disposition='form-data; name="username"; filename="u.txt"')
    )
    refused(MP, body, match="carries a file")


def test_part_headers_other_than_disposition_and_type_are_refused() -> None:
    for header in (
        "Content-Transfer-Encoding: base64",
        "Content-Length: 5",
        "X-Foo: bar",
        "Content-ID: <a>",
    ):
        refused(MP, mp_body(part("username", "alice", header)), match="header")


def test_two_dispositions_or_two_types_in_one_part_are_refused() -> None:
    two = mp_body(part("username", "alice", 'Content-Disposition: form-data; name="x"'))
    refused(MP, two, match="one Content-Disposition")
    two = mp_body(part("username", "alice", "Content-Type: text/plain", "Content-Type: text/plain"))
    refused(MP, two, match="one Content-Disposition")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain; charset=utf-16le",
        "text/plain; charset=iso-8859-1",
        "text/plain; format=flowed",
        "application/octet-stream",
        "text/html",
        "application/json",
        'text/plain; charset="utf\\-8"',
    ],
)
def test_a_part_is_text_plain_in_utf8_or_nothing(content_type: str) -> None:
    refused(MP, mp_body(part("username", "alice", f"Content-Type: {content_type}")))


def test_a_name_the_library_reads_differently_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Defence in depth: the gateway's own reading of the part name must be the library's.
    monkeypatch.setattr(multipart, "parse_content_disposition", lambda _: ("form-data", "x", None))
    refused(MP, mp_body(part("username", "alice")), match="read differently")
    monkeypatch.setattr(
        multipart, "parse_content_disposition", lambda _: ("form-data", "username", "f")
    )
    refused(MP, mp_body(part("username", "alice")), match="read differently")


def test_a_charset_field_is_refused() -> None:
    refused(
        MP, mp_body(part("_charset_", "utf-16le"), part("username", "alice")), match="_charset_"
    )
    refused(
        MP, mp_body(part("_CHARSET_", "utf-16le"), part("username", "alice")), match="_charset_"
    )


def test_malformed_part_headers_are_refused() -> None:
    spaced = mp_body(part("username", "alice")).replace(
        b"Content-Disposition:", b"Content-Disposition :"
    )
    refused(MP, spaced, match="header")
    folded = mp_body(part("username", "alice")).replace(
        b'form-data; name="username"', b'form-data;\r\n name="username"'
    )
    refused(MP, folded)
    refused(MP, f"--{B}\r\n\r\nalice\r\n--{B}--\r\n")


def test_a_truncated_multipart_body_is_refused() -> None:
    refused(MP, mp_body(part("username", "alice"), end=""), match="malformed")
    refused(MP, mp_body(part("username", "alice"), end=f"--{B}"))
    refused(MP, b"", match="malformed")


# ---------------------------------------------------------------- the query string


def test_a_user_name_in_the_query_is_refused() -> None:
    refused(FORM, "username=decoy&password=x", query="username=victim", match="query string")
    refused(JSON, '{"username":"decoy"}', query="username=victim", match="query string")
    refused(MP, mp_body(part("username", "decoy")), query="username=victim", match="query string")


@pytest.mark.parametrize(
    "query",
    [
        "username",
        "UserName=victim",
        "next=/&username=victim",
        "next=/;username=victim",
        "username[]=victim",
        "user%6Eame=victim",
        "%20username=victim",
        "password=y",
        "password=x&password=x",
        "Password=x",
        "PASSWORD",
    ],
)
def test_query_keys_read_as_body_fields_are_refused(query: str) -> None:
    refused(FORM, "username=decoy&password=x", query=query, match="query string")


def test_a_query_key_repeating_a_body_field_with_its_very_value_is_read() -> None:
    """DokuWiki's form posts to ?id=start with id=start in the body too: no ambiguity."""
    login = read_login(
        FORM, b"id=start&do=login&u=alice&p=pw", "id=start", username_field="u"
    )
    assert login.text("u") == "alice"


@pytest.mark.parametrize(
    "query", ["user.name=victim", "user+name=victim", "user%20name=v", "User_Name", "user[name=v"]
)
def test_query_keys_read_as_the_user_name_field_are_refused_even_when_absent(query: str) -> None:
    refused(FORM, "user_name=decoy", query=query, field="user_name", match="query string")
    refused(FORM, "login=decoy", query=query, field="user_name")  # missing, or the query


def test_a_plus_in_a_query_key_is_read_both_ways() -> None:
    refused(FORM, "a%2Bb=1", query="a+b=2", field=None, match="query string")
    refused(FORM, "a%20b=1", query="a+b=2", field=None, match="query string")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "next",
        "next=/home&lang=en",
        "next&x",
        "&&",
        "returnUrl=%2Fapp%3Fa%3Db",
        "a=1;b=2",
        "next=/a;b",
    ],
)
def test_unrelated_query_keys_and_bare_keys_are_allowed(query: str) -> None:
    assert form("username=alice&password=x", query=query).text("username") == "alice"


@pytest.mark.parametrize("query", ["next=%zz", "a%", "x=%FF", "next=/ home", "a=é"])
def test_a_query_that_cannot_be_read_strictly_is_refused(query: str) -> None:
    refused(FORM, "username=alice", query=query)


def test_query_keys_are_checked_without_a_user_name_field() -> None:
    refused(FORM, "a=1", query="A=2", field=None, match="query string")


# ---------------------------------------------------------------- size


def test_the_number_of_fields_is_capped() -> None:
    fields = {f"f{i}": "x" for i in range(MAX_FIELDS - 1)}
    ok = urlencode({"username": "alice", **fields})
    assert len(form(ok).fields) == MAX_FIELDS
    refused(FORM, ok + "&extra=1", match="more than")
    refused(JSON, json.dumps({"username": "alice", **fields, "extra": 1}), match="more than")
    parts = [part(name, value) for name, value in {"username": "alice", **fields}.items()]
    assert len(mp(*parts).fields) == MAX_FIELDS
    refused(MP, mp_body(*parts, part("extra", "1")), match="more than|Maximum segment count")
    refused(
        FORM,
        "username=alice",
        query="&".join(f"q{i}" for i in range(MAX_FIELDS + 1)),
        match="more than",
    )


def test_bodies_over_256_kib_are_refused() -> None:
    refused(FORM, "username=alice&pad=" + "x" * 256 * 1024, match="larger than")


# ---------------------------------------------------------------- round trips

_NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029"),
    min_size=1,
    max_size=12,
)
_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs",), blacklist_characters="".join(map(chr, range(0x20)))
    ),
    max_size=20,
)
_LINES = st.lists(_TEXT, min_size=1, max_size=3).map("\r\n".join)


def _by_reading(values: Any) -> Any:
    return st.lists(
        st.tuples(_NAME, values), max_size=12, unique_by=lambda pair: field_reading(pair[0])
    ).map(dict)


# a login's JSON holds plain values only (a nested object could be read instead)
_JSON_VALUE = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _LINES
)


@settings(max_examples=150, deadline=None)
@given(_by_reading(_LINES))
def test_urlencoded_round_trip(fields: dict[str, str]) -> None:
    sent = urlencode(list(fields.items()))  # quote_plus, as browsers send it
    login = read_login(FORM, sent.encode(), "", username_field=None)
    assert dict(login.fields) == fields
    assert parse_qsl(
        login.body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(fields)
    ) == list(fields.items())
    assert (
        dict(read_login(login.content_type, login.body, "", username_field=None).fields) == fields
    )


@settings(max_examples=150, deadline=None)
@given(_by_reading(_JSON_VALUE))
def test_json_round_trip(fields: dict[str, object]) -> None:
    login = read_login(JSON, json.dumps(fields).encode(), "", username_field=None)
    assert dict(login.fields) == fields
    assert json.loads(login.body.decode("utf-8")) == fields
    assert (
        dict(read_login(login.content_type, login.body, "", username_field=None).fields) == fields
    )


_PART_NAME = _NAME.filter(
    lambda name: not {'"', "\\", "%"} & set(name) and field_reading(name) != "_charset_"
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(_PART_NAME, _LINES), max_size=12, unique_by=lambda pair: field_reading(pair[0])
    ).map(dict)
)
def test_multipart_round_trip(fields: dict[str, str]) -> None:
    body = mp_body(*(part(name, value) for name, value in fields.items()))
    login = read_login(MP, body, "", username_field=None)
    assert dict(login.fields) == fields
    assert library_parts(login.content_type, login.body) == list(fields.items())
    if fields:  # email.parser reads a multipart body without parts as no multipart
        assert email_parts(login.content_type, login.body) == [
            (n, v.encode()) for n, v in fields.items()
        ]
    assert (
        dict(read_login(login.content_type, login.body, "", username_field=None).fields) == fields
    )
