"""Pages render with no file left to open (issue 15, item 8): templates are compiled at start,
so the first error page under descriptor exhaustion is a page, not a bare 500."""

from __future__ import annotations

import errno
import resource
from typing import Any

import pytest

from gateway.pages import Pages
from gateway.server import raise_open_file_limit


def test_every_template_renders_without_opening_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = Pages()

    def no_descriptors(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(pages.env.loader, "get_source", no_descriptors)
    monkeypatch.setattr("builtins.open", no_descriptors)
    answer = pages.render("error.html", status=502, title="t", message="m", next_step="n", link="/")
    assert answer.status == 502 and "<html" in (answer.text or "")


def test_the_open_file_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        raise_open_file_limit()
        now, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert now >= lowered
        if hard != resource.RLIM_INFINITY:
            assert now == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
