"""Fetching one document's PDF with the page's session, the way every collector should."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

from playwright.async_api import Page

from services.scraper.kit.errors import RateLimited, SessionExpired
from services.scraper.kit.fetch import page_fetch_all
from services.scraper.kit.html import looks_like_login_page, page_facts
from services.scraper.kit.http import retry_after_seconds
from services.scraper.kit.invoice import CollectedDocument, InvoiceRef, MissingDocument
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.kit.reply import HttpReply

PDF_MAGIC = b"%PDF"
# Documents fetched per round trip to the browser.
BATCH = 10
# Says what is wanted, and lets the framework tell a failed download from a failed page or API
# call (one broken PDF says nothing about the portal being down).
ACCEPT_PDF = "application/pdf, */*;q=0.5"


def judge_download(ref: InvoiceRef, status: int, headers: Mapping[str, str], body: bytes,
                   final_url: str) -> CollectedDocument | MissingDocument:
    """What a download's response means (pure, so it is unit-tested without a browser).

    Raises when the answer concerns the whole run rather than this document: logged out
    (a 401, or a login page where the PDF should be) or pushed back (429).
    """
    if status == 200 and body.startswith(PDF_MAGIC):
        return CollectedDocument(ref=ref, content=body)
    if status == 401:
        raise SessionExpired(f"{ref.number}: HTTP 401")
    if status == 429:
        raise RateLimited(f"{ref.number}: HTTP 429", retry_after_s=retry_after_seconds(headers.get("retry-after")))
    if status == 200 and "html" in headers.get("content-type", "") and final_url != ref.download_url:
        # Redirected to an HTML page: a login form means the session is gone.
        if looks_like_login_page(page_facts(body.decode("utf-8", errors="replace"))):
            raise SessionExpired(f"{ref.number}: redirected to a login page")
    reason = f"HTTP {status}" if status != 200 else "not a PDF"
    return MissingDocument(ref=ref, reason=reason)


async def _get_all(source: Page | PortalHttp, urls: list[str], headers: dict[str, str]) -> list[HttpReply]:
    if isinstance(source, PortalHttp):
        return await source.get_all(urls, headers=headers)
    return await page_fetch_all(source, urls, headers=headers)


async def fetch_documents(source: Page | PortalHttp, refs: Sequence[InvoiceRef], *,
                          headers: Mapping[str, str] | None = None,
                          batch: int = BATCH) -> AsyncIterator[CollectedDocument | MissingDocument]:
    """Each document's PDF, in order, with the session of ``source``: the page-less client
    (``ctx.http``), or a page (``batch`` at a time, one round trip to the browser each)."""
    wanted = {"Accept": ACCEPT_PDF, **(headers or {})}
    for start in range(0, len(refs), batch):
        chunk = refs[start:start + batch]
        replies = await _get_all(source, [ref.download_url for ref in chunk], wanted)
        for ref, reply in zip(chunk, replies, strict=True):
            if reply.status == 0:
                yield MissingDocument(ref=ref, reason=f"no answer: {reply.error}"[:200])
                continue
            yield judge_download(ref, reply.status, reply.headers, reply.body, reply.url)


async def fetch_document(source: Page | PortalHttp, ref: InvoiceRef, *,
                         headers: Mapping[str, str] | None = None) -> CollectedDocument | MissingDocument:
    async for found in fetch_documents(source, [ref], headers=headers):
        return found
    raise AssertionError("fetch_documents yields one result per reference")
