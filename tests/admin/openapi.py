"""Real responses checked against docs/admin-api.yaml: each body must match the schema the
document gives for that path, method and status (JSON Schema 2020-12, as OpenAPI 3.1 says)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT = Path(__file__).parents[2] / "docs" / "admin-api.yaml"
BASE = "/.gateway/admin/api"
URN = "urn:gateway:admin-api"


@cache
def document() -> dict[str, Any]:
    loaded = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@cache
def registry() -> Registry[Any]:
    resource = Resource.from_contents(document(), default_specification=DRAFT202012)
    return Registry().with_resource(URN, resource)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def check(path: str, method: str, status: int, body: Any) -> None:
    """Fail unless `body` is what the document says `method path` answers with `status`.
    `path` is the templated path under the API, such as /companies/{company}/members."""
    operation = document()["paths"][path][method.lower()]
    response = operation["responses"][str(status)]
    pointer = f"/paths/{_escape(path)}/{method.lower()}/responses/{status}"
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
        response = document()["components"]["responses"][pointer.rsplit("/", 1)[1]]
    assert "application/json" in response["content"], (path, method, status)
    schema = {"$ref": f"{URN}#{pointer}/content/application~1json/schema"}
    Draft202012Validator(schema, registry=registry()).validate(body)
