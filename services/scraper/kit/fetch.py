"""HTTP requests made from inside the page, as the portal's own scripts would make them.

Going through the page (not Playwright's separate request client) means the page's cookies and
origin, and it means the requests are part of what a HAR records and what ``route_from_har`` replays:
a collector tested offline downloads its PDFs from the recording too. Other origins (a CDN serving
the PDFs) would be refused by CORS inside the page, so those go through the context's request client.

Several URLs can be fetched in one call: one at a time inside the page (no burst on the portal), but
in a single round trip between the worker and the browser, which is most of the cost of a download.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

from playwright._impl._errors import TargetClosedError  # raised by the public API, not exported by it
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from services.scraper.kit.errors import CollectorBug, InterfaceChanged, PortalUnreachable, is_no_answer
from services.scraper.kit.reply import HttpReply, origin, require_http_url
from services.scraper.kit.stream import Download

DEFAULT_TIMEOUT_MS = 30_000

_FETCH_ALL = """
async ({urls, headers, timeoutMs, maxBytes}) => {
  // With maxBytes, a body longer than that is not read past it (nor held, nor sent back): only its
  // status and headers return, marked cut.
  const readBounded = async (response) => {
    if (Number(response.headers.get("content-length")) > maxBytes) return null;
    if (!response.body) return new Uint8Array(0);
    const reader = response.body.getReader();
    const parts = [];
    let size = 0;
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxBytes) {
        await reader.cancel();
        return null;
      }
      parts.push(value);
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const part of parts) { bytes.set(part, at); at += part.length; }
    return bytes;
  };
  const replies = [];
  for (const url of urls) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const response = await fetch(url, {headers, credentials: "include", redirect: "follow", signal: abort.signal});
      const bytes = maxBytes === null ? new Uint8Array(await response.arrayBuffer()) : await readBounded(response);
      if (bytes === null) abort.abort();  // the rest of the body is not wanted
      let binary = "";
      for (let i = 0; bytes !== null && i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      replies.push({status: response.status, url: response.url, cut: bytes === null,
                    headers: Object.fromEntries(response.headers.entries()), body: btoa(binary)});
    } catch (error) {
      replies.push({status: 0, url, headers: {}, body: "", error: String(error)});
    } finally {
      clearTimeout(timer);
    }
  }
  return replies;
}
"""


async def _through_request_client(page: Page, url: str, headers: dict[str, str], timeout_ms: float) -> HttpReply:
    try:
        response = await page.request.get(url, headers=headers, timeout=timeout_ms)
    except TargetClosedError:
        raise  # our page or context is gone: not something the portal answered
    except PlaywrightError as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        if isinstance(exc, PlaywrightTimeout) or is_no_answer(str(exc)):
            # Whose outage it is depends on the host: the framework knows the portal's.
            raise PortalUnreachable(f"GET {url[:200]}: no answer ({first_line})", url=url) from exc
        raise CollectorBug(f"GET {url[:200]}: {first_line}") from exc
    try:
        return HttpReply(status=response.status, url=response.url, headers=dict(response.headers),
                         body=await response.body())
    finally:
        await response.dispose()


async def page_fetch_all(page: Page, urls: Sequence[str], *, headers: Mapping[str, str] | None = None,
                         timeout_ms: float = DEFAULT_TIMEOUT_MS, max_bytes: int | None = None) -> list[HttpReply]:
    """GET each URL in turn with the page's session (redirects followed), replies in the same order.

    With ``max_bytes``, a same-origin body longer than that is not read past it: its reply comes
    back with no body and ``cut_at`` set (a ``Download``); other origins are not fetched then
    (``kit.download`` streams those instead of using Playwright's request client).
    """
    for url in urls:
        require_http_url(url, "GET")  # never sent, never the portal's fault
    wanted = dict(headers or {})
    here = origin(page.url)
    same_origin = [url for url in urls if origin(url) == here]
    if max_bytes is not None and len(same_origin) != len(urls):
        raise ValueError("with max_bytes, only URLs of the page's origin")
    fetched: dict[str, HttpReply] = {}
    if same_origin:
        raw_replies = await page.evaluate(_FETCH_ALL, {"urls": same_origin, "headers": wanted,
                                                       "timeoutMs": timeout_ms, "maxBytes": max_bytes})
        for url, raw in zip(same_origin, raw_replies, strict=True):
            status, final_url = int(raw["status"]), str(raw["url"])
            answered = {k.lower(): str(v) for k, v in raw["headers"].items()}
            fetched[url] = (Download(status=status, url=final_url, headers=answered, body=b"", cut_at=max_bytes)
                            if raw.get("cut") else
                            HttpReply(status=status, url=final_url, headers=answered,
                                      body=base64.b64decode(raw["body"]), error=str(raw.get("error", ""))))
    return [fetched[url] if url in fetched else await _through_request_client(page, url, wanted, timeout_ms)
            for url in urls]


async def page_fetch(page: Page, url: str, *, headers: Mapping[str, str] | None = None,
                     timeout_ms: float = DEFAULT_TIMEOUT_MS) -> HttpReply:
    """GET ``url`` with the page's session; redirects are followed."""
    (reply,) = await page_fetch_all(page, [url], headers=headers, timeout_ms=timeout_ms)
    return reply


_HTML = """
() => (document.doctype ? new XMLSerializer().serializeToString(document.doctype) + "\\n" : "")
      + document.documentElement.outerHTML
"""


async def page_html(page: Page) -> str:
    """The page's current HTML. Unlike ``page.content()`` it needs none of Playwright's helper
    scripts, which a fresh document would have to compile first (a third of a small page's cost)."""
    html: str = await page.evaluate(_HTML)
    return html


_FILL_AND_CLICK = """
async ({fills, click, timeoutMs}) => {
  const deadline = Date.now() + timeoutMs;
  const selectors = [...fills.map(([selector]) => selector), click];
  let found;
  while (!(found = selectors.map((s) => document.querySelector(s))).every(Boolean)) {
    if (Date.now() > deadline) return selectors.filter((s, i) => !found[i]);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  fills.forEach(([, value], i) => {
    const input = found[i];
    input.focus();
    // Through the element type's own setter, as typing does: frameworks (React) shadow "value" on
    // the element to tell their own writes from the user's, and ignore the event after a plain
    // assignment, leaving their state (what they submit) empty.
    let proto = Object.getPrototypeOf(input), descriptor;
    while (proto && !(descriptor = Object.getOwnPropertyDescriptor(proto, "value"))) {
      proto = Object.getPrototypeOf(proto);
    }
    if (descriptor && descriptor.set) descriptor.set.call(input, value); else input.value = value;
    input.dispatchEvent(new Event("input", {bubbles: true}));
    input.dispatchEvent(new Event("change", {bubbles: true}));
  });
  found[found.length - 1].click();
  return [];
}
"""


async def page_fill_and_click(page: Page, fills: Mapping[str, str], click: str, *,
                              timeout_ms: float = DEFAULT_TIMEOUT_MS) -> None:
    """Type each value into the field its selector finds, then click ``click``, once all of them
    are on the page (a script may draw them late).

    Plain DOM, as a person's typing looks to the page's scripts (input and change events): unlike
    ``page.fill``, it needs none of Playwright's helper scripts, which a fresh page would compile
    first. Raises ``InterfaceChanged`` naming what never appeared, for the framework to explain.
    """
    missing: list[str] = await page.evaluate(_FILL_AND_CLICK, {"fills": list(fills.items()), "click": click,
                                                              "timeoutMs": timeout_ms})
    if missing:
        raise InterfaceChanged(f"not found at {page.url}: {', '.join(missing)}")
