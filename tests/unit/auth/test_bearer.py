from __future__ import annotations

import azure.functions as func
import pytest

from shared.auth.bearer import MAX_AUTHORIZATION_BYTES, extract_bearer_token
from shared.auth.rejected import TokenRejected

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def request(
    headers: dict[str, str] | None = None, url: str = "http://h/api/x", **params: str
) -> func.HttpRequest:
    return func.HttpRequest("GET", url, headers=headers or {}, params=params, body=b"")


def reason(req: func.HttpRequest) -> str:
    with pytest.raises(TokenRejected) as caught:
        extract_bearer_token(req)
    return caught.value.reason


def test_extracts_a_well_formed_bearer_token() -> None:
    assert extract_bearer_token(request({"Authorization": f"Bearer {TOKEN}"})) == TOKEN
    assert extract_bearer_token(request({"authorization": f"Bearer {TOKEN}"})) == TOKEN  # header names fold


def test_token_in_the_raw_url_query_is_refused_even_if_params_are_empty() -> None:
    req = request({"Authorization": f"Bearer {TOKEN}"}, url=f"http://h/api/x?a=1&Access_Token={TOKEN}")
    assert reason(req) == "query_token"


@pytest.mark.parametrize(
    "name", ["access_token", "ACCESS_TOKEN", "id_token", "token", "jwt", "authorization"]
)
def test_token_named_query_parameters_are_refused(name: str) -> None:
    assert reason(request({"Authorization": f"Bearer {TOKEN}"}, **{name: "x"})) == "query_token"


def test_ordinary_query_parameters_are_fine() -> None:
    req = request({"Authorization": f"Bearer {TOKEN}"}, keyJson="a.b", page="2")
    assert extract_bearer_token(req) == TOKEN


def test_size_limit_is_on_the_whole_header() -> None:
    fits = "Bearer " + "a." + "b" * (MAX_AUTHORIZATION_BYTES - 11) + ".c"
    assert len(fits) == MAX_AUTHORIZATION_BYTES
    assert extract_bearer_token(request({"Authorization": fits}))
    assert reason(request({"Authorization": fits + "c"})) == "oversized"
    assert reason(request({"Authorization": "Bearer " + "é" * MAX_AUTHORIZATION_BYTES})) == "oversized"


@pytest.mark.parametrize(
    "value",
    [
        f"Bearer {TOKEN}\r\n",
        f"Bearer\u00a0{TOKEN}",
        f"Bearer {TOKEN}\u200b",
        f"Bearer {TOKEN[:-4]}",
        "Bearer a..c",
    ],
)
def test_unusual_whitespace_and_shapes_are_refused(value: str) -> None:
    assert reason(request({"Authorization": value})) in {"scheme", "shape"}
