"""The page-less client's recording and replay: what a HAR must hold for a collector that reads
its portal over HTTP to be tested offline."""

from __future__ import annotations

import json
from pathlib import Path

from services.scraper.kit.har import HarRecorder, HarReplay, scrub_har
from services.scraper.kit.portal_http import FORM_TYPE, PortalHttp
from services.scraper.kit.reply import HttpReply

BASE = "http://portal.test/app/"
PDF = b"%PDF-1.4\n\x00\xff binary"


def reply(url: str, status: int = 200, body: bytes = b"", *, content_type: str = "", location: str = "") -> HttpReply:
    headers = {"content-type": content_type, "location": location}
    return HttpReply(status=status, url=url, headers={k: v for k, v in headers.items() if v}, body=body)


def recorded_session(path: Path) -> None:
    """What a login, a list page read twice and a PDF look like once recorded."""
    recorder = HarRecorder()
    html = "text/html; charset=utf-8"
    recorder.add("GET", BASE + "login", {}, None, reply(BASE + "login", body=b"<form>login</form>", content_type=html))
    recorder.add("POST", BASE + "login", {"Content-Type": FORM_TYPE}, "login=pharma&password=s%C3%A9cret",
                 reply(BASE + "login", 303, location="list"))
    recorder.add("GET", BASE + "list", {}, None, reply(BASE + "list", body="première".encode(), content_type=html))
    recorder.add("GET", BASE + "list", {}, None, reply(BASE + "list", body=b"second", content_type=html))
    recorder.add("GET", BASE + "1.pdf", {"Accept": "application/pdf"}, None,
                 reply(BASE + "1.pdf", body=PDF, content_type="application/pdf"))
    recorder.save(path)


async def test_a_recorded_session_replays_offline(tmp_path: Path) -> None:
    har = tmp_path / "portal.har"
    recorded_session(har)
    seen: list[tuple[str, int]] = []
    http = PortalHttp(None, replay=HarReplay.load(har))
    http.observe(lambda r, _headers: seen.append((r.url, r.status)))

    landed = await http.post_form(BASE + "login", [("login", "pharma"), ("password", "sécret")])
    # The redirect is followed as a browser does (a GET), and each hop is seen.
    assert (landed.status, landed.url, landed.body.decode()) == (200, BASE + "list", "première")
    assert seen == [(BASE + "login", 303), (BASE + "list", 200)]
    assert (await http.get(BASE + "list")).body == b"second"  # answers in recorded order...
    assert (await http.get(BASE + "list")).body == b"second"  # ...the last one again after that
    pdf = await http.get(BASE + "1.pdf")
    assert pdf.body == PDF and pdf.headers["content-type"] == "application/pdf"

    missing = await http.get(BASE + "elsewhere")
    assert missing.status == 0 and "not in the HAR" in missing.error
    wrong_body = await http.post_form(BASE + "login", [("login", "pharma"), ("password", "other")])
    assert wrong_body.status == 0


async def test_a_scrubbed_recording_logs_in_with_the_placeholder(tmp_path: Path) -> None:
    har = tmp_path / "portal.har"
    recorded_session(har)
    assert scrub_har(har, {"sécret": "scrubbed-password"}) == 1
    assert "cret" not in json.dumps([e["request"] for e in json.loads(har.read_text())["log"]["entries"]])
    http = PortalHttp(None, replay=HarReplay.load(har))
    landed = await http.post_form(BASE + "login", [("login", "pharma"), ("password", "scrubbed-password")])
    assert landed.status == 200 and landed.url == BASE + "list"


def test_the_recording_joins_what_pages_recorded(tmp_path: Path) -> None:
    har = tmp_path / "portal.har"
    page_entry = {"request": {"method": "GET", "url": BASE, "headers": []},
                  "response": {"status": 200, "headers": [], "content": {"text": "app"}}}
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": [page_entry]}}), encoding="utf-8")
    recorded_session(har)
    entries = json.loads(har.read_text())["log"]["entries"]
    assert entries[0] == page_entry and len(entries) == 6
    # Pages' entries are route_from_har's business, never answered to the page-less client.
    assert HarReplay(entries).answer("GET", BASE, None).status == 0


async def test_too_many_redirects_is_no_answer(tmp_path: Path) -> None:
    recorder = HarRecorder()
    recorder.add("GET", BASE + "loop", {}, None, reply(BASE + "loop", 302, location="loop"))
    recorder.save(tmp_path / "loop.har")
    looping = await PortalHttp(None, replay=HarReplay.load(tmp_path / "loop.har")).get(BASE + "loop")
    assert looping.status == 0 and "redirects" in looping.error
