"""routes.match: every path a Segment SDK posts or fetches, under any stage or custom-domain prefix, and nothing else."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflekt_registry.errors import MethodNotAllowedError, NotFoundError
from reflekt_registry.routes import Action, Route, match

PREFIXES = ["", "/prod", "/api/validate/segment"]
# Written out rather than read from routes.py, so a wrong entry there fails here.
CALL_PATHS = {
    "batch": Route(Action.BATCH),
    "b": Route(Action.BATCH),
    "m": Route(Action.METRICS),
    **{
        name: Route(Action.SINGLE, call_type=call_type)
        for call_type in ("track", "identify", "page", "screen", "group", "alias")
        for name in (call_type, call_type[0])
    },
}
SETTINGS_PATHS = [
    ("/v1/projects/WK_BROWSER/settings", "WK_BROWSER", ""),
    ("/projects/WK_BROWSER/settings", "WK_BROWSER", ""),
    ("/v1/projects/wk-1/settings/", "wk-1", ""),
    ("/prod/v1/projects/wk-1/settings", "wk-1", "/prod"),
    ("/prod/projects/wk-1/settings", "wk-1", "/prod"),
    ("/api/validate/segment/v1/projects/wk-1/settings", "wk-1", "/api/validate/segment"),
]
KNOWN_PATHS = [f"{prefix}/v1/{name}" for prefix in PREFIXES for name in CALL_PATHS] + [path for path, _, _ in SETTINGS_PATHS]


@pytest.mark.parametrize("trailing", ["", "/"], ids=["bare", "trailing-slash"])
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("name", sorted(CALL_PATHS))
def test_sdk_call_paths_route_under_any_prefix(name, prefix, trailing):
    """POST to .../v1/<name>, with or without a prefix or trailing slash, routes by the last segment alone."""
    assert match("POST", f"{prefix}/v1/{name}{trailing}") == CALL_PATHS[name]


@pytest.mark.parametrize("path,write_key,prefix", SETTINGS_PATHS)
def test_settings_path_carries_the_write_key_and_prefix(path, write_key, prefix):
    """GET .../projects/<key>/settings, with or without /v1, yields the key and what precedes it."""
    assert match("GET", path) == Route(Action.SETTINGS, write_key=write_key, prefix=prefix)


@pytest.mark.parametrize("path", KNOWN_PATHS)
def test_options_on_any_known_path_is_a_preflight(path):
    """OPTIONS on any served path is answered as a CORS preflight, whatever method the path otherwise takes."""
    assert match("OPTIONS", path) == Route(Action.PREFLIGHT)


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("GET", "/v1/batch", "POST"),
        ("PUT", "/prod/v1/t", "POST"),
        ("DELETE", "/v1/m", "POST"),
        ("post", "/v1/b", "POST"),
        ("POST", "/v1/projects/wk-1/settings", "GET"),
        ("HEAD", "/prod/projects/wk-1/settings", "GET"),
    ],
)
def test_wrong_method_on_a_known_path_is_405_naming_path_and_allowed_method(method, path, allowed):
    """A served path with the wrong method is a 405 that names the method, the path and the method to use."""
    with pytest.raises(MethodNotAllowedError) as excinfo:
        match(method, path)
    assert excinfo.value.status == HTTPStatus.METHOD_NOT_ALLOWED
    assert str(excinfo.value) == f"{method} is not allowed on {path!r}; use {allowed}"


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize(
    "path",
    ["", "/", "/v1", "/v1/", "/batch", "/v2/batch", "/v1/batches", "/v1/tr", "/v1/x", "/xv1/batch", "/v1/batch/extra",
     "/V1/BATCH", "/v1/batch//", "/v1/projects//settings", "/v1/projects/wk-1", "/v1/projects/wk-1/settings/extra"],
)
def test_unknown_path_is_404_naming_the_path(method, path):
    """Any other path is a 404 naming it, whatever the method."""
    with pytest.raises(NotFoundError) as excinfo:
        match(method, path)
    assert excinfo.value.status == HTTPStatus.NOT_FOUND
    assert str(excinfo.value).startswith(f"no route for {path!r}; ")


METHODS = st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "HEAD", "post"]) | st.text(max_size=8)
# Pure noise rarely lands on a real route, so half the paths are a known tail under a random prefix.
PATHS = st.text() | st.builds(
    lambda prefix, tail, slash: prefix + tail + slash,
    st.text(max_size=20),
    st.sampled_from(["/v1/" + name for name in CALL_PATHS] + ["/v1/projects/k/settings", "/projects/k/settings"]),
    st.sampled_from(["", "/", "//", "x"]),
)


@settings(max_examples=500, deadline=None, database=None)
@given(method=METHODS, path=PATHS)
def test_match_returns_a_consistent_route_or_a_routing_error(method, path):
    """For any method and path, match() returns a Route consistent with the method, or raises a 404 or 405: nothing else."""
    try:
        route = match(method, path)
    except (NotFoundError, MethodNotAllowedError) as e:
        assert e.status in (HTTPStatus.NOT_FOUND, HTTPStatus.METHOD_NOT_ALLOWED)
        assert repr(path) in str(e)
        return
    assert isinstance(route, Route)
    assert (route.action is Action.PREFLIGHT) == (method == "OPTIONS")
    if route.action is Action.SETTINGS:
        assert method == "GET" and route.write_key and "/" not in route.write_key
    elif route.action is not Action.PREFLIGHT:
        assert method == "POST"
        assert (route.call_type is not None) == (route.action is Action.SINGLE)
