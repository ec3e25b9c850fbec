"""Bounded downloads without a browser: the verdict on a document cut at the limit, bodies kept in a
spooled file, downloads replayed from a HAR under the same limit, and Set-Cookie answers stored in
the context as Playwright's own request client stores them."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.scraper.kit import (
    CollectedDocument,
    InvoiceRef,
    MissingDocument,
    RateLimited,
    SessionExpired,
    fetch_documents,
    judge_download,
)
from services.scraper.kit.body import HEAD_BYTES, SPOOL_BYTES, DocumentBody
from services.scraper.kit.download import document_limit
from services.scraper.kit.har import HarRecorder, HarReplay
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.kit.reply import HttpReply
from services.scraper.kit.stream import cookie_from_header

BASE = "http://portal.test/app/"
REF = InvoiceRef(number="FA-1", issue_date=date(2026, 3, 1), amount=Decimal("1.00"), currency="EUR",
                 kind="invoice", download_url=BASE + "FA-1.pdf")
LOGIN_PAGE = b'<html><form><input name="login"><input type="password" name="password"></form></html>'


def test_a_document_over_the_limit_is_missing_as_too_large_unless_the_answer_concerns_the_run() -> None:
    pdf = DocumentBody.of(b"%PDF-1.4 start of something huge")
    cut = judge_download(REF, 200, {"content-type": "application/pdf"}, pdf, REF.download_url, cut_at=1000)
    assert cut == MissingDocument(ref=REF, reason="too large: over the limit of 1000 bytes (HTTP 200)")
    # Logged out or pushed back says more than the size of what came with it.
    with pytest.raises(SessionExpired):
        judge_download(REF, 401, {}, b"", REF.download_url, cut_at=1000)
    with pytest.raises(RateLimited):
        judge_download(REF, 429, {"retry-after": "5"}, b"", REF.download_url, cut_at=1000)


def test_a_kept_body_is_judged_by_its_start_and_read_back_in_chunks() -> None:
    data = b"%PDF-1.7\n" + bytes(range(256)) * (SPOOL_BYTES // 256 + 10)  # beyond the spool: on disk
    body = DocumentBody()
    for start in range(0, len(data), 65536):
        body.write(data[start:start + 65536])
    assert len(body.head) == HEAD_BYTES and body.size == len(data)
    document = judge_download(REF, 200, {"content-type": "application/pdf"}, body, REF.download_url)
    assert isinstance(document, CollectedDocument)
    assert document.sha256 == hashlib.sha256(data).hexdigest() and document.size == len(data)
    assert document.open().read() == data and document.open().read(4) == b"%PDF"  # rewound each time
    assert document.content == data


def test_a_login_page_in_place_of_the_pdf_is_read_from_the_start_of_a_kept_body() -> None:
    body = DocumentBody.of(LOGIN_PAGE + b" " * (2 * HEAD_BYTES))
    with pytest.raises(SessionExpired, match="login page"):
        judge_download(REF, 200, {"content-type": "text/html"}, body, BASE + "login")


def test_a_document_is_made_of_bytes_or_of_a_kept_body() -> None:
    assert CollectedDocument(ref=REF, content=b"%PDF-1").sha256 == hashlib.sha256(b"%PDF-1").hexdigest()
    with pytest.raises(TypeError):
        CollectedDocument(ref=REF)
    with pytest.raises(TypeError):
        CollectedDocument(ref=REF, content=b"%PDF", body=DocumentBody.of(b"%PDF"))


def replayed(*exchanges: tuple[str, HttpReply]) -> PortalHttp:
    recorder = HarRecorder()
    for url, reply in exchanges:
        recorder.add("GET", url, {"Accept": "application/pdf"}, None, reply)
    return PortalHttp(None, replay=HarReplay(recorder.entries))


def pdf_reply(url: str, size: int, **headers: str) -> HttpReply:
    return HttpReply(200, url, {"content-type": "application/pdf", **headers}, b"%PDF" + b"x" * (size - 4))


async def test_a_replayed_download_obeys_the_limit_of_the_running_collection() -> None:
    small, big, announced = BASE + "small.pdf", BASE + "big.pdf", BASE + "announced.pdf"
    http = replayed((BASE + "moved.pdf", HttpReply(302, BASE + "moved.pdf", {"location": "small.pdf"}, b"")),
                    (small, pdf_reply(small, 100)), (big, pdf_reply(big, 101)),
                    # What a recording keeps of a download stopped on its Content-Length: no body.
                    (announced, HttpReply(200, announced, {"content-length": str(10 ** 9)}, b"")))
    refs = [InvoiceRef(number=n, issue_date=REF.issue_date, amount=REF.amount, currency="EUR", kind="invoice",
                       download_url=BASE + f"{n}.pdf") for n in ("moved", "big", "announced")]
    with document_limit(100):
        found = [f async for f in fetch_documents(http, refs)]
    moved, too_big, too_announced = found
    assert isinstance(moved, CollectedDocument) and moved.size == 100
    assert too_big == MissingDocument(ref=refs[1], reason="too large: over the limit of 100 bytes (HTTP 200)")
    assert isinstance(too_announced, MissingDocument) and too_announced.reason.startswith("too large")
    with document_limit(101):  # the limit is the running collection's, not a constant
        assert isinstance(await anext(fetch_documents(http, refs[1:2])), CollectedDocument)
    assert isinstance(await anext(fetch_documents(http, refs[1:2], max_bytes=100)), MissingDocument)


def test_a_download_keeps_its_cookies_as_playwrights_client_would() -> None:
    url = "https://portal.example.fr/app/docs/1.pdf"
    now = 1_800_000_000.0
    assert cookie_from_header(url, "sid=abc; Path=/; HttpOnly; Secure; SameSite=Strict", now) == {
        "name": "sid", "value": "abc", "domain": "portal.example.fr", "path": "/", "expires": -1,
        "httpOnly": True, "secure": True, "sameSite": "Strict"}
    domain_wide = cookie_from_header(url, "lang=fr; Domain=example.fr; Max-Age=60; Expires=Wed, 21 Oct 2015 "
                                          "07:28:00 GMT", now)
    assert domain_wide is not None
    # Max-Age wins over Expires; the default path is the URL's directory.
    assert (domain_wide["domain"], domain_wide["path"], domain_wide["expires"]) == (".example.fr", "/app/docs",
                                                                                    now + 60)
    dated = cookie_from_header(url, "seen=1; Expires=Wed, 21-Oct-2037 07:28:00 GMT", now)
    assert dated is not None and dated["expires"] == datetime(2037, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    deleted = cookie_from_header(url, "sid=; Max-Age=0", now)
    assert deleted is not None and deleted["expires"] == 0
    assert cookie_from_header(url, "evil=1; Domain=other.fr", now) is None
    assert cookie_from_header(url, "  ", now) is None
