"""A real SOQL parser and evaluator for the subset the sync uses, with Salesforce's own error codes.

Grammar (keywords case-insensitive):
    SELECT path {, path} FROM object [WHERE cond] [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST] {, ...}]
    [LIMIT n] [OFFSET n]
    cond  := term {OR term} | term {AND term}     (mixing AND and OR needs parentheses, as in SOQL)
    term  := NOT term | '(' cond ')' | path op value | path [NOT] IN '(' value {, value} ')' | path LIKE 'pattern'
Values: 'strings' with SOQL escapes, numbers, TRUE/FALSE, NULL, date (2026-11-28) and dateTime literals
(2026-11-28T14:00:00Z, ...+00:00, optional fractions). Anything else is MALFORMED_QUERY; unknown
fields are INVALID_FIELD; a value of the wrong type for its field is INVALID_FIELD as well.

Semantics follow SOQL, not SQL: comparisons are two-valued (`Email != 'x'` matches a null Email),
text compares case-insensitively, Ids compare on their case-sensitive 15-character core, and nulls
sort first unless NULLS LAST is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sandbox.salesforce.ids import normalize_id

TEXT_TYPES = frozenset({"id", "reference", "string", "email", "phone", "textarea", "picklist", "url"})
MAX_OFFSET = 2000

KEYWORDS = frozenset(
    {
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "in",
        "like",
        "null",
        "true",
        "false",
        "order",
        "by",
        "asc",
        "desc",
        "nulls",
        "first",
        "last",
        "limit",
        "offset",
        "includes",
        "excludes",
        "group",
        "having",
        "with",
        "for",
        "using",
    }
)


class SoqlError(Exception):
    """A query Salesforce would refuse: carries the REST errorCode and message."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


# ---- schema the evaluator needs ------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectInfo:
    """Field types of one sObject, its parent relationships, and how to fetch a parent row."""

    name: str
    fields: Mapping[str, str]  # canonical field name -> SOAP type ("string", "datetime", "id", ...)
    relationships: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # rel -> (fk field, object)

    def field_name(self, name: str) -> str | None:
        lowered = name.lower()
        for canonical in self.fields:
            if canonical.lower() == lowered:
                return canonical
        return None

    def relationship(self, name: str) -> str | None:
        lowered = name.lower()
        for canonical in self.relationships:
            if canonical.lower() == lowered:
                return canonical
        return None


# ---- lexer ----------------------------------------------------------------------------------------
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<string>')
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str  # ident, keyword, string, number, date, datetime, op, punct, eof
    text: str
    pos: int
    value: Any = None


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Return the raw body of a quoted string starting at `start` (the quote) and the end index."""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            return text[start + 1 : i], i + 1
        i += 1
    raise SoqlError("MALFORMED_QUERY", f"line 1:{len(text)} mismatched character '<EOF>' expecting '''")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            _fail(text, pos, f"unexpected token: '{text[pos]}'")
        kind = match.lastgroup or ""
        if kind == "ws":
            pos = match.end()
            continue
        if kind == "string":
            raw, end = _read_string(text, pos)
            tokens.append(Token("string", text[pos:end], pos, raw))
            pos = end
            continue
        word = match.group()
        if kind == "ident" and word.lower() in KEYWORDS:
            kind = "keyword"
        tokens.append(Token(kind, word, pos))
        pos = match.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens


def _fail(text: str, pos: int, reason: str) -> None:
    """Raise MALFORMED_QUERY pointing at a position, in Salesforce's own error layout."""
    line_start = text.rfind("\n", 0, pos) + 1
    row = text.count("\n", 0, pos) + 1
    col = pos - line_start + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    raise SoqlError("MALFORMED_QUERY", f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{reason}")


def _decode_string(raw: str, query: str, pos: int, like: bool) -> list[tuple[str, bool]]:
    """Decode SOQL escapes into (char, literal) pairs; `literal` marks \\% and \\_ inside LIKE."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out.append((ch, False))
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if nxt.lower() in ("n", "r", "t", "b", "f") or nxt in ('"', "'", "\\"):
            out.append((_SIMPLE_ESCAPES[nxt.lower() if nxt.isalpha() else nxt], True))
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", raw[i + 2 : i + 6]):
            out.append((chr(int(raw[i + 2 : i + 6], 16)), True))
            i += 6
        elif like and nxt in ("%", "_"):
            out.append((nxt, True))
            i += 2
        else:
            _fail(query, pos + 1 + i, f"Invalid string literal '{raw}'. Illegal character sequence '\\{nxt}'")
    return out


# ---- AST ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Path:
    """A field reference: ("Email",) or ("Account", "Name"), canonical names, plus its type."""

    parts: tuple[str, ...]
    type: str

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Compare:
    path: Path
    op: str  # = != < <= > >=
    value: Any


@dataclass(frozen=True)
class InList:
    path: Path
    values: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    path: Path
    regex: re.Pattern[str]


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class OrderItem:
    path: Path
    descending: bool
    nulls_last: bool


@dataclass
class Query:
    sobject: str
    fields: list[Path]
    where: Any = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    count: bool = False  # SELECT COUNT(): totalSize only, no records

    def conjuncts(self) -> list[Any]:
        """Top-level AND terms of WHERE: what an index may narrow on without changing the result."""
        if self.where is None:
            return []
        if isinstance(self.where, BoolOp) and self.where.op == "and":
            return list(self.where.items)
        return [self.where]


# ---- parser ---------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, objects: Mapping[str, ObjectInfo]) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.objects = {name.lower(): info for name, info in objects.items()}
        self.obj: ObjectInfo | None = None

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.text.lower() in words

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            self.unexpected()
        self.advance()

    def expect_punct(self, ch: str) -> None:
        if not (self.tok.kind == "punct" and self.tok.text == ch):
            self.unexpected()
        self.advance()

    def unexpected(self) -> None:
        _fail(self.text, self.tok.pos, f"unexpected token: {self.tok.text}")

    # grammar
    def parse(self) -> Query:
        self.expect_kw("select")
        count = self._count_call()
        field_tokens = [] if count else [self.advance_ident()]
        while not count and self.tok.kind == "punct" and self.tok.text == ",":
            self.advance()
            field_tokens.append(self.advance_ident())
        self.expect_kw("from")
        obj_tok = self.advance_ident()
        obj = self.objects.get(obj_tok.text.lower())
        if obj is None:
            raise SoqlError(
                "INVALID_TYPE",
                self._located(
                    obj_tok.pos,
                    f"sObject type '{obj_tok.text}' is not supported. If you are "
                    "attempting to use a custom object, be sure to append the '__c' after the entity "
                    "name. Please reference your WSDL or the describe call for the appropriate names.",
                ),
            )
        self.obj = obj
        fields = [self.resolve(tok) for tok in field_tokens]
        seen: set[tuple[str, ...]] = set()
        for path, tok in zip(fields, field_tokens, strict=True):
            if path.parts in seen:
                _fail(self.text, tok.pos, f"duplicate field selected: {path.dotted}")
            seen.add(path.parts)
        query = Query(sobject=obj.name, fields=fields, count=count)
        if self.is_kw("where"):
            self.advance()
            query.where = self.condition()
        if self.is_kw("order"):
            self.advance()
            self.expect_kw("by")
            query.order_by.append(self.order_item())
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                query.order_by.append(self.order_item())
        if self.is_kw("limit"):
            self.advance()
            query.limit = self.integer()
        if self.is_kw("offset"):
            self.advance()
            tok = self.tok
            query.offset = self.integer()
            if query.offset > MAX_OFFSET:
                raise SoqlError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    self._located(tok.pos, f"Maximum SOQL offset allowed is {MAX_OFFSET}"),
                )
        if self.tok.kind != "eof":
            self.unexpected()
        return query

    def _count_call(self) -> bool:
        """`COUNT()` as the whole select list (Salesforce allows nothing beside it)."""
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        if not (self.tok.kind == "ident" and self.tok.text.lower() == "count" and nxt and nxt.text == "("):
            return False
        self.advance()
        self.expect_punct("(")
        self.expect_punct(")")
        return True

    def advance_ident(self) -> Token:
        if self.tok.kind != "ident":
            self.unexpected()
        return self.advance()

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            self.unexpected()
        self.advance()
        return int(tok.text)

    def _located(self, pos: int, reason: str) -> str:
        try:
            _fail(self.text, pos, reason)
        except SoqlError as exc:
            return exc.message
        raise AssertionError("unreachable")

    def resolve(self, tok: Token) -> Path:
        """Map a dotted identifier onto canonical names, or raise INVALID_FIELD as Salesforce does."""
        assert self.obj is not None
        parts = tok.text.split(".")
        if len(parts) > 1 and parts[0].lower() == self.obj.name.lower():
            parts = parts[1:]  # SELECT Contact.Email FROM Contact is legal
        obj = self.obj
        canonical: list[str] = []
        for part in parts[:-1]:
            rel = obj.relationship(part)
            if rel is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    self._located(
                        tok.pos,
                        f"Didn't understand relationship '{part}' in field path. If you are "
                        "attempting to use a custom relationship, be sure to append the '__r' after "
                        "the custom relationship name. Please reference your WSDL or the describe call "
                        "for the appropriate names.",
                    ),
                )
            canonical.append(rel)
            obj = self.objects[obj.relationships[rel][1].lower()]
        name = obj.field_name(parts[-1])
        if name is None:
            raise SoqlError(
                "INVALID_FIELD",
                self._located(
                    tok.pos,
                    f"No such column '{parts[-1]}' on entity '{obj.name}'. If you are "
                    "attempting to use a custom field, be sure to append the '__c' after the custom "
                    "field name. Please reference your WSDL or the describe call for the appropriate "
                    "names.",
                ),
            )
        canonical.append(name)
        return Path(tuple(canonical), obj.fields[name])

    def order_item(self) -> OrderItem:
        path = self.resolve(self.advance_ident())
        descending = False
        if self.is_kw("asc", "desc"):
            descending = self.advance().text.lower() == "desc"
        nulls_last = False
        if self.is_kw("nulls"):
            self.advance()
            if not self.is_kw("first", "last"):
                self.unexpected()
            nulls_last = self.advance().text.lower() == "last"
        return OrderItem(path, descending, nulls_last)

    def condition(self) -> Any:
        first = self.term()
        if not self.is_kw("and", "or"):
            return first
        op = self.tok.text.lower()
        items = [first]
        while self.is_kw("and", "or"):
            if self.tok.text.lower() != op:
                self.unexpected()  # SOQL refuses a mix of AND and OR without parentheses
            self.advance()
            items.append(self.term())
        return BoolOp(op, tuple(items))

    def term(self) -> Any:
        if self.is_kw("not"):
            self.advance()
            return Not(self.term())
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        path_tok = self.advance_ident()
        path = self.resolve(path_tok)
        if self.tok.kind == "op":
            op = self.advance().text
            op = "!=" if op == "<>" else op
            return Compare(path, op, self.value(path))
        negated = False
        if self.is_kw("not"):
            self.advance()
            negated = True
            if not self.is_kw("in"):
                self.unexpected()
        if self.is_kw("in"):
            self.advance()
            self.expect_punct("(")
            values = [self.value(path)]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                values.append(self.value(path))
            self.expect_punct(")")
            return InList(path, tuple(values), negated)
        if self.is_kw("like"):
            self.advance()
            return Like(path, self.like_pattern(path))
        self.unexpected()
        raise AssertionError("unreachable")

    def like_pattern(self, path: Path) -> re.Pattern[str]:
        tok = self.tok
        if tok.kind != "string":
            self.unexpected()
        self.advance()
        if path.type not in TEXT_TYPES or path.type in ("id", "reference"):
            raise SoqlError(
                "INVALID_FIELD", self._located(tok.pos, f"invalid operator on {path.type} field: {path.dotted}")
            )
        parts = []
        for ch, literal in _decode_string(tok.value, self.text, tok.pos, like=True):
            if not literal and ch == "%":
                parts.append(".*")
            elif not literal and ch == "_":
                parts.append(".")
            else:
                parts.append(re.escape(ch))
        return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)

    def value(self, path: Path) -> Any:
        tok = self.advance()
        kind = tok.kind
        if kind == "keyword" and tok.text.lower() == "null":
            return None
        if kind == "keyword" and tok.text.lower() in ("true", "false"):
            kind, literal = "boolean", tok.text.lower() == "true"
        elif kind == "string":
            literal = "".join(ch for ch, _ in _decode_string(tok.value, self.text, tok.pos, like=False))
        elif kind == "number":
            literal = float(tok.text) if "." in tok.text else int(tok.text)
        elif kind == "date":
            literal = _parse_date(tok, self)
        elif kind == "datetime":
            literal = _parse_datetime(tok, self)
        else:
            self.i -= 1
            self.unexpected()
            raise AssertionError("unreachable")
        return self.check_type(path, kind, literal, tok)

    def check_type(self, path: Path, kind: str, literal: Any, tok: Token) -> Any:
        """Refuse a literal of the wrong type for its field, with Salesforce's INVALID_FIELD wording."""
        ftype = path.type
        expected = {
            "datetime": ("datetime", "dateTime", False),
            "date": ("date", "date", False),
            "boolean": ("boolean", "boolean", False),
            "int": ("number", "int", False),
            "double": ("number", "double", False),
        }.get(ftype, ("string", "string", True))
        want_kind, type_word, quoted = expected
        if kind != want_kind:
            quote_rule = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            raise SoqlError(
                "INVALID_FIELD",
                self._located(
                    tok.pos,
                    f"value of filter criterion for field '{path.dotted}' must be of type {type_word} and {quote_rule}",
                ),
            )
        if ftype in ("id", "reference"):
            normalized = normalize_id(literal)
            if normalized is None:
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", self._located(tok.pos, f"invalid ID field: {literal}"))
            return normalized
        return literal


def _parse_date(tok: Token, parser: _Parser) -> date:
    try:
        return date.fromisoformat(tok.text)
    except ValueError:
        _fail(parser.text, tok.pos, f"line 1:{tok.pos} no viable alternative at character '{tok.text}'")
        raise


def _parse_datetime(tok: Token, parser: _Parser) -> datetime:
    text = tok.text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        # A fraction is accepted (as SOQL accepts one on Time literals) and dropped: SOQL "ignores the
        # milliseconds for the purposes of considering two values equal", and records keep whole seconds.
        return datetime.fromisoformat(text).astimezone(UTC).replace(microsecond=0)
    except ValueError:
        _fail(parser.text, tok.pos, f"line 1:{tok.pos} no viable alternative at character '{tok.text}'")
        raise


def parse(text: str, objects: Mapping[str, ObjectInfo]) -> Query:
    """Parse and resolve a SOQL query against the known objects; raise SoqlError like Salesforce."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statements cannot be empty or null")
    return _Parser(text, objects).parse()


# ---- evaluation -----------------------------------------------------------------------------------
Row = Mapping[str, Any]
ParentLookup = Callable[[Row, str], Row | None]  # (row, relationship) -> parent row


def resolve_value(row: Row | None, path: Path, parent: ParentLookup) -> Any:
    for rel in path.parts[:-1]:
        if row is None:
            return None
        row = parent(row, rel)
    return None if row is None else row.get(path.parts[-1])


def _comparable(value: Any, ftype: str) -> Any:
    if isinstance(value, str) and ftype not in ("id", "reference"):
        return value.casefold()
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def _compare(op: str, left: Any, right: Any, ftype: str) -> bool:
    if op in ("=", "!="):
        equal = (left is None and right is None) or (
            left is not None and right is not None and _comparable(left, ftype) == _comparable(right, ftype)
        )
        return equal if op == "=" else not equal
    if left is None or right is None:
        return False
    a, b = _comparable(left, ftype), _comparable(right, ftype)
    try:
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b
    except TypeError:
        return False


def evaluate(node: Any, row: Row, parent: ParentLookup) -> bool:
    """Decide whether `row` satisfies the WHERE tree `node`."""
    if node is None:
        return True
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(item, row, parent) for item in node.items)
        return any(evaluate(item, row, parent) for item in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, row, parent)
    value = resolve_value(row, node.path, parent)
    if isinstance(node, Compare):
        return _compare(node.op, value, node.value, node.path.type)
    if isinstance(node, InList):
        found = any(_compare("=", value, candidate, node.path.type) for candidate in node.values)
        return not found if node.negated else found
    if isinstance(node, Like):
        return value is not None and node.regex.fullmatch(str(value)) is not None
    raise TypeError(f"unknown condition node {node!r}")


def sort_rows(rows: list[Row], order_by: Sequence[OrderItem], parent: ParentLookup) -> list[Row]:
    """Stable multi-key sort with per-key direction and null placement (nulls first by default)."""
    result = list(rows)
    for item in reversed(order_by):
        present = [r for r in result if resolve_value(r, item.path, parent) is not None]
        missing = [r for r in result if resolve_value(r, item.path, parent) is None]
        present.sort(
            key=lambda r, p=item.path: _comparable(resolve_value(r, p, parent), p.type), reverse=item.descending
        )
        result = present + missing if item.nulls_last else missing + present
    return result
