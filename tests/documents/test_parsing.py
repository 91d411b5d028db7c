import pytest

from documents.parsing import Limits, ParseError, format_detect, python_document, text_decode
from documents.sandbox import ParserSandbox
from tests.documents.files import _pdf_bytes, _zip_bomb, good_files

LIMITS = Limits(
    max_file_bytes=10_000_000, max_pages=100, max_unzipped_bytes=5_000_000, max_zip_entries=100
)


@pytest.fixture(scope="module")
def sandbox():
    sandbox = ParserSandbox(timeout=120, memory_mb=3072)
    yield sandbox
    sandbox.close()


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("report.pdf", b"%PDF-1.7\n", "pdf"),
        ("report", b"%PDF-1.7\n", "pdf"),
        ("page.htm", b"<p>hi</p>", "html"),
        ("download", b"<!DOCTYPE html><html>", "html"),
        ("notes.md", b"# Notes", "md"),
        ("module.py", b'"""Doc."""', "python"),
        ("guide.rst", b"Title\n=====", "rst"),
        ("data.csv", b"a,b\n1,2", "csv"),
        # "BM" is a bitmap's whole magic number; a text named and reading as text is text.
        ("bmi.txt", b"BMI and mortality in 900,000 adults", "text"),
    ],
)
def test_format_comes_from_magic_bytes_or_else_the_name(name, head, expected):
    assert format_detect(name=name, head=head) == expected


@pytest.mark.parametrize(
    ("name", "head", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("scan.pdf", b"just text", "name says a PDF"),
        ("photo.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "Unsupported file type image/png"),
        ("notes.txt", b"abc\x00def", "binary"),
        ("archive.7z", b"plain", "Unsupported file type .7z"),
    ],
)
def test_unsupported_or_mismatched_types_fail_clearly(name, head, message):
    with pytest.raises(ParseError, match=message):
        format_detect(name=name, head=head)


def test_text_must_be_utf8_or_bom_marked_utf16():
    assert text_decode("naïve".encode("utf-16")) == "naïve"
    assert text_decode(b"\xef\xbb\xbfplain") == "plain"
    with pytest.raises(ParseError, match=r"byte 0xe9 at offset 3"):
        text_decode("café".encode("latin-1"))


def test_python_files_yield_docstrings_under_nested_signatures():
    source = (
        '"""Billing helpers."""\n'
        "class Invoice:\n"
        '    """A bill."""\n'
        "    def total(self, tax: float = 0.2):\n"
        '        """Sum with tax."""\n'
        "def undocumented():\n"
        "    pass\n"
    )
    document = python_document(name="billing.py", source=source)
    texts = [item.text for item in document.texts]
    assert texts == [
        "billing.py",
        "Billing helpers.",
        "class Invoice",
        "A bill.",
        "def total(self, tax: float=0.2)",
        "Sum with tax.",
    ]
    with pytest.raises(ParseError, match="Not valid Python"):
        python_document(name="broken.py", source="def (:\n")


def test_sandbox_reads_every_format_with_metadata(sandbox, tmp_path):
    for path in good_files(tmp_path):
        fmt = format_detect(name=path.name, head=path.read_bytes()[:8192])
        if fmt == "text":
            continue  # plain text is decoded in the worker, not in the sandbox
        parsed = sandbox.parse(
            data=path.read_bytes(), name=path.name, fmt=fmt, limits=LIMITS, layout_models=None
        )
        assert parsed.document.texts or parsed.document.tables, path.name
    pdf = next(path for path in good_files(tmp_path) if path.suffix == ".pdf")
    parsed = sandbox.parse(
        data=pdf.read_bytes(), name=pdf.name, fmt="pdf", limits=LIMITS, layout_models=None
    )
    assert parsed.metadata["page_count"] == 3
    assert parsed.metadata["author"] == "Northwind Labs Security"


def test_sandbox_refuses_zip_bombs_encrypted_and_truncated_pdfs(sandbox):
    with pytest.raises(ParseError, match="zip bomb"):
        sandbox.parse(
            data=_zip_bomb(5_000_000), name="b.docx", fmt="docx", limits=LIMITS, layout_models=None
        )
    with pytest.raises(ParseError, match="encrypted"):
        sandbox.parse(
            data=_pdf_bytes(encrypted=True),
            name="e.pdf",
            fmt="pdf",
            limits=LIMITS,
            layout_models=None,
        )
    with pytest.raises(ParseError, match="damaged or truncated"):
        sandbox.parse(
            data=_pdf_bytes()[:600], name="t.pdf", fmt="pdf", limits=LIMITS, layout_models=None
        )
    too_many_pages = Limits(**{**LIMITS.__dict__, "max_pages": 0})
    with pytest.raises(ParseError, match="limit is 0"):
        sandbox.parse(
            data=_pdf_bytes(), name="p.pdf", fmt="pdf", limits=too_many_pages, layout_models=None
        )


def test_a_parse_over_its_time_is_killed_and_the_next_file_gets_a_fresh_parser():
    sandbox = ParserSandbox(timeout=0.5, memory_mb=3072)
    try:
        # The first request includes the parser's start-up (importing docling: seconds).
        with pytest.raises(ParseError, match=r"longer than 0\.5 s"):
            sandbox.parse(data=b"# Title", name="a.md", fmt="md", limits=LIMITS, layout_models=None)
        sandbox.timeout = 120
        parsed = sandbox.parse(
            data=b"# Title\n\nBody.", name="a.md", fmt="md", limits=LIMITS, layout_models=None
        )
        assert [item.text for item in parsed.document.texts] == ["Title", "Body."]
    finally:
        sandbox.close()


def test_a_parser_that_runs_out_of_memory_fails_the_file_not_the_worker():
    sandbox = ParserSandbox(timeout=120, memory_mb=64)
    with pytest.raises(ParseError, match=r"crashed|more memory"):
        sandbox.parse(data=b"# Title", name="a.md", fmt="md", limits=LIMITS, layout_models=None)
    sandbox.close()
