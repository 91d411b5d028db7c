"""From a file's bytes to a DoclingDocument and its metadata.

Everything here that hands bytes to a C parser (docling-parse, pdfium, lxml, zip) runs inside
the parser process (documents.sandbox), under its time and memory limits; the Celery worker
itself only calls `format_detect` and, for plain text, `text_document`, which are linear-time
Python over bytes already size-checked. No Django imports: the parser process does not set
Django up.
"""

from __future__ import annotations

import ast
import io
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Any

import filetype
from defusedxml import ElementTree
from docling_core.types.doc import DocItemLabel, DoclingDocument


class ParseError(Exception):
    """The file cannot be ingested as it is; the message tells the uploader why."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_pages: int
    max_unzipped_bytes: int
    max_zip_entries: int


@dataclass
class Parsed:
    document: DoclingDocument
    metadata: dict[str, Any] = field(default_factory=dict)


# Format name -> (what people call it, file name suffixes).
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pdf": ("a PDF", (".pdf",)),
    "docx": ("a Word document (.docx)", (".docx",)),
    "pptx": ("a PowerPoint presentation (.pptx)", (".pptx",)),
    "xlsx": ("an Excel workbook (.xlsx)", (".xlsx",)),
    "csv": ("CSV", (".csv",)),
    "html": ("HTML", (".html", ".htm")),
    "md": ("Markdown", (".md", ".markdown")),
    "text": ("plain text", (".txt", ".text")),
    "rst": ("reStructuredText", (".rst",)),
    "python": ("Python source", (".py",)),
}
_BY_SUFFIX = {suffix: name for name, (_, suffixes) in FORMATS.items() for suffix in suffixes}
SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX)
_BY_MAGIC = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
# What people call a document's content type, for lists; the MIME type itself stays in the
# detail view and the API.
CONTENT_TYPE_NAMES = {
    "application/pdf": "PDF",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "Presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Spreadsheet",
    "text/csv": "Spreadsheet (CSV)",
    "text/html": "Web page",
    "text/markdown": "Markdown",
    "text/plain": "Text",
    "text/prs.fallenstein.rst": "reStructuredText",
    "text/x-rst": "reStructuredText",
    "text/x-python": "Python source",
}


def content_type_name(content_type: str) -> str:
    """ "Word document" for a .docx's MIME type; a type without a name is shown as it is."""
    return CONTENT_TYPE_NAMES.get(content_type, content_type)


BINARY_FORMATS = {"pdf", "docx", "pptx", "xlsx"}
TEXT_FORMATS = set(FORMATS) - BINARY_FORMATS
_OOXML = {"docx", "pptx", "xlsx"}
_HTML_START = re.compile(rb"^\s*(<!doctype html|<html)", re.IGNORECASE)


def _supported() -> str:
    return ", ".join(sorted(_BY_SUFFIX))


def format_detect(*, name: str, head: bytes) -> str:
    """The format of a file, from its magic bytes where the format has them, checked against
    its name; text formats (which have no magic) from the name, or HTML from its first tag."""
    if not head:
        raise ParseError("The file is empty.")
    suffix = PurePath(name).suffix.lower()
    by_name = _BY_SUFFIX.get(suffix)
    magic = filetype.guess_mime(head)
    by_magic = _BY_MAGIC.get(magic or "")
    if by_magic:
        if by_name and by_name != by_magic:
            raise ParseError(
                f"The name says {FORMATS[by_name][0]} ({suffix}) but the content is "
                f"{FORMATS[by_magic][0]}; rename it or upload the right file."
            )
        return by_magic
    if magic and not (by_name in TEXT_FORMATS and looks_like_text(head)):
        raise ParseError(
            f"Unsupported file type {magic}"
            + (f" (named {suffix})" if suffix else "")
            + f". Supported: {_supported()}."
        )
    if by_name in BINARY_FORMATS:
        raise ParseError(
            f"The name says {FORMATS[by_name][0]} ({suffix}) but the content is not: the file is "
            "damaged or of another type."
        )
    if by_name is None:
        if _HTML_START.match(head):
            return "html"
        raise ParseError(
            f"Unsupported file type {suffix or '(no extension)'}. Supported: {_supported()}."
        )
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError(f"The name says {FORMATS[by_name][0]} but the content is binary.")
    return by_name


def looks_like_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes (a multi-byte character cut at the end is fine). Some magic
    numbers are two letters ("BM" for a bitmap), so text can look like a binary format: a
    file named as text that reads as text is text."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def text_decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or BOM-marked UTF-16; anything else is refused rather than
    guessed, since a wrong guess indexes garbage without anyone noticing."""
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"The text is not valid {encoding.removesuffix('-sig').upper()} (byte "
            f"0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8 and upload it again."
        ) from None


_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")


def text_document(*, name: str, text: str, rst: bool = False) -> DoclingDocument:
    """Paragraphs (blank-line separated) of a plain-text file; with `rst`, reStructuredText
    section titles (a line underlined with =, -, ~ ...) become headings, levels in order of
    first appearance as in docutils."""
    document = DoclingDocument(name=PurePath(name).stem or "document")
    levels: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = paragraph.strip("\n").split("\n")
        if rst and len(lines) >= 2 and _RST_UNDERLINE.match(lines[1]) and lines[0].strip():
            marker = lines[1].strip()[0]
            if marker not in levels:
                levels.append(marker)
            document.add_heading(lines[0].strip(), level=levels.index(marker) + 1)
            lines = lines[2:]
        body = "\n".join(lines).strip()
        if body:
            document.add_text(label=DocItemLabel.TEXT, text=body)
    return document


def python_document(*, name: str, source: str) -> DoclingDocument:
    """The docstrings of a Python module, each under a heading naming the class or function
    (with its signature), nested as in the code: the "ask about our code base" view."""
    try:
        tree = ast.parse(source, filename=name)
    except (SyntaxError, ValueError) as exc:
        raise ParseError(f"Not valid Python: {exc}") from None
    document = DoclingDocument(name=PurePath(name).stem or "module")
    document.add_title(PurePath(name).name)
    module_doc = ast.get_docstring(tree)
    if module_doc:
        document.add_text(label=DocItemLabel.TEXT, text=module_doc)

    def visit(node: ast.AST, level: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                heading = f"class {child.name}"
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                heading = f"def {child.name}({ast.unparse(child.args)})"
            else:
                continue
            docstring = ast.get_docstring(child)
            if docstring or _has_documented_descendant(child):
                document.add_heading(heading, level=level)
                if docstring:
                    document.add_text(label=DocItemLabel.TEXT, text=docstring)
                visit(child, level + 1)

    visit(tree, 1)
    return document


def _has_documented_descendant(node: ast.AST) -> bool:
    return any(
        isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and ast.get_docstring(child)
        for child in ast.walk(node)
        if child is not node
    )


# --- what runs only inside the parser process ----------------------------------------------------


def parse(
    *, data: bytes, name: str, fmt: str, limits: Limits, layout_models: str | None = None
) -> Parsed:
    """Parse bytes already identified by format_detect. `layout_models`: directory of docling's
    layout models, for the full PDF pipeline; None reads the PDF text layer without models."""
    if len(data) > limits.max_file_bytes:
        raise ParseError(
            f"The file is {len(data):,} bytes; the limit is {limits.max_file_bytes:,}."
        )
    metadata: dict[str, Any] = {}
    if fmt in ("text", "rst"):
        return Parsed(text_document(name=name, text=text_decode(data), rst=fmt == "rst"))
    if fmt == "python":
        return Parsed(python_document(name=name, source=text_decode(data)))
    if fmt == "pdf":
        metadata = _pdf_inspect(data, limits)
    elif fmt in _OOXML:
        metadata = _ooxml_inspect(data, limits)
    elif fmt == "html":
        metadata = _html_inspect(text_decode(data))
    elif fmt in ("md", "csv"):
        text_decode(data)
    document = _docling_convert(data=data, fmt=fmt, limits=limits, layout_models=layout_models)
    if fmt == "pptx":
        metadata["page_count"] = document.num_pages()
        if metadata["page_count"] > limits.max_pages:
            raise ParseError(
                f"The presentation has {metadata['page_count']} slides; the limit is "
                f"{limits.max_pages}."
            )
    return Parsed(document, metadata)


def _pdf_inspect(data: bytes, limits: Limits) -> dict[str, Any]:
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ParseError(
                "The PDF is encrypted (password-protected); upload an unprotected copy."
            ) from None
        raise ParseError(f"The PDF is damaged or truncated and cannot be read ({exc}).") from None
    try:
        pages = len(pdf)
        if pages > limits.max_pages:
            raise ParseError(f"The PDF has {pages:,} pages; the limit is {limits.max_pages:,}.")
        info = pdf.get_metadata_dict(skip_empty=True)
    finally:
        pdf.close()
    metadata: dict[str, Any] = {"page_count": pages}
    for key, ours in (("Title", "title"), ("Author", "author")):
        if info.get(key):
            metadata[ours] = info[key]
    for key, ours in (("CreationDate", "created"), ("ModDate", "modified")):
        if info.get(key):
            metadata[ours] = _pdf_date(info[key])
    return metadata


def _pdf_date(value: str) -> str:
    """PDF dates look like D:20240131120000+01'00'; keep the date and time as ISO 8601."""
    match = re.match(r"D?:?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?", value)
    if not match:
        return value
    year, month, day, hour, minute, second = (part or "" for part in match.groups())
    iso = f"{year}-{month or '01'}-{day or '01'}"
    return iso + (f"T{hour}:{minute or '00'}:{second or '00'}" if hour else "")


_CORE_FIELDS = {
    "{http://purl.org/dc/elements/1.1/}title": "title",
    "{http://purl.org/dc/elements/1.1/}creator": "author",
    "{http://purl.org/dc/terms/}created": "created",
    "{http://purl.org/dc/terms/}modified": "modified",
    "{http://purl.org/dc/elements/1.1/}language": "language",
}


def _ooxml_inspect(data: bytes, limits: Limits) -> dict[str, Any]:
    """Refuse zip bombs before any parser inflates them (declared sizes, checked again while
    reading the one member we read here), then read the core properties."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParseError(f"The Office file is damaged or truncated ({exc}).") from None
    if len(members) > limits.max_zip_entries:
        raise ParseError(
            f"The Office file holds {len(members):,} parts; the limit is "
            f"{limits.max_zip_entries:,}."
        )
    unzipped = sum(member.file_size for member in members)
    if unzipped > limits.max_unzipped_bytes:
        raise ParseError(
            f"The Office file would unpack to {unzipped:,} bytes; the limit is "
            f"{limits.max_unzipped_bytes:,} (a zip bomb, or a file too large to index)."
        )
    try:
        with archive.open("docProps/core.xml") as member:
            core = member.read(limits.max_unzipped_bytes + 1)
    except KeyError:
        return {}
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParseError(f"The Office file is damaged ({exc}).") from None
    try:
        root = ElementTree.fromstring(core)
    except ElementTree.ParseError:
        return {}
    metadata = {}
    for element in root:
        ours = _CORE_FIELDS.get(element.tag)
        if ours and element.text and element.text.strip():
            metadata[ours] = element.text.strip()
    return metadata


class _HeadReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.metadata: dict[str, str] = {}
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html" and values.get("lang"):
            self.metadata["language"] = values["lang"]
        elif tag == "title":
            self._in_title = True
        elif tag == "meta" and values.get("name") in ("author", "date") and values.get("content"):
            self.metadata["author" if values["name"] == "author" else "created"] = values["content"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and data.strip():
            self.metadata["title"] = (self.metadata.get("title", "") + data).strip()


def _html_inspect(text: str) -> dict[str, Any]:
    reader = _HeadReader()
    reader.feed(text)
    return reader.metadata


def _docling_convert(
    *, data: bytes, fmt: str, limits: Limits, layout_models: str | None
) -> DoclingDocument:
    from docling.datamodel.base_models import ConversionStatus
    from docling.exceptions import ConversionError
    from docling_core.types.io import DocumentStream

    converter = _converter(layout_models)
    # Each format this reaches is named like its file suffix, which is how docling picks a reader.
    stream = DocumentStream(name=f"document.{fmt}", stream=io.BytesIO(data))
    try:
        result = converter.convert(
            stream,
            raises_on_error=False,
            max_num_pages=limits.max_pages,
            max_file_size=limits.max_file_bytes,
        )
    except ConversionError as exc:
        raise ParseError(f"docling could not read the file: {exc}") from None
    if result.status not in (ConversionStatus.SUCCESS, ConversionStatus.PARTIAL_SUCCESS):
        reasons = "; ".join(error.error_message for error in result.errors) or result.status.value
        raise ParseError(f"docling could not read the file: {reasons}")
    return result.document


_converters: dict[str | None, Any] = {}


def _converter(layout_models: str | None) -> Any:
    """One DocumentConverter per pipeline choice, kept for the life of the parser process:
    building one loads its backends (and, for the layout pipeline, its models)."""
    if layout_models in _converters:
        return _converters[layout_models]
    from docling.datamodel.base_models import InputFormat
    from docling.datamodel.pipeline_options import NativePdfPipelineOptions, PdfPipelineOptions
    from docling.document_converter import DocumentConverter, PdfFormatOption
    from docling.pipeline.native_pdf_pipeline import NativePdfPipeline

    if layout_models:
        pdf_option = PdfFormatOption(
            pipeline_options=PdfPipelineOptions(artifacts_path=layout_models, do_ocr=False)
        )
    else:
        pdf_option = PdfFormatOption(
            pipeline_cls=NativePdfPipeline,
            pipeline_options=NativePdfPipelineOptions(parser_threads=1),
        )
    converter = DocumentConverter(
        allowed_formats=[
            InputFormat.PDF,
            InputFormat.DOCX,
            InputFormat.PPTX,
            InputFormat.XLSX,
            InputFormat.CSV,
            InputFormat.HTML,
            InputFormat.MD,
        ],
        format_options={InputFormat.PDF: pdf_option},
    )
    _converters[layout_models] = converter
    return converter
