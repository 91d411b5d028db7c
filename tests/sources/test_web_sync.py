"""A website source against a generated site served on loopback: the crawl stays under its
start URL's folder and on the hosts it names, honours robots.txt, asks pages conditionally
(ETag) so unchanged pages cost a 304, makes a redirect and a canonical URL one document,
deletes a page that answers 410 or 404, and deletes nothing when the site is down; a sitemap
lists the pages instead of a crawl."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from documents.models import Document
from sources.models import Source, SourceRun
from sources.services import source_save
from tests.accounts.factories import UserFactory
from tests.documents.factories import CollectionFactory
from tests.sources.syncing import synced

pytestmark = pytest.mark.django_db


def page(title: str, body: str, links=(), canonical: str = "") -> str:
    anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
    head = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return (f"<html><head><title>{title}</title>{head}</head><body><h1>{title}</h1>"
            f"<p>{body}</p>{anchors}</body></html>")  # fmt: skip


class Site:
    """Pages by path: (status, body, headers). Records every request's host and path."""

    def __init__(self):
        self.pages: dict[str, tuple[int, str, dict]] = {}
        self.requests: list[tuple[str, str, int]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, body, headers = site.pages.get(self.path, (404, "not found", {}))
                data = body.encode()
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                if status == 200 and self.headers.get("If-None-Match") == etag:
                    status, data = 304, b""
                site.requests.append((self.headers["Host"].split(":")[0], self.path, status))
                self.send_response(status)
                kind = "application/xml" if self.path.endswith(".xml") else "text/html"
                self.send_header("Content-Type", "text/plain" if "robots" in self.path else kind)
                if status in (200, 304):
                    self.send_header("ETag", etag)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, path: str, body: str, status: int = 200, **headers) -> None:
        self.pages[path] = (status, body, headers)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    site = Site()
    elsewhere = f"http://localhost:{site.server.server_port}/docs/elsewhere.html"  # unnamed host
    site.serve("/robots.txt", "User-agent: *\nDisallow: /docs/private/\n")
    site.serve("/docs/", page("Home", "Welcome to the handbook.", [
        "leave.html", "expenses", "private/salaries.html", "/blog/news.html", elsewhere,
        "old-leave.html", "copy.html",
    ]))  # fmt: skip
    site.serve("/docs/leave.html", page("Leave", "Every employee gets 27 days of leave."))
    site.serve("/docs/expenses", page("Expenses", "Claim expenses within thirty days."))
    site.serve("/docs/old-leave.html", "", status=301, Location="/docs/leave.html")
    site.serve("/docs/copy.html", page("Expenses copy", "Claim expenses within thirty days.",
                                       canonical="/docs/expenses"))  # fmt: skip
    site.serve("/docs/private/salaries.html", page("Salaries", "Secret."))
    site.serve("/blog/news.html", page("News", "Outside the prefix."))
    site.serve("/docs/elsewhere.html", page("Elsewhere", "Reached only through localhost."))
    yield site
    site.stop()


def web_source(location: str) -> Source:
    owner = UserFactory()
    return source_save(source=Source(
        name="site", kind=Source.Kind.WEB, location=location,
        collection=CollectionFactory(owner=owner), owner=owner, max_deletion_share=0.5,
    ))  # fmt: skip


def test_a_crawl_stays_within_its_prefix_hosts_and_robots(site):
    source = web_source(site.base + "/docs/")
    first = synced(source)

    assert first.outcome == SourceRun.Outcome.DONE, first.error
    documents = Document.objects.filter(collection=source.collection)
    assert set(documents.values_list("source", flat=True)) == {
        site.base + "/docs/",
        site.base + "/docs/leave.html",
        site.base + "/docs/expenses",
    }  # the redirect and the canonical copy are the same two pages
    assert set(documents.values_list("status", flat=True)) == {"ready"}
    fetched = {(host, path) for host, path, _ in site.requests}
    assert ("127.0.0.1", "/docs/private/salaries.html") not in fetched  # robots.txt
    assert ("127.0.0.1", "/blog/news.html") not in fetched  # outside the prefix
    assert not any(host == "localhost" for host, _ in fetched)  # a host it was not given

    site.requests.clear()
    again = synced(source)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 3)
    assert {status for _, path, status in site.requests if path == "/docs/leave.html"} == {304}

    site.serve("/docs/leave.html", page("Leave", "Every employee gets 30 days of leave."))
    site.serve("/docs/expenses", "", status=410)
    site.serve("/docs/copy.html", "", status=404)
    edited = synced(source)
    assert (edited.changed, edited.deleted) == (1, 1)
    assert not documents.filter(source=site.base + "/docs/expenses").exists()

    site.stop()
    down = synced(source)
    assert down.outcome == SourceRun.Outcome.FAILED and "cannot" in down.error
    assert documents.count() == 2  # nothing deleted


def test_a_named_host_is_followed_and_a_sitemap_lists_the_pages(site):
    port = site.server.server_port
    site.serve("/sitemap.xml", (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.base}/docs/leave.html</loc><lastmod>2026-11-01</lastmod></url>"
        f"<url><loc>{site.base}/docs/expenses</loc></url>"
        f"<url><loc>http://localhost:{port}/docs/elsewhere.html</loc></url>"
        f"<url><loc>{site.base}/docs/private/salaries.html</loc></url>"
        "</urlset>"
    ))  # fmt: skip
    source = web_source(site.base + "/sitemap.xml")
    assert synced(source).added == 2
    documents = Document.objects.filter(collection=source.collection)
    assert set(documents.values_list("title", flat=True)) >= {"Leave"}
    assert not any(host == "localhost" for host, _, _ in site.requests)

    source.hosts = ["localhost"]
    source_save(source=source)
    assert synced(source).added == 1  # the named host's page now
    assert documents.filter(source=f"http://localhost:{port}/docs/elsewhere.html").exists()
