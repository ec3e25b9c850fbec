"""Fetching one document's PDF with the page's session, the way every collector should."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from playwright.async_api import Page

from services.scraper.kit.body import DocumentBody
from services.scraper.kit.errors import RateLimited, SessionExpired
from services.scraper.kit.fetch import page_fetch_all
from services.scraper.kit.forms import FormSubmission
from services.scraper.kit.html import looks_like_login_page, page_facts
from services.scraper.kit.http import retry_after_seconds
from services.scraper.kit.invoice import CollectedDocument, InvoiceRef, MissingDocument
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.kit.reply import origin
from services.scraper.kit.stream import Download, kept
from shared.settings import MAX_DOCUMENT_BYTES

PDF_MAGIC = b"%PDF"
# Documents fetched per round trip to the browser.
BATCH = 10
# Says what is wanted, and lets the framework tell a failed download from a failed page or API
# call (one broken PDF says nothing about the portal being down).
ACCEPT_PDF = "application/pdf, */*;q=0.5"


# The running collection's limit on one document: the framework sets it for each job (the manifest's,
# else the worker's setting), so collectors never pass it and pages and ``ctx.http`` both obey it.
_max_document_bytes: ContextVar[int] = ContextVar("max_document_bytes", default=MAX_DOCUMENT_BYTES)


@contextmanager
def document_limit(max_bytes: int) -> Iterator[None]:
    """Downloads inside this block stop past ``max_bytes`` (one document ends ``MissingDocument``)."""
    token = _max_document_bytes.set(max_bytes)
    try:
        yield
    finally:
        _max_document_bytes.reset(token)


def judge_download(ref: InvoiceRef, status: int, headers: Mapping[str, str], body: bytes | DocumentBody,
                   final_url: str, *, cut_at: int | None = None) -> CollectedDocument | MissingDocument:
    """What a download's response means (pure, so it is unit-tested without a browser).

    ``body`` is the whole file, in memory or kept in a ``DocumentBody``; ``cut_at`` says the portal
    sent more than that limit (the download was stopped, ``body`` is at most its start).

    Raises when the answer concerns the whole run rather than this document: logged out
    (a 401, or a login page where the PDF should be) or pushed back (429).
    """
    head = body.head if isinstance(body, DocumentBody) else body
    if status == 401:
        raise SessionExpired(f"{ref.number}: HTTP 401")
    if status == 429:
        raise RateLimited(f"{ref.number}: HTTP 429", retry_after_s=retry_after_seconds(headers.get("retry-after")))
    if cut_at is not None:
        return MissingDocument(ref=ref, reason=f"too large: over the limit of {cut_at} bytes (HTTP {status})")
    if status == 200 and head.startswith(PDF_MAGIC):
        return (CollectedDocument(ref=ref, body=body) if isinstance(body, DocumentBody)
                else CollectedDocument(ref=ref, content=body))
    if status == 200 and "html" in headers.get("content-type", "") and final_url != ref.download_url:
        # Redirected to an HTML page: a login form means the session is gone (its start is enough).
        if looks_like_login_page(page_facts(head.decode("utf-8", errors="replace"))):
            raise SessionExpired(f"{ref.number}: redirected to a login page")
    reason = f"HTTP {status}" if status != 200 else "not a PDF"
    return MissingDocument(ref=ref, reason=reason)


async def _get_all(source: Page | PortalHttp, urls: list[str], headers: dict[str, str],
                   max_bytes: int, forms: Sequence[FormSubmission | None] | None = None) -> list[Download]:
    if isinstance(source, PortalHttp):
        return [await source.download(url, headers=headers, max_bytes=max_bytes, form=form)
                for url, form in zip(urls, forms or [None] * len(urls), strict=True)]
    if forms and any(forms):
        raise TypeError("downloads by form submission go through ctx.http, not a page")
    # Same origin: in the page (its session, its HAR replay), bounded in the page's script. Another
    # origin (a CDN) would be refused by CORS there: streamed with the context's cookies instead.
    here = origin(source.url)
    same_origin = [url for url in urls if origin(url) == here]
    replies = dict(zip(same_origin, await page_fetch_all(source, same_origin, headers=headers, max_bytes=max_bytes),
                       strict=True)) if same_origin else {}
    elsewhere = PortalHttp(source.context)
    return [kept(replies[url], max_bytes) if url in replies
            else await elsewhere.download(url, headers=headers, max_bytes=max_bytes) for url in urls]


async def fetch_documents(source: Page | PortalHttp, refs: Sequence[InvoiceRef], *,
                          headers: Mapping[str, str] | None = None, batch: int = BATCH,
                          max_bytes: int | None = None, forms: Sequence[FormSubmission | None] | None = None,
                          ) -> AsyncIterator[CollectedDocument | MissingDocument]:
    """Each document's PDF, in order, with the session of ``source``: the page-less client
    (``ctx.http``), or a page (``batch`` at a time, one round trip to the browser each).

    ``forms``: for each reference, the form whose submission answers its PDF (a POST download, a
    postback: ``kit.forms.postback``), or None for a plain link (``ctx.http`` only).

    A document larger than ``max_bytes`` (default: the running collection's limit) is a
    ``MissingDocument``; none is ever held whole in memory on the way (except, bounded by the
    limit, one fetched by a page).
    """
    wanted = {"Accept": ACCEPT_PDF, **(headers or {})}
    limit = max_bytes if max_bytes is not None else _max_document_bytes.get()
    for start in range(0, len(refs), batch):
        chunk = refs[start:start + batch]
        replies = await _get_all(source, [ref.download_url for ref in chunk], wanted, limit,
                                 forms[start:start + batch] if forms is not None else None)
        for ref, reply in zip(chunk, replies, strict=True):
            if reply.status == 0:
                yield MissingDocument(ref=ref, reason=f"no answer: {reply.error}"[:200])
                continue
            yield judge_download(ref, reply.status, reply.headers, reply.file if reply.file is not None else b"",
                                 reply.url, cut_at=reply.cut_at)


async def fetch_document(source: Page | PortalHttp, ref: InvoiceRef, *,
                         headers: Mapping[str, str] | None = None) -> CollectedDocument | MissingDocument:
    async for found in fetch_documents(source, [ref], headers=headers):
        return found
    raise AssertionError("fetch_documents yields one result per reference")
