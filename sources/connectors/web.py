"""A website: the pages a sitemap lists, or those a crawl finds from a start URL, within the
hosts the source names and nothing else.

- **Which pages**: a location that answers with a sitemap (or a sitemap index) lists its
  URLs; any other location is a start page, and the crawl follows links (breadth first) that
  stay under the start URL's folder, or lead to one of the source's further hosts. No request
  ever goes to another host: not a link, not a sitemap entry, not a redirect. At most
  PRODRAG_WEB_MAX_PAGES pages.
- **robots.txt** of each host is honoured (for the user agent "prodrag"); a host whose
  robots.txt fails to load (5xx) is not crawled, one without (4xx) is.
- **Changes**: a page's marker is its ETag, else its Last-Modified, else a digest of its
  body. A crawl asks each page conditionally (If-None-Match, If-Modified-Since) and keeps
  each page's validators and links in the source's checkpoint, so an unchanged page costs a
  304 and no parsing; a sitemap's lastmod, where given, is its URLs' marker.
- **Gone**: a page that answers 404 or 410 (or whose redirect leaves the allowed URLs) is no
  longer listed, so the sync deletes its document; any other failure (5xx, a timeout) makes
  the listing fail, deleting nothing.
- **One page, one item**: a redirect is followed to its target, and a page's canonical URL
  (`<link rel="canonical">`, when allowed) is its key, so a page reached by two URLs is one
  document.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from django.conf import settings
from lxml import etree, html

from sources.connectors import Connector, ItemUnreadable, Listed, SourceUnavailable, spooled
from sources.credentials import Credentials

AGENT = "prodrag"
_HTML = ("text/html", "application/xhtml+xml")
_SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_GONE = (404, 410)
_REDIRECTS = 5


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def html(self) -> bool:
        return self.headers.get("content-type", "").split(";")[0].strip() in _HTML


class WebConnector(Connector):
    def __init__(self, location: str, hosts: list[str], credentials: Credentials,
                 checkpoint: dict | None = None):  # fmt: skip
        self.start = location
        parts = urlsplit(location)
        self.prefix = location if location.endswith("/") else location.rsplit("/", 1)[0] + "/"
        self.hosts = {parts.hostname, *(host.lower() for host in hosts)}
        self.scheme_host = f"{parts.scheme}://{parts.netloc}"
        auth = (credentials.username, credentials.secret) if credentials.username else None
        self.http = httpx.Client(
            auth=auth,
            timeout=httpx.Timeout(30.0),
            follow_redirects=False,
            headers={"User-Agent": f"{AGENT} (+source sync)"},
        )
        self.pages: dict[str, dict] = dict((checkpoint or {}).get("pages", {}))
        self._robots: dict[str, RobotFileParser] = {}
        self._bodies: dict[str, bytes] = {}
        self._unreadable: dict[str, str] = {}
        self.max_pages = settings.WEB_MAX_PAGES
        self.max_bytes = settings.INGEST_LIMITS["max_file_bytes"]

    def checkpoint(self) -> dict:
        return {"pages": self.pages}

    # --- what may be fetched -----------------------------------------------------------------

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in self.hosts:
            return False
        if parts.hostname == urlsplit(self.start).hostname and not url.startswith(self.prefix):
            return False
        return self._robot(url).can_fetch(AGENT, url)

    def _robot(self, url: str) -> RobotFileParser:
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        if base not in self._robots:
            robots = RobotFileParser()
            try:
                response = self.http.get(base + "/robots.txt")
            except httpx.HTTPError as exc:
                raise SourceUnavailable(f"cannot read {base}/robots.txt: {exc}") from exc
            if response.status_code >= 500:
                robots.disallow_all = True
            elif response.status_code >= 300:
                robots.allow_all = True
            else:
                robots.parse(response.text.splitlines())
            self._robots[base] = robots
        return self._robots[base]

    # --- fetching ------------------------------------------------------------------------------

    def _get(self, url: str, headers: dict | None = None) -> Fetched | None:
        """The page at the end of the URL's redirects; None when it is gone (404, 410) or
        redirects out of the allowed URLs. SourceUnavailable otherwise."""
        for _ in range(_REDIRECTS + 1):
            try:
                with self.http.stream("GET", url, headers=headers) as response:
                    body = b""
                    if response.status_code == 200:
                        for chunk in response.iter_bytes():
                            body += chunk
                            if len(body) > self.max_bytes:
                                raise ItemUnreadable(
                                    f"{url} is larger than PRODRAG_MAX_FILE_BYTES allows"
                                )
            except httpx.HTTPError as exc:
                raise SourceUnavailable(f"cannot fetch {url}: {exc}") from exc
            if response.has_redirect_location:
                target = urldefrag(urljoin(url, response.headers.get("location", "")))[0]
                if not self.allowed(target):
                    return None
                url = target
                continue
            if response.status_code in _GONE:
                return None
            if response.status_code not in (200, 304):
                raise SourceUnavailable(f"{url} answered {response.status_code}")
            return Fetched(url, response.status_code, response.headers, body)
        raise SourceUnavailable(f"{url} redirects more than {_REDIRECTS} times")

    def listing(self) -> Iterator[Listed]:
        found = self._sitemap(self.start)
        if found is not None:
            yield from found
            return
        yield from self._crawl()

    def _sitemap(self, url: str) -> list[Listed] | None:
        """The sitemap's (or sitemap index's) pages; None when the URL is not a sitemap."""
        fetched = self._get(url)
        if fetched is None:
            raise SourceUnavailable(f"{url} is gone (404 or 410)")
        if fetched.html or fetched.body.lstrip()[:1] != b"<":
            return None
        try:
            root = etree.fromstring(
                fetched.body, parser=etree.XMLParser(resolve_entities=False, no_network=True)
            )
        except etree.XMLSyntaxError:
            return None
        if root.tag == f"{_SITEMAP}sitemapindex":
            pages = []
            for location in root.iter(f"{_SITEMAP}loc"):
                child = (location.text or "").strip()
                if self.allowed(child):
                    pages.extend(self._sitemap(child) or [])
            return pages
        if root.tag != f"{_SITEMAP}urlset":
            return None
        pages = {}
        for entry in root.iter(f"{_SITEMAP}url"):
            page = (entry.findtext(f"{_SITEMAP}loc") or "").strip()
            lastmod = (entry.findtext(f"{_SITEMAP}lastmod") or "").strip()
            if self.allowed(page) and len(pages) < self.max_pages:
                pages[page] = Listed(key=page, marker=f"lastmod:{lastmod}" if lastmod else "")
        listed = []
        for page, item in pages.items():
            if item.marker:
                listed.append(item)
            elif (marker := self._page(page)) is not None:  # no lastmod: ask the page
                listed.append(Listed(key=marker[0], marker=marker[1]))
        return listed

    def _crawl(self) -> Iterator[Listed]:
        if not self.allowed(self.start):
            raise SourceUnavailable(f"{self.start}'s robots.txt does not let prodrag read it")
        queue, queued, seen = deque([self.start]), {self.start}, set()
        while queue and len(seen) < self.max_pages:
            url = queue.popleft()
            if self.pages.get(url, {}).get("alias") in seen:
                continue  # it redirected to (or named as canonical) a page already listed
            page = self._page(url)
            if page is None:
                continue
            key, marker = page
            if key in seen:
                continue
            seen.add(key)
            yield Listed(key=key, marker=marker)
            for link in self.pages[key].get("links", []):
                if link not in queued and self.allowed(link):
                    queued.add(link)
                    queue.append(link)
        self.pages = {
            url: state
            for url, state in self.pages.items()
            if url in seen or state.get("alias") in seen
        }

    def _page(self, url: str) -> tuple[str, str] | None:
        """(key, marker) of the page at `url`, asked conditionally when it was seen before;
        its body kept for `open` when it was sent, its links and validators in the
        checkpoint. None when it is gone."""
        known = self.pages.get(url, {})
        headers = {}
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("modified"):
            headers["If-Modified-Since"] = known["modified"]
        try:
            fetched = self._get(url, headers)
        except ItemUnreadable as exc:  # listed, to fail alone when fetched (not deleted)
            self._unreadable[url] = str(exc)
            return url, known.get("marker", "unreadable")
        if fetched is None:
            return None
        if fetched.status == 304 and fetched.url == url and known:
            return url, known["marker"]
        etag = fetched.headers.get("etag", "")
        modified = fetched.headers.get("last-modified", "")
        marker = etag or modified or "sha256:" + hashlib.sha256(fetched.body).hexdigest()
        links, key = [], fetched.url
        if fetched.html and fetched.body:
            links, canonical = _links(fetched.url, fetched.body)
            if canonical and self.allowed(canonical):
                key = canonical
        if key != url:
            self.pages[url] = {"alias": key}
        self.pages[key] = {"etag": etag, "modified": modified, "marker": marker, "links": links,
                           "html": fetched.html}  # fmt: skip
        self._bodies[key] = fetched.body
        return key, marker

    @contextmanager
    def open(self, key: str):
        if key in self._unreadable:
            raise ItemUnreadable(self._unreadable[key])
        body = self._bodies.pop(key, None)
        if body is None:
            try:
                fetched = self._get(key)
            except SourceUnavailable as exc:
                raise ItemUnreadable(str(exc)) from exc
            if fetched is None:
                raise ItemUnreadable(f"{key} is gone")
            body = fetched.body
            self.pages.setdefault(key, {})["html"] = fetched.html
        with spooled() as buffer:
            buffer.write(body)
            buffer.seek(0)
            yield buffer

    def file_name(self, key: str) -> str:
        """A file name for the page, by which ingestion knows its type: a page served as HTML
        is a .html file whatever its URL ends with."""
        name = urlsplit(key).path.rsplit("/", 1)[-1] or "index"
        if self.pages.get(key, {}).get("html") and not name.endswith((".html", ".htm")):
            name += ".html"
        return name


def _links(url: str, body: bytes) -> tuple[list[str], str]:
    """The page's links (absolute, without fragments) and its canonical URL ("" if none)."""
    try:
        document = html.document_fromstring(body, base_url=url)
    except (etree.ParserError, ValueError):
        return [], ""
    base = document.base_url or url
    links = []
    for element in document.iter("a", "area"):
        href = element.get("href")
        if href and not element.get("rel", "").lower().count("nofollow"):
            links.append(urldefrag(urljoin(base, href.strip()))[0])
    canonical = document.xpath('//link[@rel="canonical"]/@href')
    return list(dict.fromkeys(links)), (urljoin(base, canonical[0].strip()) if canonical else "")
