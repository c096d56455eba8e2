"""Migration from Microsoft Dynamics RMS: read CSV exports, map them, stage rows (DOMAIN §7).

An RMS table export dropped at ``migration/data/<entity>/<name>.csv`` goes through four
streaming steps, each usable alone and none holding more than a window of the file:

1. ``decode_stream`` turns S3 byte chunks into text: UTF-8 (with or without BOM), or
   Windows-1252, which is what RMS and Excel on Windows usually write, as the first 64 KB
   decide (DOMAIN §13) or the mapping's ``"encoding"`` forces. Bytes that are not UTF-8 in a
   UTF-8 file make their rows row errors (never mojibake); anything that is not text is an
   ``UnreadableFile`` whose ``reason`` names the problem.
2. ``read_rows`` finds the delimiter and the header and yields ``(row_number, {column: cell})``.
3. ``map_row`` turns one RMS row into a target record through a field mapping
   (``DEFAULT_MAPPINGS`` or one dropped at ``migration/mappings/<entity>.json``) and fills the
   fields RMS does not have with the defaults of DOMAIN §7.
4. ``stage_row`` validates the record with its model (``models/parsing.py``) and keeps each error against
   the **source column**, which is what the operator can fix in the export.

``stage_file`` chains the four. Example::

    context = MigrationContext(legal_entities=("USRT",), company_language="en-us")
    try:
        for staged in stage_file("products", DEFAULT_MAPPINGS["products"], chunks, context):
            save(staged.row_number, staged.source, staged.record, staged.errors)
    except UnreadableFile as exc:
        fail_job(exc.reason)                  # staging job status Failed, file kept
"""
from __future__ import annotations

import bisect
import codecs
import csv
import itertools
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import unquote_plus

from chalicelib.domain.errors import DomainError, FieldError
from chalicelib.domain.parameters import DEFAULT_PARAMETERS
from chalicelib.domain.pay import PayPeriodType
from chalicelib.domain.receipts import ReceiptOption
from chalicelib.models.parsing import check_record, has_field

SourceColumn = str | list[str]
"""A column name, or several whose trimmed, non-empty values are joined by a space."""

FieldMapping = Mapping[str, SourceColumn]
"""``{target_field: source_column}`` for one entity."""

MIGRATION_ENTITIES: tuple[str, ...] = ("stores", "customers", "workers", "categories", "products", "inventory")
"""What can be migrated, in the order it should be (stores before what references them)."""

DEFAULT_MAPPINGS: dict[str, dict[str, SourceColumn]] = {
    # Store.ID, not StoreCode: Cashier.StoreID and the ItemDynamic (inventory) export reference it.
    "stores": {"id": "ID", "name": "Name", "org_node_id": "Region"},
    "customers": {"id": "AccountNumber", "name": ["FirstName", "LastName"], "email": "EmailAddress"},
    "workers": {"id": "Number", "name": "Name", "store_id": "StoreID"},
    # Category.DepartmentID is not mapped to parent_id: RMS numbers departments and categories
    # in separate sequences, so department 1 would collide with category 1. Categories land
    # under the root ALL; map parent_id explicitly once departments have non-colliding ids.
    "categories": {"id": "ID", "name": "Name"},
    "products": {
        "id": "ItemLookupCode",
        "name": "Description",
        "category_id": "CategoryID",
        "price": "Price",
        "stopped": "Inactive",
    },
    "inventory": {"store_id": "StoreID", "product_id": "ItemLookupCode", "qty": "Quantity"},
}
"""The RMS column each target field comes from when no mapping has been dropped."""

STAGED = "Staged"
STAGED_WITH_ERRORS = "StagedWithErrors"
FAILED = "Failed"
COMPLETED = "Completed"
COMPLETED_WITH_ERRORS = "CompletedWithErrors"
CLEANED = "Cleaned"

ROOT_CATEGORY = "ALL"
DEFAULT_PAY_PERIOD_TYPE = PayPeriodType.MONTHLY.value
DEFAULT_BASE_RATE = Decimal("0")
"""RMS keeps no pay rate for a cashier; set the real rate before the first transfer to pay."""

EXTRA_CELLS_COLUMN = "(extra cells)"
"""Key under which ``read_rows`` keeps the non-empty cells a row has beyond the header."""

INVALID_BYTES = "(invalid bytes)"
"""Key under which ``read_rows`` keeps, for a row holding bytes that are not UTF-8,
``{column: "invalid UTF-8 byte 0xE9 at byte offset 1234"}`` (the cells hold U+FFFD instead)."""

ROW_COLUMN = "(row)"
"""The column an error names when it is about the row as a whole."""

SNIFF_BYTES = 64 * 1024
"""How much of the file decides its encoding and (as text) its delimiter."""

SNIFF_LINES = 20
MAX_LINE_CHARS = 1024 * 1024
BINARY_CONTROL_RATIO = 0.05
"""Above this share of control characters in the first ``SNIFF_BYTES`` a file is binary."""

DELIMITERS = ",;\t|"

# Kinds of CSV text → target value conversion, per mappable target field (DOMAIN §12).
_TEXT = "text"
_BOOL = "bool"
_DECIMAL = "decimal"
_CHOICE = "choice"
_RMS_REFERENCE = "rms-reference"  # RMS writes 0 for "none" in its numeric foreign keys

_FIELD_KINDS: dict[str, dict[str, str]] = {
    "stores": {
        "id": _TEXT, "name": _TEXT, "legal_entity": _TEXT, "org_node_id": _TEXT,
        "warehouse_id": _TEXT, "email": _TEXT,
    },
    "customers": {"id": _TEXT, "name": _TEXT, "email": _TEXT, "language": _TEXT, "receipt_option": _CHOICE},
    "workers": {
        "id": _TEXT, "name": _TEXT, "export_id": _TEXT, "store_id": _RMS_REFERENCE,
        "pay_period_type": _CHOICE, "base_rate": _DECIMAL,
    },
    "categories": {"id": _TEXT, "name": _TEXT, "parent_id": _RMS_REFERENCE, "revenue_account": _TEXT},
    "products": {
        "id": _TEXT, "name": _TEXT, "category_id": _RMS_REFERENCE, "price": _DECIMAL,
        "stopped": _BOOL, "allow_negative_inventory": _BOOL,
    },
    "inventory": {"store_id": _TEXT, "product_id": _TEXT, "variant_id": _TEXT, "qty": _DECIMAL},
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "receipt_option": tuple(option.value for option in ReceiptOption),
    "pay_period_type": tuple(period.value for period in PayPeriodType),
}

# Target fields that have no migration default: a mapping must name them and the file must
# have their columns.
_REQUIRED_TARGETS: dict[str, tuple[str, ...]] = {
    "stores": ("id", "name"),
    "customers": ("id", "name"),
    "workers": ("id", "name"),
    "categories": ("id", "name"),
    "products": ("id", "name", "category_id", "price"),
    "inventory": ("store_id", "product_id", "qty"),
}

# Reference fields checked against ``MigrationContext.known_ids``: field → (entity, label).
_REFERENCES: dict[str, dict[str, tuple[str, str]]] = {
    "stores": {"org_node_id": ("org-nodes", "organization node")},
    "categories": {"parent_id": ("categories", "category")},
    "products": {"category_id": ("categories", "category")},
    "workers": {"store_id": ("stores", "store")},
    "inventory": {"store_id": ("stores", "store"), "product_id": ("products", "product")},
}

_TRUE = frozenset({"1", "-1", "true", "t", "y", "yes"})
_FALSE = frozenset({"0", "false", "f", "n", "no"})

_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_THOUSANDS_COMMA = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_THOUSANDS_DOT = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d+)?")
_LOOKS_NUMERIC = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")

_LINE_END = re.compile(r"\r\n|\n|\r(?=.)", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x19\x1b-\x1f\x7f-\x9f]")  # \x1a: DOS end-of-file mark
_PATH_SEPARATOR = re.compile(r"[.\[]")

_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "it is a ZIP archive or an Excel .xlsx workbook; export the table as CSV"),
    (b"\xd0\xcf\x11\xe0", "it is an Excel .xls workbook; export the table as CSV"),
    (b"%PDF", "it is a PDF document"),
    (b"\x1f\x8b", "it is gzip-compressed; upload the uncompressed CSV"),
)
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

UTF8 = "utf-8-sig"
CP1252 = "cp1252"
LATIN1 = "latin-1"
"""The encodings a file is read in, as staging jobs and file positions name them."""

ENCODINGS: dict[str, str] = {"utf-8": UTF8, "windows-1252": CP1252, "latin-1": LATIN1}
"""What a mapping's ``"encoding"`` may say (any case) → the encoding it forces."""

_ENCODING_ALIASES: dict[str, str] = {
    **ENCODINGS, "utf8": UTF8, "utf-8-sig": UTF8, "cp1252": CP1252, "latin1": LATIN1, "iso-8859-1": LATIN1,
}
MAPPING_OPTIONS = ("encoding",)
"""Keys of a mapping that are options, not target fields."""

_SINGLE_BYTE = (CP1252, LATIN1)
_MAX_CUT = 3  # bytes of a UTF-8 character that the end of a window can cut off
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_ESCAPED = re.compile("[\udc80-\udcff]")  # an invalid UTF-8 byte, as ``surrogateescape`` decodes it
_MULTI_BYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")


class UnreadableFile(DomainError):
    """The file cannot be staged at all; ``reason`` says why, in words an operator can act on.

    The staging job becomes ``Failed`` with this reason and the file is kept.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MigrationContext:
    """What the migration knows besides the file: HQ settings and the records already there.

    ``legal_entities``: every legal entity that has a store (products are released to all).
    ``default_legal_entity``: the company stores are migrated into (RMS has no legal entity).
    ``default_org_node_id``: the organization node of a store whose RMS ``Region`` is blank.
    ``default_store_id``: the store of a worker whose row names none (RMS ``StoreID`` blank,
    0, or not exported — a single-store RMS has no ``Cashier.StoreID``).
    ``store_warehouses``: store id → warehouse id for inventory; a store not listed is its own
    warehouse (the §12 default). ``decimal_comma``: numbers use a decimal comma (set from the
    file by ``stage_file``). ``known_ids``: entity → ids that exist; a reference to an entity
    listed here must resolve, references to entities not listed are not checked.
    """

    legal_entities: tuple[str, ...] = ()
    company_language: str = DEFAULT_PARAMETERS["company_language"]
    default_legal_entity: str | None = None
    default_org_node_id: str | None = None
    default_store_id: str | None = None
    store_warehouses: Mapping[str, str] = field(default_factory=dict)
    decimal_comma: bool = False
    known_ids: Mapping[str, AbstractSet[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class FilePosition:
    """Where reading a file can continue after a pause (``stage_file(..., resume=position)``).

    ``offset``: the byte where the next row starts; ``line``: the lines of the file before it
    (row numbers go on from there); ``header_end``: the bytes up to the end of the header, which
    a resumed read gets again for the columns; ``delimiter``, ``encoding`` and ``ascii_only``
    (nothing but ASCII read yet, so the encoding is still to be decided, at the same byte as
    without the pause) as found when the file was started, so the rest of the file reads
    exactly as it would have without the pause: a decided encoding is reused, never decided
    again from the middle of the file. Plain data: ``asdict`` / ``FilePosition(**d)``.
    """

    offset: int
    line: int
    header_end: int
    delimiter: str
    encoding: str
    ascii_only: bool


@dataclass(frozen=True)
class StagedRow:
    """One CSV row in staging: the row as read, the record it maps to (``None`` when the row
    has errors) and its errors, each ``{"column": <source column>, "message": ...}``.
    ``position`` (from ``stage_file``) is where the rows after this one start."""

    row_number: int
    source: dict[str, str]
    record: dict[str, Any] | None
    errors: list[dict[str, str]]
    position: FilePosition | None = None

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class DropKey:
    """What an object created under ``migration/`` is.

    ``kind``: ``mapping`` (``migration/mappings/<entity>.json``), ``data``
    (``migration/data/<entity>/<name>.csv``) or ``unknown`` (``reason`` says why).
    ``key`` is the decoded object key — the one to read the object with.
    """

    kind: Literal["mapping", "data", "unknown"]
    entity: str | None
    name: str | None
    key: str
    reason: str = ""


# ---------------------------------------------------------------------------
# Mappings
# ---------------------------------------------------------------------------


def validate_mapping(entity: str, mapping: Any) -> list[FieldError]:
    """Check a dropped mapping; return its errors (empty when it can be used).

    A mapping replaces the entity's default mapping as a whole. Each key must be a field of the
    entity that a CSV column can feed (lists such as ``released_to`` are set by the migration),
    each value a column name or a non-empty list of column names, and every field without a
    migration default (``price``, ``name``...) must be mapped. The one option, ``"encoding"``,
    forces how the files are read instead of deciding it from their bytes (``ENCODINGS``).
    """
    if entity not in MIGRATION_ENTITIES:
        return [FieldError("entity", f"unknown entity {entity!r}; expected one of: {', '.join(MIGRATION_ENTITIES)}")]
    if not isinstance(mapping, dict):
        return [FieldError("", 'must be an object {"target_field": "SourceColumn", ...}')]
    errors: list[FieldError] = []
    kinds = _FIELD_KINDS[entity]
    for target, source in mapping.items():
        if target == "encoding":
            if not isinstance(source, str) or source.strip().lower() not in _ENCODING_ALIASES:
                expected = ", ".join(ENCODINGS)
                errors.append(FieldError(target, f"unknown encoding {source!r}; expected one of: {expected}"))
        elif target not in kinds:
            if has_field(entity, target):
                errors.append(FieldError(target, "is set by the migration and cannot be mapped from a column"))
            else:
                errors.append(FieldError(target, f"is not a field of {entity}"))
        elif not _is_source_column(source):
            errors.append(FieldError(target, "must be a column name or a non-empty list of column names"))
    for target in _REQUIRED_TARGETS[entity]:
        if target not in mapping:
            errors.append(FieldError(target, "is required and not mapped to any column"))
    return errors


def mapping_encoding(mapping: FieldMapping) -> str | None:
    """The encoding a (valid) mapping forces, ``utf-8-sig``, ``cp1252`` or ``latin-1``; ``None``: decide."""
    value = mapping.get("encoding")
    return _ENCODING_ALIASES[value.strip().lower()] if isinstance(value, str) else None


def required_columns(entity: str, mapping: FieldMapping) -> list[str]:
    """The source columns a file must have: those feeding a field without a migration default."""
    _check_entity(entity)
    columns: list[str] = []
    for target in _REQUIRED_TARGETS[entity]:
        for column in _columns(mapping.get(target, [])):
            if column not in columns:
                columns.append(column)
    return columns


def referenced_entities(entity: str) -> tuple[str, ...]:
    """The entities whose ids a row of ``entity`` refers to (``MigrationContext.known_ids`` keys)."""
    _check_entity(entity)
    return tuple(dict.fromkeys(referenced for referenced, _ in _REFERENCES.get(entity, {}).values()))


def source_column_label(source: SourceColumn) -> str:
    """How an error names a source: ``Price``, or ``FirstName + LastName`` for a combination."""
    return " + ".join(_columns(source))


def _is_source_column(source: Any) -> bool:
    if isinstance(source, str):
        return bool(source.strip())
    return (
        isinstance(source, list)
        and bool(source)
        and all(isinstance(column, str) and column.strip() for column in source)
    )


def _columns(source: SourceColumn) -> list[str]:
    return [source] if isinstance(source, str) else list(source)


def _check_entity(entity: str) -> None:
    if entity not in MIGRATION_ENTITIES:
        raise ValueError(f"unknown migration entity {entity!r}; expected one of: {', '.join(MIGRATION_ENTITIES)}")


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


def decode_stream(chunks: Iterable[bytes], encoding: str | None = None) -> TextStream:
    """Decode a file arriving in byte chunks; its encoding is decided on its first 64 KB.

    The rule (DOMAIN §13), on the bytes of the first ``SNIFF_BYTES``: a valid multi-byte UTF-8
    sequence (a BOM is one) or nothing but ASCII → UTF-8; bytes that are not UTF-8 and no valid
    multi-byte sequence → Windows-1252. Edges:

    - A character cut by the end of the window is not an invalid byte: the window takes the rest
      of it (up to 3 bytes more), so it counts as what it is.
    - When the first 64 KB are pure ASCII the decision waits for the first non-ASCII byte and is
      taken on the 64 KB from there (ASCII reads the same in both encodings, so nothing read
      before changes): a Windows-1252 export whose first accent comes late still reads as
      Windows-1252, and a UTF-8 file is never read as Windows-1252 for one stray byte.

    In UTF-8, a byte that is not UTF-8 stays in the text as a lone surrogate U+DC80–U+DCFF
    (Python's ``surrogateescape``) and its file offset goes to ``TextStream.invalid_bytes``;
    ``read_rows`` makes the row holding it a row error. ``encoding`` (a value of ``ENCODINGS``,
    from the mapping) forces the encoding. A BOM is dropped; characters split across chunks
    decode correctly. Raises ``UnreadableFile`` for binary content (NUL bytes, a workbook or
    archive, mostly control characters), UTF-16, or a byte Windows-1252 does not define in a
    file read as Windows-1252.
    """
    return TextStream(chunks, encoding=encoding)


class TextStream(Iterator[str]):
    """The text of a file arriving in byte chunks (see ``decode_stream``), which also knows how
    many bytes of the file each piece of that text took, so a reader can tell where it is.

    With ``resume`` the chunks are the file's first ``resume.header_end`` bytes followed by the
    bytes from ``resume.offset`` on; the encoding is the one decided before the pause (or, if
    nothing but ASCII had been read, decided at the same byte as it would have been), and byte
    offsets are the file's. ``encoding`` forces the encoding (a value of ``ENCODINGS``).
    """

    def __init__(self, chunks: Iterable[bytes], resume: FilePosition | None = None, encoding: str | None = None):
        self._resume = resume
        if encoding is None and resume is not None and not resume.ascii_only:
            encoding = resume.encoding
        gap = (resume.header_end, resume.offset) if resume is not None else None
        self._decoder = _Decoder(encoding, gap=gap)
        self._bom_pending = 0
        self._texts = self._decode(iter(chunks))

    def __next__(self) -> str:
        return next(self._texts)

    @property
    def encoding(self) -> str:
        """``utf-8-sig``, ``cp1252`` or ``latin-1``; ``utf-8-sig`` while nothing but ASCII was read."""
        return self._decoder.encoding or UTF8

    @property
    def ascii_only(self) -> bool:
        """The encoding is still open: nothing but ASCII read so far and no encoding forced."""
        return self._decoder.encoding is None

    @property
    def invalid_bytes(self) -> deque[tuple[int, int]]:
        """``(file offset, byte)`` of the invalid UTF-8 bytes decoded and not yet taken, in file order."""
        return self._decoder.invalid

    def measure(self, text: str) -> int:
        """The bytes ``text`` took in the file; call it on the text in the order it was read
        (the BOM counts with the first text measured).

        Exact whatever the encoding: Windows-1252 and Latin-1 are one byte a character, an
        invalid UTF-8 byte is one surrogate, and text read before the encoding was decided is
        ASCII, which has the same length in all of them.
        """
        if self._decoder.encoding in _SINGLE_BYTE:
            size = len(text)
        else:
            size = len(text.encode("utf-8", "surrogateescape"))
        size, self._bom_pending = size + self._bom_pending, 0
        return size

    def _decode(self, source: Iterator[bytes]) -> Iterator[str]:
        head = bytearray()
        complete = False
        while len(head) < SNIFF_BYTES:
            chunk = next(source, None)
            if chunk is None:
                complete = True
                break
            head += chunk
        prefix = bytes(head)
        if self._resume is None:
            _check_text(prefix[:SNIFF_BYTES], complete and len(prefix) <= SNIFF_BYTES)
        decoder = self._decoder
        started = False

        def first(text: str) -> str:
            nonlocal started
            if not started and text:
                started = True
                if text.startswith("\ufeff"):  # only UTF-8 decodes to U+FEFF: the BOM at offset 0
                    self._bom_pending = len(codecs.BOM_UTF8)
                    return text[1:]
            return text

        text = first(decoder.decode(prefix, final=complete))
        if text:
            yield text
        if complete:
            return
        for chunk in source:
            text = first(decoder.decode(chunk))
            if text:
                yield text
        text = first(decoder.decode(b"", final=True))
        if text:
            yield text


def _check_text(prefix: bytes, complete: bool) -> None:
    """Raise ``UnreadableFile`` unless the file starting with ``prefix`` is text."""
    for signature, what in _BINARY_SIGNATURES:
        if prefix.startswith(signature):
            raise UnreadableFile(f"file is not text: {what}")
    if prefix.startswith(_UTF16_BOMS):
        raise UnreadableFile("file is UTF-16 text (byte order mark at offset 0); export it as UTF-8 or Windows-1252")
    nul = prefix.find(b"\x00")
    if nul >= 0:
        raise UnreadableFile(f"file is not text: NUL bytes at offset {nul}")
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(prefix, final=complete)
    controls = len(_CONTROL.findall(text))
    if text and controls / len(text) > BINARY_CONTROL_RATIO:
        raise UnreadableFile(
            f"file is not text: {controls} control characters in its first {len(text)} characters"
        )


def _verdict(data: bytes, size: int, final: bool) -> tuple[str, int]:
    """``(encoding, bytes judged)`` for bytes starting at a non-ASCII byte: UTF-8 when the window
    ``data[:size]`` — with the rest of a character its end cuts — holds a valid multi-byte UTF-8
    sequence, else Windows-1252 (it holds a byte that is not UTF-8). ``final``: ``data`` ends the
    file (a character cut by the end of the file is invalid)."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    end = min(size, len(data))
    text = decoder.decode(data[:end], final=final and end == len(data))
    while decoder.getstate()[0] and end < len(data):  # a character cut by the window: take the rest of it
        end += 1
        text += decoder.decode(data[end - 1:end], final=final and end == len(data))
    if _MULTI_BYTE.search(text) or not _ESCAPED.search(text):
        return UTF8, end
    return CP1252, end


class _Decoder:
    """An incremental decoder that knows byte offsets, so every failure can say where.

    ``encoding`` ``None``: not decided yet (nothing but ASCII so far; see ``decode_stream``).
    ``gap``: ``(header_end, offset)`` when the bytes fed skip from ``header_end`` to ``offset``
    of the file (a resumed read), so offsets are still the file's.
    """

    def __init__(self, encoding: str | None, gap: tuple[int, int] | None = None):
        self.encoding: str | None = None
        self.invalid: deque[tuple[int, int]] = deque()
        self._codec: codecs.IncrementalDecoder | None = None
        self._fed = 0  # bytes fed so far
        self._gap = gap
        self._pending = bytearray()  # undecided: the bytes from the first non-ASCII byte on
        self._pending_at = 0
        if encoding is not None:
            self._choose(encoding)

    def decode(self, data: bytes, final: bool = False) -> str:
        nul = data.find(b"\x00")
        if nul >= 0:
            raise UnreadableFile(f"file is not text: NUL bytes at offset {self._file_offset(self._fed + nul)}")
        start, self._fed = self._fed, self._fed + len(data)
        if self._codec is None:
            return self._undecided(data, start, final)
        return self._decode(data, start, final)

    def _choose(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == UTF8:  # the BOM is dropped by ``TextStream``, so every byte has its character
            self._codec = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        else:
            self._codec = codecs.getincrementaldecoder(encoding)()

    def _undecided(self, data: bytes, start: int, final: bool) -> str:
        text = ""
        if not self._pending:
            match = _NON_ASCII.search(data)
            if match is None:
                return data.decode("ascii")
            text = data[:match.start()].decode("ascii")
            self._pending_at = start + match.start()
            data = data[match.start():]
        self._pending += data
        encoding = self._decide(final)
        if encoding is None:
            return text
        self._choose(encoding)
        pending, self._pending = bytes(self._pending), bytearray()
        return text + self._decode(pending, self._pending_at, final)

    def _decide(self, final: bool) -> str | None:
        """The encoding once the window from the first non-ASCII byte is in (``None``: not yet)."""
        at = self._file_offset(self._pending_at)
        size = SNIFF_BYTES - at if at < SNIFF_BYTES else SNIFF_BYTES
        if len(self._pending) < size + _MAX_CUT and not final:
            return None
        window = bytes(self._pending[:size + _MAX_CUT])
        encoding, judged = _verdict(window, size, final and len(self._pending) == len(window))
        if encoding == CP1252:
            try:
                window[:judged].decode(CP1252)
            except UnicodeDecodeError as exc:
                raise UnreadableFile(f"file is neither UTF-8 nor Windows-1252 text: byte 0x{window[exc.start]:02X} "
                                     f"at offset {at + exc.start}") from None
        return encoding

    def _decode(self, data: bytes, start: int, final: bool) -> str:
        """Decode ``data``, which starts at byte ``start`` of the bytes fed."""
        codec = self._codec
        begin = start - len(codec.getstate()[0])  # where the text starts: with the bytes still buffered
        try:
            text = codec.decode(data, final)
        except UnicodeDecodeError as exc:  # Windows-1252 leaves five bytes undefined
            at = self._file_offset(begin + exc.start)
            raise UnreadableFile(f"file is not valid Windows-1252 text: byte 0x{exc.object[exc.start]:02X} "
                                 f"at offset {at}") from None
        if self.encoding == UTF8 and _ESCAPED.search(text):
            self._note_invalid(text, begin)
        return text

    def _note_invalid(self, text: str, begin: int) -> None:
        """Keep the file offset of each escaped byte of ``text``, which starts at byte ``begin`` fed."""
        at, last = begin, 0
        for match in _ESCAPED.finditer(text):
            at += len(text[last:match.start()].encode("utf-8", "surrogateescape"))
            self.invalid.append((self._file_offset(at), ord(match.group()) - 0xDC00))
            at, last = at + 1, match.end()

    def _file_offset(self, fed: int) -> int:
        if self._gap is None or fed < self._gap[0]:
            return fed
        header_end, offset = self._gap
        return fed - header_end + offset


# ---------------------------------------------------------------------------
# Reading CSV
# ---------------------------------------------------------------------------


def read_rows(
    text_chunks: Iterable[str], required_columns: Iterable[str] = (), *, resume: FilePosition | None = None
) -> SourceRows:
    """The data rows of a CSV export as ``(row_number, {column: cell})``, streamed.

    Reads the header at once (so an unreadable file fails here) and the rows as iterated; see
    ``SourceRows``. Raises ``UnreadableFile`` for an empty file, a file without a header row,
    or one missing any of ``required_columns``.
    """
    return SourceRows(text_chunks, required_columns, resume=resume)


class SourceRows(Iterator[tuple[int, dict[str, str]]]):
    """An iterator over the data rows of a CSV export, holding one row (and a small read-ahead
    buffer) at a time whatever the file size.

    ``delimiter`` is detected among comma, semicolon, tab and pipe (``csv.Sniffer`` on the
    first lines, checked against the header line; else the candidate most frequent in the
    header; else comma). ``columns`` is the header, trimmed; cells under an empty column name
    are ignored. ``row_number`` is the line of the file where the row starts (the header is
    usually line 1), so an operator finds it in any editor. Cells are kept as written; blank
    lines are skipped. Non-empty cells beyond the header are kept, joined by the delimiter,
    under ``EXTRA_CELLS_COLUMN``.

    Given a ``TextStream``, ``position`` tells where the rows after the last one returned start;
    ``resume`` continues from such a position (the stream then holds the header and the bytes
    from there, see ``TextStream``) with the delimiter found at the start.
    """

    def __init__(
        self, text_chunks: Iterable[str], required_columns: Iterable[str] = (), *, resume: FilePosition | None = None
    ):
        self._text = text_chunks if isinstance(text_chunks, TextStream) else None
        self._bytes = 0  # bytes of the lines the CSV reader has taken
        self._line_shift = 0
        lines = _physical_lines(text_chunks)
        sample: list[str] = []
        content: list[str] = []
        size = 0
        for line in lines:
            sample.append(line)
            size += len(line)
            if line.strip():
                content.append(line)
            if len(content) >= SNIFF_LINES or size >= SNIFF_BYTES:
                break
        if not content:
            raise UnreadableFile("file is empty")
        self.delimiter = resume.delimiter if resume else _detect_delimiter(content)
        self._reader = csv.reader(
            self._measured(itertools.chain(sample, lines)), delimiter=self.delimiter, quotechar='"',
            skipinitialspace=True,
        )
        self._last_line = 0
        self.columns: list[str] = []
        header: list[str] | None = None
        while header is None:
            _, cells = self._next_record()
            if any(cell.strip() for cell in cells):
                header = cells
        invalid = self._invalid_bytes()
        if invalid:
            at, byte = invalid[0]
            raise UnreadableFile(f"header has an invalid UTF-8 byte 0x{byte:02X} at byte offset {at}")
        self.columns = _check_header(header, self._reader.line_num)
        self.header_end = self._bytes
        if resume is not None:
            self._bytes = resume.offset
            self._line_shift = resume.line - self._last_line
        present = set(self.columns)
        wanted = list(dict.fromkeys(required_columns))
        missing = [column for column in wanted if column not in present]
        if missing:
            reason = f"missing required column(s): {', '.join(missing)}"
            if len(missing) == len(wanted):
                reason += " (the first line has none of the expected column names; is the header row missing?)"
            raise UnreadableFile(reason)

    @property
    def decimal_comma(self) -> bool:
        return uses_decimal_comma(self.delimiter)

    @property
    def position(self) -> FilePosition | None:
        """Where the rows after the last one returned start; ``None`` unless read from a ``TextStream``."""
        if self._text is None:
            return None
        return FilePosition(
            offset=self._bytes, line=self._last_line + self._line_shift, header_end=self.header_end,
            delimiter=self.delimiter, encoding=self._text.encoding, ascii_only=self._text.ascii_only,
        )

    def __next__(self) -> tuple[int, dict[str, str]]:
        while True:
            row_number, cells = self._next_record()
            if not any(cell.strip() for cell in cells):
                continue
            invalid = self._invalid_bytes()
            problems = self._mark_invalid(cells, invalid) if invalid else None
            row: dict[str, Any] = {column: cell for column, cell in zip(self.columns, cells, strict=False) if column}
            extra = cells[len(self.columns):]
            if any(cell.strip() for cell in extra):
                row[EXTRA_CELLS_COLUMN] = self.delimiter.join(extra)
            if problems:
                row[INVALID_BYTES] = problems
            return row_number + self._line_shift, row

    def _invalid_bytes(self) -> list[tuple[int, int]]:
        """The invalid UTF-8 bytes of the record just read: those before where the next starts."""
        queue = self._text.invalid_bytes if self._text is not None else None
        taken = []
        while queue and queue[0][0] < self._bytes:
            taken.append(queue.popleft())
        return taken

    def _mark_invalid(self, cells: list[str], invalid: list[tuple[int, int]]) -> dict[str, str]:
        """Replace the invalid bytes in ``cells`` by U+FFFD; ``{column: message}`` naming the
        first invalid byte of each cell (cells beyond the header are ``EXTRA_CELLS_COLUMN``,
        under an empty column name ``ROW_COLUMN``)."""
        found = iter(invalid)
        problems: dict[str, str] = {}
        for index, cell in enumerate(cells):
            count = len(_ESCAPED.findall(cell))
            if not count:
                continue
            cells[index] = _ESCAPED.sub("\ufffd", cell)
            column = (self.columns[index] or ROW_COLUMN) if index < len(self.columns) else EXTRA_CELLS_COLUMN
            first = next(found, None)
            for _ in range(count - 1):
                next(found, None)
            message = "invalid UTF-8 byte" if first is None else \
                f"invalid UTF-8 byte 0x{first[1]:02X} at byte offset {first[0]}"
            if count > 1:
                message += f" and {count - 1} more"
            problems.setdefault(column, message)
        return problems

    def _measured(self, lines: Iterable[str]) -> Iterator[str]:
        """The lines as the CSV reader takes them, counting their bytes: the reader takes no line
        beyond the record it returns, so after each record the count is where the next starts."""
        for line in lines:
            if self._text is not None:
                self._bytes += self._text.measure(line)
            yield line

    def _next_record(self) -> tuple[int, list[str]]:
        """The next CSV record and the line it starts on; ``StopIteration`` at the end."""
        start = self._last_line + 1
        try:
            cells = next(self._reader)
        except csv.Error as exc:
            raise UnreadableFile(f"line {self._reader.line_num}: {exc}") from None
        except StopIteration:
            if not self.columns:
                raise UnreadableFile("file is empty") from None
            raise
        self._last_line = self._reader.line_num
        return start, cells


def uses_decimal_comma(delimiter: str) -> bool:
    """Whether numbers use a decimal comma: files delimited by ``;`` come from such locales."""
    return delimiter == ";"


def _physical_lines(text_chunks: Iterable[str]) -> Iterator[str]:
    """The lines of the text, endings kept, split on ``\\n``, ``\\r\\n`` and ``\\r`` only (a
    ``\\r`` ending a chunk waits for the next one, which may start with ``\\n``)."""
    pending = ""
    number = 0
    for chunk in text_chunks:
        if not chunk:
            continue
        pending += chunk
        start = 0
        for match in _LINE_END.finditer(pending):
            number += 1
            yield pending[start:match.end()]
            start = match.end()
        pending = pending[start:]
        if len(pending) > MAX_LINE_CHARS:
            raise UnreadableFile(f"line {number + 1} is longer than {MAX_LINE_CHARS} characters")
    if pending:
        yield pending


def _detect_delimiter(lines: list[str]) -> str:
    header = lines[0]
    try:
        sniffed = csv.Sniffer().sniff("".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    if sniffed and sniffed in header:
        return sniffed
    counts = {candidate: header.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _check_header(cells: list[str], line: int) -> list[str]:
    columns = [cell.strip() for cell in cells]
    columns[0] = columns[0].lstrip("\ufeff").strip()
    for column in columns:
        if _LOOKS_NUMERIC.fullmatch(column):
            raise UnreadableFile(
                f"file has no header row: line {line} has {column!r} where a column name is expected"
            )
    named = [column for column in columns if column]
    duplicates = [column for column in dict.fromkeys(named) if named.count(column) > 1]
    if duplicates:
        raise UnreadableFile(f"header has duplicate column(s): {', '.join(duplicates)}")
    return columns


# ---------------------------------------------------------------------------
# Mapping and staging rows
# ---------------------------------------------------------------------------


def map_row(entity: str, mapping: FieldMapping, row: Mapping[str, str], context: MigrationContext) -> dict[str, Any]:
    """The target record of one RMS row (not yet validated).

    Each mapped value is trimmed (several columns are joined by a space); an empty value is
    missing. Conversions: RMS booleans (``0/1``, ``True/False``, ``Y/N``, ``-1``), numbers
    (``12.5``; ``12,50`` and ``1.234,50`` when ``context.decimal_comma``), choices matched
    regardless of case, and RMS's ``0`` meaning "none" in ``CategoryID``, ``StoreID`` and
    parent references. A value that does not convert is kept as text (validation rejects it).

    Defaults for what RMS does not have (DOMAIN §7, §12): stores get
    ``context.default_legal_entity`` and ``default_org_node_id``; categories hang under
    ``ALL``; products with no category go to ``ALL``, are released to
    ``context.legal_entities``, not stopped, allow negative inventory, have no variants;
    customers get ``context.company_language`` and receipt option ``Email`` when they have an
    email, else ``POS``; workers get their id as export id, pay period ``monthly``, base rate 0
    and ``context.default_store_id``. A mapped value always wins over a default.
    """
    record, _, _ = _map_fields(entity, mapping, row, context)
    return record


def stage_row(
    entity: str,
    mapping: FieldMapping,
    row_number: int,
    row: Mapping[str, str],
    context: MigrationContext,
) -> StagedRow:
    """Map and validate one row; every error names the source column it came from.

    A row holding bytes that are not UTF-8 (``INVALID_BYTES``, set by ``read_rows``) is an
    error on each cell holding them, whatever else it holds: its text is not what was meant.
    Errors on a mapped field name its source column (``price`` → ``Price``, ``name`` →
    ``FirstName + LastName``); errors on a defaulted field name the target field. References
    are checked against ``context.known_ids``. Inventory records get ``warehouse_id``, the
    warehouse of their store. ``record`` is the validated record, or ``None`` with errors.
    """
    record, conversion_errors, defaulted = _map_fields(entity, mapping, row, context)
    errors = [{"column": column, "message": message} for column, message in row.get(INVALID_BYTES, {}).items()]
    errors += [
        {"column": _column_of(mapping, target, defaulted), "message": message}
        for target, message in conversion_errors.items()
    ]
    if EXTRA_CELLS_COLUMN in row:
        errors.append({"column": EXTRA_CELLS_COLUMN, "message": "row has more cells than the header has columns"})
    cleaned, field_errors = check_record(entity, record)
    for error in field_errors:
        if _field_of(error.path) not in conversion_errors:
            errors.append({"column": _column_of(mapping, error.path, defaulted), "message": error.message})
    if cleaned is not None:
        errors.extend(_reference_errors(entity, mapping, cleaned, context, defaulted))
        if entity == "inventory":
            store_id = cleaned["store_id"]
            cleaned["warehouse_id"] = context.store_warehouses.get(store_id, store_id)
    return StagedRow(row_number, dict(row), None if errors else cleaned, errors)


def stage_file(
    entity: str,
    mapping: FieldMapping,
    chunks: Iterable[bytes],
    context: MigrationContext,
    *,
    resume: FilePosition | None = None,
) -> Iterator[StagedRow]:
    """Stage a whole RMS export arriving as byte chunks, one ``StagedRow`` per data row.

    The encoding is decided as ``decode_stream`` says, or forced by the mapping's ``"encoding"``.
    Raises ``UnreadableFile`` (possibly after some rows, e.g. a NUL byte deep in the file).
    The decimal separator follows the file's delimiter (``SourceRows.decimal_comma``). Each
    row carries the ``position`` after it; to continue a file later from such a position, pass
    it as ``resume`` with the file's bytes ``[0, header_end)`` followed by ``[offset, end)``
    (two S3 range reads), and the rows go on as if there had been no pause.
    """
    _check_entity(entity)
    text = TextStream(chunks, resume, encoding=mapping_encoding(mapping))
    rows = read_rows(text, required_columns(entity, mapping), resume=resume)
    file_context = replace(context, decimal_comma=rows.decimal_comma)
    for row_number, row in rows:
        yield replace(stage_row(entity, mapping, row_number, row, file_context), position=rows.position)


def job_status(rows: int, errors: int) -> str:
    """Status of a staging job that read ``rows`` rows, ``errors`` of them with errors."""
    return STAGED_WITH_ERRORS if errors else STAGED


def copy_status(copied: int, failed: int) -> str:
    """Status of a staging job after Copy to target upserted ``copied`` rows and could not copy ``failed``."""
    return COMPLETED_WITH_ERRORS if failed else COMPLETED


MAX_ROW_RANGES = 2000
"""How many ranges a ``RowRanges`` keeps before its last range stays open to the end."""


class RowRanges:
    """A set of row numbers, added in ascending order, kept as ranges ``[[first, last], ...]``
    (plain JSON, e.g. the rows of a staging job that failed to copy).

    Past ``MAX_ROW_RANGES`` ranges the last one stays open (``last`` is ``None``: every row from
    ``first`` on), so the set may hold rows that were never added but never loses one.
    """

    def __init__(self, ranges: Iterable[list[int | None]] = ()):
        self.ranges: list[list[int | None]] = [list(r) for r in ranges]

    def add(self, row: int) -> None:
        last = self.ranges[-1] if self.ranges else None
        if last is not None and (last[1] is None or row <= last[1]):
            return
        if last is not None and row == last[1] + 1:
            last[1] = row
        elif len(self.ranges) >= MAX_ROW_RANGES:
            last[1] = None
        else:
            self.ranges.append([row, row])

    def __contains__(self, row: int) -> bool:
        index = bisect.bisect_right(self.ranges, row, key=lambda r: r[0]) - 1
        if index < 0:
            return False
        last = self.ranges[index][1]
        return last is None or row <= last

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def count(self) -> int | None:
        """How many rows, or ``None`` when the last range is open."""
        if self.ranges and self.ranges[-1][1] is None:
            return None
        return sum(last - first + 1 for first, last in self.ranges)


def _map_fields(
    entity: str, mapping: FieldMapping, row: Mapping[str, str], context: MigrationContext
) -> tuple[dict[str, Any], dict[str, str], set[str]]:
    """``(record, {target: conversion error}, {targets filled by a default})`` for one row."""
    _check_entity(entity)
    kinds = _FIELD_KINDS[entity]
    record: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for target, source in mapping.items():
        if target in MAPPING_OPTIONS:
            continue
        parts = (row.get(column, "").strip() for column in _columns(source))
        raw = " ".join(part for part in parts if part)
        if not raw:
            continue
        try:
            value = _convert(kinds.get(target, _TEXT), target, raw, context)
        except ValueError as exc:
            errors[target] = str(exc)
            value = raw
        if value is not None:
            record[target] = value
    return record, errors, _apply_defaults(entity, record, context)


def _convert(kind: str, target: str, raw: str, context: MigrationContext) -> Any:
    if kind == _BOOL:
        return parse_rms_boolean(raw)
    if kind == _DECIMAL:
        return parse_rms_decimal(raw, decimal_comma=context.decimal_comma)
    if kind == _CHOICE:
        return next((choice for choice in _CHOICES[target] if choice.lower() == raw.lower()), raw)
    if kind == _RMS_REFERENCE and raw == "0":
        return None
    return raw


def _apply_defaults(entity: str, record: dict[str, Any], context: MigrationContext) -> set[str]:
    """Fill what RMS does not have (see ``map_row``); return the names filled."""
    defaulted: set[str] = set()

    def default(name: str, value: Any) -> None:
        if record.get(name) is None and value is not None:
            record[name] = value
            defaulted.add(name)

    if entity == "stores":
        default("legal_entity", context.default_legal_entity)
        default("org_node_id", context.default_org_node_id)
    elif entity == "categories":
        if record.get("id") != ROOT_CATEGORY:
            default("parent_id", ROOT_CATEGORY)
    elif entity == "products":
        default("category_id", ROOT_CATEGORY)
        default("released_to", sorted(set(context.legal_entities)))
        default("stopped", False)
        default("allow_negative_inventory", True)
        default("variants", [])
    elif entity == "customers":
        default("language", context.company_language)
        default("receipt_option", (ReceiptOption.EMAIL if record.get("email") else ReceiptOption.POS).value)
    elif entity == "workers":
        default("export_id", record.get("id"))
        default("store_id", context.default_store_id)
        default("pay_period_type", DEFAULT_PAY_PERIOD_TYPE)
        default("base_rate", DEFAULT_BASE_RATE)
    return defaulted


def _reference_errors(
    entity: str,
    mapping: FieldMapping,
    record: Mapping[str, Any],
    context: MigrationContext,
    defaulted: AbstractSet[str],
) -> list[dict[str, str]]:
    errors = []
    for name, (referenced, label) in _REFERENCES.get(entity, {}).items():
        value = record.get(name)
        known = context.known_ids.get(referenced)
        if value is not None and known is not None and value not in known:
            errors.append({"column": _column_of(mapping, name, defaulted), "message": f"unknown {label} {value!r}"})
    return errors


def _column_of(mapping: FieldMapping, path: str, defaulted: AbstractSet[str] = frozenset()) -> str:
    """The source column behind a target field path; the path itself for a field that is not
    mapped or whose value came from a default rather than the row."""
    target = _field_of(path)
    if target in mapping and target not in defaulted:
        return source_column_label(mapping[target])
    return path or ROW_COLUMN


def _field_of(path: str) -> str:
    """The top-level field of an error path: ``variants[0].size`` → ``variants``."""
    return _PATH_SEPARATOR.split(path, maxsplit=1)[0]


def parse_rms_boolean(text: str) -> bool:
    """An RMS yes/no value: ``1/0``, ``-1`` (Access), ``True/False``, ``T/F``, ``Y/N``, ``Yes/No``."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"must be a yes/no value such as 1/0, True/False or Y/N, got {text!r}")


def parse_rms_decimal(text: str, *, decimal_comma: bool = False) -> Decimal:
    """An RMS number as ``Decimal``.

    Without ``decimal_comma``: ``12.5``, ``-3``; any comma is refused, since ``1,250`` could be
    a thousands separator or a decimal comma. With ``decimal_comma`` (semicolon-delimited
    files): ``12,50``, ``1.234,50``, and a value without a comma reads with a point (``12.5``).
    """
    value = text.strip()
    if "," not in value:
        if _PLAIN_NUMBER.fullmatch(value):
            return Decimal(value)
    elif not decimal_comma:
        if _LOOKS_NUMERIC.fullmatch(value) or _THOUSANDS_COMMA.fullmatch(value):
            raise ValueError(
                f"has a comma, which is ambiguous in a file not delimited by ';': write {text!r} "
                "with a decimal point and no thousands separator"
            )
    elif _DECIMAL_COMMA.fullmatch(value) or _THOUSANDS_DOT.fullmatch(value):
        return Decimal(value.replace(".", "").replace(",", "."))
    raise ValueError(f'must be a decimal number such as "12.50", got {text!r}')


# ---------------------------------------------------------------------------
# Drop keys
# ---------------------------------------------------------------------------

_MAPPINGS_PREFIX = "migration/mappings/"
_DATA_PREFIX = "migration/data/"


def parse_drop_key(key: str) -> DropKey:
    """What an S3 key under ``migration/`` is; the key arrives URL-encoded from the S3 event.

    Example::

        parse_drop_key("migration/data/products/spring+items%202024.csv")
        # DropKey(kind="data", entity="products", name="spring items 2024",
        #         key="migration/data/products/spring items 2024.csv", reason="")

    A data file may sit in sub-folders (``name`` keeps them: ``2024/items``).
    """
    return classify_drop_key(unquote_plus(key))


def classify_drop_key(decoded: str) -> DropKey:
    """What the object with this (already decoded) key is; see ``parse_drop_key``."""

    def unknown(reason: str, entity: str | None = None) -> DropKey:
        return DropKey("unknown", entity, None, decoded, reason)

    if decoded.startswith(_MAPPINGS_PREFIX):
        file_name = decoded[len(_MAPPINGS_PREFIX):]
        entity, dot, extension = file_name.rpartition(".")
        if not dot or extension.lower() != "json" or "/" in file_name:
            return unknown("a mapping must be migration/mappings/<entity>.json")
        if entity not in MIGRATION_ENTITIES:
            return unknown(_unknown_entity(entity))
        return DropKey("mapping", entity, entity, decoded)
    if decoded.startswith(_DATA_PREFIX):
        entity, slash, file_name = decoded[len(_DATA_PREFIX):].partition("/")
        if entity not in MIGRATION_ENTITIES:
            return unknown(_unknown_entity(entity))
        name, dot, extension = file_name.rpartition(".")
        if slash and (not file_name or file_name.endswith("/")):
            return unknown("a folder, not a file", entity)
        if not dot or extension.lower() != "csv" or not name:
            return unknown("a data file must be migration/data/<entity>/<name>.csv", entity)
        return DropKey("data", entity, name, decoded)
    return unknown("not under migration/mappings/ or migration/data/")


def _unknown_entity(entity: str) -> str:
    return f"unknown entity {entity!r}; expected one of: {', '.join(MIGRATION_ENTITIES)}"
