"""The OpenAPI document, derived from the event contract: every event and field described, with an
example the exporter accepts."""

from __future__ import annotations

import re

import msgspec
import pytest

from app.events import EVENTS
from app.openapi import components, declared_for, example
from tests.conftest import Exporter, make_exporter


@pytest.mark.parametrize("struct", EVENTS, ids=lambda struct: struct.__name__)
def test_the_documented_example_is_accepted_and_applied(struct: type) -> None:
    event = example(struct)
    for exporter in make_exporter(custom_metrics=declared_for(event)):
        response = exporter.post(event)
        assert response.status_code == 200, response.text
        assert response.json()["by_type"] == {struct.type: 1}


def test_every_field_of_every_event_has_a_description_and_an_example() -> None:
    schemas = components()
    for struct in EVENTS:
        schema = schemas[struct.__name__]
        assert schema["description"] and schema["examples"], struct.__name__
        for name, field in schema["properties"].items():
            assert field.get("description"), f"{struct.__name__}.{name}"
            if name not in ("type", "action") or struct.action_name is None:
                assert field.get("examples") or name in ("type", "action"), f"{struct.__name__}.{name}"
        assert {f.name for f in msgspec.structs.fields(struct)} | {"type"} == set(schema["properties"])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_render_without_internet_access(exporter: Exporter, page: str) -> None:
    """Every script, style and icon of the docs pages comes from the exporter itself."""
    html = exporter.client.get(page).text
    assert not re.search(r"https?:|[\"'(=]\s*//", html), "the page loads something from another host"
    referenced = re.findall(r"""(?:src|href|spec-url)="([^"]+)"|url: '([^']+)'""", html)
    paths = {path for pair in referenced for path in pair if path}
    assert {"/openapi.json"} < paths
    for path in paths:
        answer = exporter.client.get(path)
        assert answer.status_code == 200 and len(answer.content) > 100, path
