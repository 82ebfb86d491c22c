"""Cookie header and Set-Cookie parsing tolerant of what real applications send."""

from gateway.cookies import build_cookie_header, parse_cookie_header, parse_set_cookie


def test_cookie_header_round_trip() -> None:
    pairs = parse_cookie_header("a=1; b=two; weird; c=x=y; __Host-s=abc")
    assert pairs == [("a", "1"), ("b", "two"), ("c", "x=y"), ("__Host-s", "abc")]
    assert build_cookie_header(pairs) == "a=1; b=two; c=x=y; __Host-s=abc"


def test_set_cookie_values_and_deletions() -> None:
    now = 1_700_000_000.0
    live = parse_set_cookie("sid=abc; Path=/; HttpOnly; Max-Age=3600", now)
    assert live is not None and live.name == "sid" and live.value == "abc" and not live.deleting
    for raw in (
        "sid=; Path=/",
        'sid=""; Path=/',
        "sid=abc; Max-Age=0",
        "sid=abc; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
    ):
        parsed = parse_set_cookie(raw, now)
        assert parsed is not None and parsed.deleting, raw
    assert parse_set_cookie("garbage", now) is None
    odd = parse_set_cookie("sid=abc; Max-Age=soon; Expires=never", now)
    assert odd is not None and not odd.deleting
