import codecs

import pytest

from assistcode.errors import EncodingError
from assistcode.textio import decode_bytes, read_text, sniff_file_encoding

TEXT = "Interviewer: café — “quoted”\r\nP1: naïve\rend"
LF = "Interviewer: café — “quoted”\nP1: naïve\nend"


@pytest.mark.parametrize(
    "data, encoding",
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),  # Python writes a BOM
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
    ],
)
def test_unicode_encodings_decode_and_normalise_newlines(data, encoding):
    decoded = decode_bytes(data)
    assert decoded.text == LF
    assert decoded.encoding == encoding
    assert decoded.warnings == []


def test_cp1252_is_a_fallback_with_a_warning(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("line one\nIt’s “smart” – café\n".encode("cp1252"))
    decoded = read_text(path)
    assert decoded.text == "line one\nIt’s “smart” – café\n"
    assert decoded.encoding == "cp1252"
    assert "line 2" in decoded.warnings[0] and "--encoding" in decoded.warnings[0]
    assert sniff_file_encoding(path, chunk_size=3)[0] == "cp1252"


def test_explicit_encoding_overrides(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("ĳ".encode("utf-8"))
    assert read_text(path, encoding="latin-1").text == "Ä³"


def test_nul_byte_means_binary(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"abc\x00def")
    with pytest.raises(EncodingError, match=r"t.txt: binary content \(NUL byte at offset 3\)"):
        read_text(path)
    with pytest.raises(EncodingError, match="binary"):
        sniff_file_encoding(path)


def test_unknown_encoding_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"ok\nok\n\x81\x8d bad\n")  # undefined in cp1252, invalid UTF-8
    with pytest.raises(EncodingError) as err:
        read_text(path)
    assert err.value.line == 3 and "--encoding" in str(err.value)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("  \n\n")
    with pytest.raises(EncodingError, match="empty file"):
        read_text(path)


def test_utf8_split_across_chunks_is_still_utf8(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(("é" * 1000).encode("utf-8"))
    assert sniff_file_encoding(path, chunk_size=7)[0] == "utf-8"
