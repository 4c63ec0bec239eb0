"""The inspection page in a real headless Chromium: its rendered DOM after the scripts ran, and a screenshot."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from browser import WINDOW, chromium, needs_chromium
from helpers import (IOS_KEY, TEST_EVENT, TRACKING_PLAN_SCHEMAS, WEB_KEY, api_event, basic, config_file, make_registry,
                     sources_registry, track)
from local_support import call, send, serve
from reflekt_registry.local.inspection import RecentEvents

pytestmark = needs_chromium
ORDER = "jaffle_shop/Order_Completed/1-0.json"
# Solid fills from page.html's stylesheet: the header bar and the per-schema bars.
HEADER_RGB = (0x1F, 0x29, 0x37)
VALID_BAR_RGB = (0x16, 0xA3, 0x4A)
INVALID_BAR_RGB = (0xDC, 0x26, 0x26)


def rendered(tmp_path: Path, url: str) -> Node:
    builder = TreeBuilder()
    builder.feed(chromium(tmp_path, url + "/registry/", "--dump-dom"))
    return builder.root


class Node:
    def __init__(self, tag: str, attrs: list[tuple[str, str | None]]):
        self.tag = tag
        self.attrs = {name: value or "" for name, value in attrs}
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text for child in self.children)

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if ((tag is None or child.tag == tag) and (cls is None or cls in child.attrs.get("class", "").split())
                        and all(child.attrs.get(name.replace("_", "-")) == value for name, value in attrs.items())):
                    found.append(child)
                found += child.all(tag, cls, **attrs)
        return found

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        [found] = self.all(tag, cls, **attrs)
        return found


class TreeBuilder(HTMLParser):
    """Chromium's --dump-dom serialises every element with its end tag, so a stack is enough."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", [])
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, attrs)
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def order(**properties) -> dict:
    return {"type": "track", "event": "Order Completed", "userId": "u1",
            "properties": {"schema_id": ORDER, "order_id": "o1", "revenue": 5, "currency": "EUR",
                           "products": [{"product_id": "p1", "price": 5, "quantity": 1}], **properties}}


@pytest.fixture
def url(tmp_path):
    with serve(make_registry(EVENTS_DIR=str(tmp_path / "events"))) as base_url:
        yield base_url


def test_the_page_shows_the_counts_and_each_violation_with_its_path_and_message(url, tmp_path):
    """Events sent before the page loaded: totals, a row per schema, and every violation of each event."""
    send(url, track(test_property="ok"), track(test_property=3), order(revenue=-1, currency="JPY"))
    page = rendered(tmp_path, url)
    assert [page.one(id=name).text for name in ("total", "valid", "invalid")] == ["3", "1", "2"]
    rows = {row.attrs["data-schema"]: (row.one("td", cls="valid").text, row.one("td", cls="invalid").text)
            for row in page.one(id="schemas").all("tr") if "data-schema" in row.attrs}
    assert rows == {TEST_EVENT: ("1", "1"), ORDER: ("0", "1")}
    items = [item for item in page.one(id="events").all("li") if "data-id" in item.attrs]
    assert sorted(item.attrs["class"] for item in items) == ["invalid", "invalid", "valid"]
    violations = {item.one(cls="name").text: [(v.one(cls="path").text, v.one(cls="message").text) for v in item.one("ul").all("li")]
                  for item in items if item.attrs["class"] == "invalid"}
    assert violations == {
        "Test Event": [("$.properties.test_property", "$.properties.test_property must be string")],
        "Order Completed": [("$.properties.revenue", "$.properties.revenue must be bigger than or equal to 0"),
                            ("$.properties.currency", "$.properties.currency must be one of ['USD', 'EUR', 'GBP']")],
    }
    assert page.one(id="connection").text.startswith("live")


def test_with_sources_the_page_offers_each_and_names_every_events(tmp_path):
    """The source filter lists the sources that sent events; each event says which source it came from."""
    with serve(sources_registry(tmp_path)) as url:
        for key, value in ((WEB_KEY, "ok"), (IOS_KEY, 3)):
            status, _, _ = call(url + "/v1/batch", "POST", {"batch": [track(test_property=value)]}, {"Authorization": basic(key)})
            assert status == 200
        page = rendered(tmp_path, url)
    assert [option.text for option in page.one(id="source-filter").all("option")] == ["any", "ios", "web"]
    items = [item for item in page.one(id="events").all("li") if "data-id" in item.attrs]
    assert sorted((item.one(cls="source").text, item.attrs["class"]) for item in items) == [("ios", "invalid"), ("web", "valid")]


def test_event_content_is_shown_as_text_never_run_as_markup(url, tmp_path):
    """Names and values full of HTML appear literally; nothing in them becomes an element or runs."""
    name = "<img src=x onerror=\"document.body.dataset.pwned=1\">"
    send(url, {"type": "track", "event": name, "userId": "u1", "properties": {"test_property": "</pre><script>document.body.dataset.pwned=2</script>"}})
    page = rendered(tmp_path, url)
    assert page.one(cls="name").text == name
    assert "</pre><script>" in page.one("pre").text
    assert page.all("img") == [] and len(page.all("script")) == 1
    assert "data-pwned" not in page.one("body").attrs


def test_the_page_shows_events_that_arrive_after_it_loaded(tmp_path):
    """The page polls: an event sent once the page had fetched the (empty) list still appears, without a reload."""
    registry = make_registry(EVENTS_DIR=str(tmp_path / "events"))

    class SendAfterFirstLook(RecentEvents):
        first_look: list | None = None

        def matching(self, **filters):
            found = super().matching(**filters)
            if self.first_look is None:
                self.first_look = found
                registry.handle(api_event({"batch": [track(test_property=3, message_id="late")]}))
            return found

    recent = SendAfterFirstLook()
    with serve(registry, recent) as url:
        page = rendered(tmp_path, url)
    assert recent.first_look == []
    assert page.one(id="invalid").text == "1"
    assert page.one(cls="path").text == "$.properties.test_property"


def test_the_screenshot_is_the_rendered_page(url, tmp_path):
    """A broken stylesheet, script or API shows here: the header and both colours of the schema bars must be drawn."""
    send(url, track(test_property="ok"), track(test_property=3))
    png = tmp_path / "page.png"
    chromium(tmp_path, url + "/registry/", f"--screenshot={png}")
    width, height, pixels = read_png(png)
    assert (width, height) == WINDOW, png
    colours = Counter(pixels)
    assert colours[HEADER_RGB] > width * 40, f"no header bar in {png}"
    assert colours[VALID_BAR_RGB] > 500 and colours[INVALID_BAR_RGB] > 500, f"no schema bars in {png}"
    assert len(colours) > 100, f"{png} has {len(colours)} colours: is any text drawn?"


def read_png(path: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG, such as Chromium writes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    position, compressed = 8, []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length  # length, type, body, CRC
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, colour_type in (2, 6), interlace) == (8, True, 0), f"unsupported PNG layout in {path}"
        elif kind == b"IDAT":
            compressed.append(body)
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(b"".join(compressed))
    stride = width * channels
    previous = bytearray(stride)
    pixels = []
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), previous, channels)
        pixels += [tuple(row[x:x + 3]) for x in range(0, stride, channels)]
        previous = row
    return width, height, pixels


def _unfilter(kind: int, row: bytearray, above: bytearray, step: int) -> bytearray:
    """Undoes one of the five PNG scanline filters (PNG spec, section 9); bytes left of the row count as 0."""
    if kind == 2:  # Up, the commonest: one pass without index arithmetic
        return bytearray((value + up) & 0xFF for value, up in zip(row, above))
    for i in range(len(row)):
        left = row[i - step] if i >= step else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + above[i]) // 2) & 0xFF
        elif kind == 4:
            up, corner = above[i], above[i - step] if i >= step else 0
            estimate = left + up - corner
            distances = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
            predictor = left if distances[0] <= min(distances[1:]) else up if distances[1] <= distances[2] else corner
            row[i] = (row[i] + predictor) & 0xFF
    return row


def test_the_page_shows_plans_versions_unplanned_and_omitted(tmp_path):
    """Events judged by name say which version and why; unplanned and omitted are marked; plans can be chosen."""
    document = {"version": 1, "plans": ["acme/"], "controls": {"unplanned_events": "allow", "unplanned_properties": "omit"}}
    registry = make_registry(schema_dir=TRACKING_PLAN_SCHEMAS, EVENTS_DIR=str(tmp_path / "events"),
                             REGISTRY_CONFIG=str(config_file(tmp_path, document)))
    with serve(registry) as base_url:
        send(base_url, {"type": "track", "event": "Order Completed", "userId": "u1",
                        "properties": {"order_id": "o1", "revenue": 1, "secret": "s"}},
             {"type": "track", "event": "Order Shipped", "userId": "u1", "properties": {}})
        page = rendered(tmp_path, base_url)
    items = {item.one(cls="name").text: item for item in page.one(id="events").all("li") if "data-id" in item.attrs}
    assert items["Order Completed"].one(cls="version").text == (
        "found by name: version 1-1 (no event_version)")
    assert items["Order Completed"].one(cls="omitted").text == "omitted before forwarding: secret"
    assert items["Order Shipped"].one(cls="flag").text == "unplanned"
    assert [option.text for option in page.one(id="plan-filter").all("option")] == ["any", "acme/"]
