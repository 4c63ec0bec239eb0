"""The real analytics.js 2.0 in headless Chromium, loaded from another origin than the registry's, configured
only as README's SDK set-up says: settings from the registry (cdnURL), events to it (apiHost)."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from browser import chromium, needs_chromium
from helpers import CLIENT_KEY, INVALID_KEY, TEST_EVENT, TRACKING_PLAN_SCHEMAS, VALID_KEY, make_registry
from js_sdks import BROWSER_BUNDLE, install
from local_support import assert_judged_by_name, serve

pytestmark = needs_chromium
# Enough page time for the settings fetch, the preflights and the posts (virtual: no real waiting).
PAGE_SECONDS = 15
# The page's title says how the calls ended, so --dump-dom can report it.
PAGE = """<!doctype html>
<html><head><title>loading</title><script src="/analytics.js"></script></head><body><script>
const registry = REGISTRY;
AnalyticsNext.AnalyticsBrowser.load(
  { writeKey: WRITE_KEY, cdnURL: 'http://' + registry },
  { integrations: { 'Segment.io': { apiHost: registry + '/v1', protocol: 'http' } } },
).then(([analytics]) => Promise.all(CALLS.map(([method, args]) => analytics[method](...args))))
 .then(() => { document.title = 'done' }, (error) => { document.title = 'failed: ' + error })
</script></body></html>
"""


@contextmanager
def web_page(html: str, bundle: bytes) -> Iterator[str]:
    """The app's own origin, serving its page and analytics.js (as Segment's CDN would)."""

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = (bundle, "application/javascript") if self.path == "/analytics.js" else (html.encode(), "text/html")
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def bundle() -> bytes:
    install()
    return gzip.decompress(BROWSER_BUNDLE.read_bytes())


def run_page(tmp_path: Path, bundle: bytes, registry_url: str, calls: list) -> str:
    html = (PAGE.replace("REGISTRY", json.dumps(registry_url.removeprefix("http://")))
            .replace("WRITE_KEY", json.dumps(CLIENT_KEY)).replace("CALLS", json.dumps(calls)))
    with web_page(html, bundle) as page_url:
        return chromium(tmp_path, page_url, "--dump-dom", virtual_seconds=PAGE_SECONDS)


def test_analytics_js_sends_through_the_registry(tmp_path, bundle, segment):
    """Settings, CORS preflights (1.84 sends Authorization) and the one-letter paths all work cross-origin."""
    calls = [
        ["track", ["Test Event", {"schema_id": TEST_EVENT, "test_property": "ok"}, {"messageId": "ajs-valid"}]],
        ["track", ["Test Event", {"schema_id": TEST_EVENT, "test_property": 5}, {"messageId": "ajs-invalid"}]],
        ["identify", ["u1", {"schema_id": "jaffle_shop/Identify/1-0.json", "email": "a@b.co"}, {"messageId": "ajs-identify"}]],
        ["page", ["Docs", "Home", {"schema_id": "jaffle_shop/Page_Viewed/1-0.json"}, {"messageId": "ajs-page"}]],
    ]
    with serve(make_registry(segment.url, REGISTRY_WRITE_KEYS=CLIENT_KEY)) as registry_url:
        dom = run_page(tmp_path, bundle, registry_url, calls)
    assert "<title>done</title>" in dom
    assert sorted(segment.message_ids(VALID_KEY)) == ["ajs-identify", "ajs-page", "ajs-valid"]
    [invalid] = segment.events(INVALID_KEY)
    assert (invalid["messageId"], invalid["properties"]["validation_errors"]) == (
        "ajs-invalid", ["$.properties.test_property must be string"])
    assert invalid["context"]["library"]["name"] == "analytics.js"
    assert "writeKey" not in invalid  # analytics.js puts the inbound key in every event


def test_analytics_js_with_a_key_not_on_the_allowlist_delivers_nothing(tmp_path, bundle, segment):
    """The settings fetch is refused with the rest: nothing reaches Segment from an unknown key."""
    calls = [["track", ["Test Event", {"schema_id": TEST_EVENT, "test_property": "ok"}]]]
    with serve(make_registry(segment.url, REGISTRY_WRITE_KEYS="another-key")) as registry_url:
        dom = run_page(tmp_path, bundle, registry_url, calls)
    # The page ran analytics.js, and its load failed on the registry's answer, not on anything else.
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title and title[1].startswith("failed: "), dom[:500]
    assert '"code": "unauthorized"' in title[1], title[1]
    assert segment.received == []


def test_analytics_js_against_a_tracking_plan_without_schema_ids(tmp_path, bundle, segment):
    """An app that never heard of schema_id: each call is judged by its name and event_version."""
    v2 = {"context": {"protocols": {"event_version": 2}}}
    calls = [
        ["track", ["Order Completed", {"order_id": "o1", "revenue": 9.5}, {"messageId": "ajs-v1"}]],
        ["track", ["Order Completed", {"order_id": "o2", "total": 9.5, "currency": "USD"}, {"messageId": "ajs-v2", **v2}]],
        ["track", ["Order Completed", {"order_id": "o3", "revenue": 9.5}, {"messageId": "ajs-v2-invalid", **v2}]],
        ["track", ["Order Shipped", {}, {"messageId": "ajs-unplanned"}]],
        ["identify", ["u1", {"email": "a@b.co"}, {"messageId": "ajs-identify"}]],
        ["group", ["g1", {"name": "Acme"}, {"messageId": "ajs-group"}]],
        ["page", ["Docs", "Home", {}, {"messageId": "ajs-page"}]],
    ]
    with serve(make_registry(segment.url, TRACKING_PLAN_SCHEMAS, REGISTRY_WRITE_KEYS=CLIENT_KEY)) as registry_url:
        dom = run_page(tmp_path, bundle, registry_url, calls)
    assert "<title>done</title>" in dom
    assert_judged_by_name(segment, "ajs")
