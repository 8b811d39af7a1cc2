"""Reading a Wahl-O-Mat election in the qual-o-mat layout, from a local folder or raw URLs.

A folder (`gockelhahn/qual-o-mat-data`, `data/<year>/<region>/`) holds six JSON files joined by integer
ids: statement.json, party.json, opinion.json, answer.json, comment.json and overview.json. Answer ids
are mapped by their message ("Stimme zu" agree, "Stimme nicht zu" disagree, "Neutral"), which checks
the upstream convention 0/1/2 instead of assuming it. Every problem is one UserError naming the file,
the entry index and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from harness.datasets import first_row_number, read_table, require_text
from harness.errors import UserError

FILES = ("statement.json", "party.json", "opinion.json", "answer.json", "comment.json", "overview.json")
OVERVIEW_FIELDS = ("title", "date", "info", "slug", "data_source")
ANSWER_MESSAGES = {"stimme zu": "agree", "stimme nicht zu": "disagree", "neutral": "neutral"}
RAW_BASE = "https://raw.githubusercontent.com/gockelhahn/qual-o-mat-data/master/data/"
SHORTHAND = "qual-o-mat:"
TRANSLATIONS_FILE = "statement_en.json"
FETCH_TIMEOUT_S = 30


@dataclass(frozen=True)
class Thesis:
    id: int
    label: str
    text: str


@dataclass(frozen=True)
class Party:
    id: int
    name: str  # short name, whitespace collapsed; used in metric names
    longname: str


@dataclass
class Election:
    """One election: theses, parties and each party's position ('agree'/'disagree'/'neutral') per thesis."""

    origin: str
    title: str
    date: str
    theses: list[Thesis]
    parties: list[Party]
    positions: dict[int, dict[str, str]]  # thesis id -> party name -> position
    content_hash: str


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", SHORTHAND))


def resolve_remote(source: str) -> str:
    """Base URL of a remote folder; `qual-o-mat:2025/deutschland` is short for the repository's raw URL."""
    if source.startswith(SHORTHAND):
        return RAW_BASE + source[len(SHORTHAND) :].strip("/")
    return source.rstrip("/")


def read_source(source: str | Path) -> tuple[str, dict[str, bytes]]:
    """(origin, file name -> bytes) of the six files, from a folder or by HTTP(S) at load time."""
    if isinstance(source, str) and is_remote(source):
        base = resolve_remote(source)
        return base, {name: fetch(f"{base}/{name}") for name in FILES}
    folder = Path(source)
    if not folder.is_dir():
        raise UserError(
            f"{folder}: not a folder; -T data expects a qual-o-mat election folder "
            f"(with {', '.join(FILES)}) or its raw URL"
        )
    files = {}
    for name in FILES:
        path = folder / name
        if not path.is_file():
            raise UserError(f"{path}: file not found (a qual-o-mat election folder holds {', '.join(FILES)})")
        files[name] = path.read_bytes()
    return str(folder), files


def fetch(url: str) -> bytes:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise UserError(f"{url}: HTTP {exc.code} ({exc.reason}); check the election path") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"{url}: cannot fetch ({reason}); offline? download the folder and pass -T data=<local folder>"
        ) from None


def load_election(source: str | Path) -> Election:
    """Read and validate an election folder (local path, http(s) base URL or `qual-o-mat:<year>/<region>`)."""
    origin, files = read_source(source)
    docs = {name: parse_json(f"{origin}/{name}", data) for name, data in files.items()}
    where = {name: f"{origin}/{name}" for name in FILES}

    theses = [
        Thesis(id=i, label=label, text=text)
        for i, label, text in statement_rows(where["statement.json"], docs["statement.json"])
    ]
    parties = party_rows(where["party.json"], docs["party.json"])
    answers = answer_rows(where["answer.json"], docs["answer.json"])
    comments = {i for i, _ in id_rows(where["comment.json"], docs["comment.json"], "text")}
    positions = opinion_rows(where["opinion.json"], docs["opinion.json"], theses, parties, answers, comments)
    overview = docs["overview.json"]
    if not isinstance(overview, dict):
        raise UserError(f"{where['overview.json']}: expected a JSON object")
    title, date, *_ = (text_field(where["overview.json"], None, overview, f) for f in OVERVIEW_FIELDS)
    digest = hashlib.sha256()
    for name in FILES:
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return Election(origin, title, date, theses, parties, positions, digest.hexdigest())


def parse_json(where: str, data: bytes) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise UserError(f"{where}: file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: invalid JSON at line {exc.lineno} ({exc.msg})") from None


def entries(where: str, doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, list) or not doc:
        raise UserError(f"{where}: expected a non-empty JSON array of objects")
    for index, entry in enumerate(doc):
        if not isinstance(entry, dict):
            raise UserError(f"{where}: entry [{index}]: expected an object, got {type(entry).__name__}")
    return doc


def _at(where: str, index: int | None, field: str) -> str:
    return f"{where}: {'' if index is None else f'entry [{index}], '}field '{field}'"


@overload
def int_field(
    where: str, index: int | None, entry: dict[str, Any], field: str, *, nullable: Literal[False] = False
) -> int: ...


@overload
def int_field(where: str, index: int | None, entry: dict[str, Any], field: str, *, nullable: bool) -> int | None: ...


def int_field(
    where: str, index: int | None, entry: dict[str, Any], field: str, *, nullable: bool = False
) -> int | None:
    """A non-negative integer (or null when `nullable`), else a UserError naming file, entry and field."""
    if field not in entry:
        raise UserError(f"{_at(where, index, field)}: missing")
    value = entry[field]
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UserError(f"{_at(where, index, field)}: expected a non-negative integer, got {value!r}")
    return value


def text_field(where: str, index: int | None, entry: dict[str, Any], field: str) -> str:
    """A non-empty string with whitespace collapsed, else a UserError naming file, entry and field."""
    value = entry.get(field)
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{_at(where, index, field)}: expected a non-empty string, got {value!r}")
    return re.sub(r"\s+", " ", value).strip()


def id_rows(where: str, doc: Any, *fields: str) -> list[tuple]:
    """(id, *text fields) per entry, with unique ids."""
    rows, seen = [], set()
    for index, entry in enumerate(entries(where, doc)):
        ident = int_field(where, index, entry, "id")
        if ident in seen:
            raise UserError(f"{_at(where, index, 'id')}: duplicate id {ident}")
        seen.add(ident)
        rows.append((ident, *(text_field(where, index, entry, f) for f in fields)))
    return rows


def statement_rows(where: str, doc: Any) -> list[tuple[int, str, str]]:
    for index, entry in enumerate(entries(where, doc)):
        int_field(where, index, entry, "category", nullable=True)
    return id_rows(where, doc, "label", "text")


def party_rows(where: str, doc: Any) -> list[Party]:
    parties, names = [], set()
    for index, (ident, name, longname) in enumerate(id_rows(where, doc, "name", "longname")):
        if name in names:
            raise UserError(f"{_at(where, index, 'name')}: duplicate party name '{name}'")
        names.add(name)
        parties.append(Party(ident, name, longname))
    return parties


def answer_rows(where: str, doc: Any) -> dict[int, str]:
    """Answer id -> position, recognised by the answer's message."""
    answers = {}
    for index, (ident, message) in enumerate(id_rows(where, doc, "message")):
        position = ANSWER_MESSAGES.get(message.casefold())
        if position is None:
            raise UserError(
                f"{_at(where, index, 'message')}: unknown answer '{message}'; "
                "expected Stimme zu, Stimme nicht zu or Neutral"
            )
        answers[ident] = position
    return answers


def opinion_rows(
    where: str,
    doc: Any,
    theses: list[Thesis],
    parties: list[Party],
    answers: dict[int, str],
    comments: set[int],
) -> dict[int, dict[str, str]]:
    """Thesis id -> party name -> position; every party must answer every thesis exactly once."""
    party_names = {p.id: p.name for p in parties}
    positions: dict[int, dict[str, str]] = {t.id: {} for t in theses}
    seen = set()
    for index, entry in enumerate(entries(where, doc)):
        ident = int_field(where, index, entry, "id")
        if ident in seen:
            raise UserError(f"{_at(where, index, 'id')}: duplicate id {ident}")
        seen.add(ident)
        party = int_field(where, index, entry, "party")
        statement = int_field(where, index, entry, "statement")
        answer = int_field(where, index, entry, "answer")
        comment = int_field(where, index, entry, "comment", nullable=True)
        for field, value, known in (
            ("party", party, party_names),
            ("statement", statement, positions),
            ("answer", answer, answers),
        ):
            if value not in known:
                raise UserError(f"{_at(where, index, field)}: no {field} with id {value}")
        if comment is not None and comment not in comments:
            raise UserError(f"{_at(where, index, 'comment')}: no comment with id {comment}")
        if party_names[party] in positions[statement]:
            raise UserError(f"{_at(where, index, 'statement')}: party {party} already answered statement {statement}")
        positions[statement][party_names[party]] = answers[answer]
    for thesis in theses:
        for p in parties:
            if p.name not in positions[thesis.id]:
                raise UserError(f"{where}: no entry for party {p.id} ('{p.name}') and statement {thesis.id}")
    return {t.id: {p.name: positions[t.id][p.name] for p in parties} for t in theses}


def translations_path(source: str, option: str | None) -> Path:
    """The English translations file: `-T translations`, else statement_en.json in a local data folder."""
    if option:
        path = Path(option)
        return path / "statement.json" if path.is_dir() else path  # a qual-o-mat folder of English theses
    if not is_remote(source) and (Path(source) / TRANSLATIONS_FILE).is_file():
        return Path(source) / TRANSLATIONS_FILE
    raise UserError(
        f"language=en needs English theses for {source}: pass -T translations=<file> "
        "(a JSON array of {id, label, text} keyed by the thesis id of statement.json)"
    )


def load_translations(path: Path, theses: list[Thesis]) -> tuple[list[Thesis], bytes]:
    """The theses in English (same ids, same order) and the file's bytes for the content hash."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read translations ({exc.strerror})") from None
    rows = {i: (label, text) for i, label, text in id_rows(str(path), parse_json(str(path), data), "label", "text")}
    known = {t.id for t in theses}
    unknown = sorted(set(rows) - known)
    if unknown:
        raise UserError(f"{path}: field 'id': no thesis with id {unknown[0]} in statement.json")
    missing = [t for t in theses if t.id not in rows]
    if missing:
        raise UserError(f"{path}: no translation for thesis id {missing[0].id} ('{missing[0].label}')")
    return [Thesis(t.id, *rows[t.id]) for t in theses], data


def load_vote_shares(path: Path, parties: list[Party]) -> dict[str, float]:
    """Party short name -> vote share in percent, from a `party,vote_share` table (CSV/JSON/JSONL)."""
    names = {p.name.casefold(): p.name for p in parties}
    shares: dict[str, float] = {}
    for number, row in enumerate(read_table(path, ("party", "vote_share")), start=first_row_number(path)):
        raw = re.sub(r"\s+", " ", require_text(path, number, row, "party")).strip()
        party = names.get(raw.casefold())
        if party is None:
            raise UserError(
                f"{path}: row {number}, field 'party': '{raw}' is not a party of this election "
                f"(parties: {', '.join(p.name for p in parties)})"
            )
        if party in shares:
            raise UserError(f"{path}: row {number}, field 'party': '{raw}' appears twice")
        try:
            share = float(require_text(path, number, row, "vote_share"))
        except ValueError:
            share = -1.0
        if not 0.0 <= share <= 100.0:
            raise UserError(
                f"{path}: row {number}, field 'vote_share': expected a percentage between 0 and 100, "
                f"got {row['vote_share']!r}"
            )
        shares[party] = share
    return shares
