"""Files for ingestion tests, good and broken, made on the spot."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
from fpdf import FPDF

from documents.samples import sample_corpus_write


def good_files(directory: Path) -> list[Path]:
    """One file of every supported format (the sample corpus)."""
    return sample_corpus_write(directory=directory)


def _pdf_bytes(*, encrypted: bool = False) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, "A page about goggles. " * 20)
    if encrypted:
        pdf.set_encryption(owner_password="owner", user_password="user")
    return bytes(pdf.output())


def broken_files(directory: Path, *, size_limit: int, unzipped_limit: int) -> dict[str, Path]:
    """name -> path of files that must fail, each for its own reason."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "truncated.pdf": _pdf_bytes()[:600],
        "encrypted.pdf": _pdf_bytes(encrypted=True),
        "empty.txt": b"",
        "latin1.txt": "Caf\u00e9 cr\u00e8me".encode("latin-1"),
        "oversized.txt": b"word " * (size_limit // 5 + 1),
        "bomb.docx": _zip_bomb(unzipped_limit),
    }
    # A real Word document under a PDF's name.
    word = docx.Document()
    word.add_paragraph("A Word document pretending to be a PDF.")
    buffer = io.BytesIO()
    word.save(buffer)
    files["renamed.pdf"] = buffer.getvalue()
    paths = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        paths[name] = path
    return paths


def _zip_bomb(unzipped_limit: int) -> bytes:
    """A .docx whose one extra part inflates beyond the limit (it compresses ~1000:1)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr("word/document.xml", "<w:document/>")
        archive.writestr("word/padding.bin", b"\0" * (unzipped_limit + 1024))
    return buffer.getvalue()
