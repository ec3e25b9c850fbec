"""The evidence of a run, built in memory: scrubbed, the HAR capped by dropping bodies (and said),
successes sampled per collector."""

from __future__ import annotations

import json

import pytest

from services.scraper.evidence import RunRecorder, Snapshot, build_evidence, parse_sample
from services.scraper.kit.reply import HttpReply

PASSWORD = "Pé-s3cret"


def _recorder(pages: int, page_bytes: int) -> RunRecorder:
    recorder = RunRecorder()
    login = HttpReply(303, "http://portal.test/login", {"location": "/list", "set-cookie": "sid=abc"}, b"")
    recorder._exchanged("POST", "http://portal.test/login", {"Content-Type": "application/x-www-form-urlencoded"},
                        "login=a&password=P%C3%A9-s3cret", login, 5)
    for i in range(pages):
        body = (f"<p>page {i} {PASSWORD}</p>" + "x" * page_bytes).encode()
        recorder._exchanged("GET", f"http://portal.test/list?page={i}", {"Cookie": "sid=abc"}, None,
                            HttpReply(200, "http://portal.test/list", {"content-type": "text/html"}, body), 7)
    recorder.snapshot = Snapshot(url="http://portal.test/list", html=f"<html>{PASSWORD}</html>")
    return recorder


def test_the_har_is_capped_by_dropping_bodies_and_says_so() -> None:
    evidence = build_evidence(_recorder(pages=20, page_bytes=20_000), None, PASSWORD, max_bytes=64 * 1024)
    har = evidence.files["run.har"]
    assert len(har) <= 64 * 1024
    assert evidence.har_bodies_dropped > 0 and "bodies dropped" in evidence.note
    entries = json.loads(har)["log"]["entries"]
    assert len(entries) == 21  # every exchange is still there, some without their body
    assert sum("comment" in e["response"]["content"] for e in entries) == evidence.har_bodies_dropped
    for data in evidence.files.values():
        assert PASSWORD.encode() not in data and b"P%C3%A9-s3cret" not in data


def test_a_small_run_keeps_every_body() -> None:
    evidence = build_evidence(_recorder(pages=2, page_bytes=100), None, PASSWORD, max_bytes=64 * 1024)
    assert evidence.har_bodies_dropped == 0 and evidence.note == ""
    assert evidence.files["page.html"] == b"<html>scrubbed-password</html>"
    assert [t.status for t in evidence.trail] == [303, 200, 200]


def test_sampling_setting() -> None:
    assert parse_sample("sandbox-classic=0.1, sandbox-spa=1") == {"sandbox-classic": 0.1, "sandbox-spa": 1.0}
    assert parse_sample("") == {}
    with pytest.raises(ValueError):
        parse_sample("sandbox-classic=2")
