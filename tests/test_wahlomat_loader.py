"""Loading qual-o-mat folders: the bundled sample, hand-written fixtures, URLs and malformed files."""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path

import pytest

from harness.errors import UserError
from harness_tasks.wahlomat.election import FILES, RAW_BASE, load_election, resolve_remote
from harness_tasks.wahlomat.task import WahlomatTask, bundled_data_path

BUNDLED = bundled_data_path()
ANSWER_IDS = {0: "agree", 1: "disagree", 2: "neutral"}


def raw(name: str, folder: Path = BUNDLED):
    return json.loads((folder / name).read_text(encoding="utf-8"))


def copy_sample(tmp_path: Path) -> Path:
    folder = tmp_path / "election"
    shutil.copytree(BUNDLED, folder)
    return folder


def write(folder: Path, name: str, doc) -> None:
    (folder / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def load(folder: Path, **options):
    return WahlomatTask({"data": str(folder), **options}).load()


def test_bundled_sample_is_an_election_in_the_upstream_layout():
    statements, parties, opinions = raw("statement.json"), raw("party.json"), raw("opinion.json")
    assert len(statements) >= 8 and len(parties) >= 4
    assert [a["message"] for a in raw("answer.json")] == ["Stimme zu", "Stimme nicht zu", "Neutral"]
    assert set(raw("overview.json")) == {"title", "date", "info", "slug", "data_source"}
    assert len(opinions) == len(statements) * len(parties)
    assert {e["id"] for e in raw("statement_en.json")} == {s["id"] for s in statements}


def test_bundled_sample_loads_with_party_positions_from_opinion_json():
    samples, info = WahlomatTask({}).load()
    statements, parties = raw("statement.json"), raw("party.json")
    assert [s.id for s in samples] == [str(s["id"]) for s in statements]
    assert info.source == "bundled:wahlomat/data" and info.n_samples == len(statements)
    names = {p["id"]: p["name"] for p in parties}
    for op in raw("opinion.json"):
        sample = samples[[s["id"] for s in statements].index(op["statement"])]
        assert sample.metadata["parties"][names[op["party"]]] == ANSWER_IDS[op["answer"]]
    assert statements[0]["text"] in samples[0].input and "stimme nicht zu" in samples[0].input
    assert all(s.metadata["weight"] == 1 and s.metadata["language"] == "de" for s in samples)


def test_english_uses_the_translations_keyed_by_thesis_id():
    samples, info_en = WahlomatTask({"language": "en", "double": "2,5"}).load()
    english = {e["id"]: e for e in raw("statement_en.json")}
    for sample in samples:
        entry = english[sample.metadata["thesis"]]
        assert entry["text"] in sample.input and entry["label"] == sample.metadata["label"]
        assert "agree, disagree, neutral" in sample.input
    assert [s.metadata["weight"] for s in samples] == [2 if s.id in ("2", "5") else 1 for s in samples]
    _, info_de = WahlomatTask({}).load()
    assert info_en.content_hash != info_de.content_hash


def test_hand_written_fixture_with_reordered_answer_ids(tmp_path):
    """Answer ids are mapped by their message, so a folder that numbers them differently still loads."""
    folder = tmp_path / "mini"
    folder.mkdir()
    write(folder, "statement.json", [{"id": 7, "category": 1, "label": "A", "text": "These A."},
                                     {"id": 3, "category": None, "label": "B", "text": "These B."}])
    write(folder, "party.json", [{"id": 0, "name": "  Eins  Partei ", "longname": "Partei Eins"},
                                 {"id": 5, "name": "Zwei", "longname": "Partei Zwei"}])
    write(folder, "answer.json", [{"id": 0, "message": "Neutral"}, {"id": 1, "message": "Stimme zu"},
                                  {"id": 2, "message": "Stimme nicht zu"}])
    write(folder, "comment.json", [{"id": 0, "text": "Begründung."}])
    write(folder, "opinion.json", [
        {"id": 0, "party": 0, "statement": 7, "answer": 1, "comment": 0},
        {"id": 1, "party": 0, "statement": 3, "answer": 0, "comment": None},
        {"id": 2, "party": 5, "statement": 7, "answer": 2, "comment": None},
        {"id": 3, "party": 5, "statement": 3, "answer": 1, "comment": None},
    ])
    write(folder, "overview.json", {"title": "Mini", "date": "2031-01-01", "info": "https://example.org/i",
                                    "slug": "mini", "data_source": "https://example.org/d"})
    election = load_election(folder)
    assert [t.id for t in election.theses] == [7, 3]
    assert election.positions == {7: {"Eins Partei": "agree", "Zwei": "disagree"},
                                  3: {"Eins Partei": "neutral", "Zwei": "agree"}}
    samples, _ = load(folder)
    assert [s.id for s in samples] == ["7", "3"]


def mutate(name: str, change):
    def apply(folder: Path) -> None:
        doc = raw(name, folder)
        change(doc)
        write(folder, name, doc)
    return apply


def set_field(index: int, field: str, value):
    return lambda doc: doc[index].__setitem__(field, value)


MALFORMED = [
    ("statement.json", mutate("statement.json", set_field(2, "text", 5)), "entry [2], field 'text'"),
    ("statement.json", mutate("statement.json", set_field(4, "id", 1)), "entry [4], field 'id': duplicate id 1"),
    ("statement.json", mutate("statement.json", set_field(1, "category", "x")), "entry [1], field 'category'"),
    ("party.json", mutate("party.json", lambda d: d[1].pop("name")), "entry [1], field 'name'"),
    ("party.json", mutate("party.json", set_field(3, "name", "FSP")), "entry [3], field 'name': duplicate party"),
    ("opinion.json", mutate("opinion.json", set_field(7, "answer", 9)),
     "entry [7], field 'answer': no answer with id 9"),
    ("opinion.json", mutate("opinion.json", set_field(3, "party", "1")),
     "entry [3], field 'party': expected a non-negative"),
    ("opinion.json", mutate("opinion.json", set_field(4, "statement", 99)), "entry [4], field 'statement'"),
    ("opinion.json", mutate("opinion.json", set_field(5, "comment", 999)), "entry [5], field 'comment'"),
    ("opinion.json", mutate("opinion.json", set_field(6, "party", True)), "entry [6], field 'party'"),
    ("opinion.json", mutate("opinion.json", lambda d: d.pop(12)), "no entry for party 1 ('HBU') and statement 2"),
    ("opinion.json", mutate("opinion.json", lambda d: d.append({**d[0], "id": 500})),
     "entry [50], field 'statement': party 0 already answered statement 0"),
    ("answer.json", mutate("answer.json", set_field(0, "message", "Ja")), "entry [0], field 'message': unknown answer"),
    ("comment.json", mutate("comment.json", set_field(9, "text", None)), "entry [9], field 'text'"),
    ("overview.json", mutate("overview.json", lambda d: d.pop("date")), "field 'date'"),
    ("party.json", lambda f: (f / "party.json").write_text('[{"id": 0,', encoding="utf-8"), "invalid JSON at line 1"),
    ("party.json", lambda f: write(f, "party.json", {"id": 0}), "expected a non-empty JSON array"),
    ("statement.json", lambda f: write(f, "statement.json", [1, 2]), "entry [0]: expected an object"),
    ("comment.json", lambda f: (f / "comment.json").unlink(), "file not found"),
]


@pytest.mark.parametrize(("name", "damage", "expected"), MALFORMED, ids=[m[2][:40] for m in MALFORMED])
def test_malformed_files_fail_naming_file_entry_and_field(tmp_path, name, damage, expected):
    folder = copy_sample(tmp_path)
    damage(folder)
    with pytest.raises(UserError) as err:
        load(folder)
    message = str(err.value)
    assert message.startswith(f"{folder}/{name}") and expected in message, message


def test_translation_problems_are_named(tmp_path):
    folder = copy_sample(tmp_path)
    english = raw("statement_en.json", folder)
    write(folder, "statement_en.json", english[:-1])
    with pytest.raises(UserError, match=r"statement_en.json: no translation for thesis id 9"):
        load(folder, language="en")
    write(folder, "statement_en.json", english + [{"id": 77, "label": "x", "text": "y"}])
    with pytest.raises(UserError, match=r"field 'id': no thesis with id 77"):
        load(folder, language="en")
    write(folder, "statement_en.json", [{**english[0], "text": ""}] + english[1:])
    with pytest.raises(UserError, match=r"statement_en.json: entry \[0\], field 'text'"):
        load(folder, language="en")
    (folder / "statement_en.json").unlink()
    with pytest.raises(UserError, match="language=en needs English theses.*-T translations="):
        load(folder, language="en")
    other = tmp_path / "en.json"
    other.write_text(json.dumps(english), encoding="utf-8")
    samples, _ = load(folder, language="en", translations=str(other))
    assert english[3]["text"] in samples[3].input


def test_double_weight_ids_must_exist():
    with pytest.raises(UserError, match="-T double: no thesis with id 42"):
        WahlomatTask({"double": "1,42"}).load()


def test_results_file_is_validated_and_carried_in_metadata(tmp_path):
    good = tmp_path / "results.csv"
    good.write_text("party,vote_share\nHBU,31.5\nmitte plus,12\n", encoding="utf-8")
    samples, _ = WahlomatTask({"results_file": str(good)}).load()
    assert samples[0].metadata["vote_shares"] == {"HBU": 31.5, "Mitte Plus": 12.0}
    for body, expected in [
        ("party,vote_share\nHBU,10\nNOPE,3\n", "row 3, field 'party': 'NOPE' is not a party"),
        ("party,vote_share\nHBU,ten\n", "row 2, field 'vote_share'"),
        ("party,vote_share\nHBU,101\n", "row 2, field 'vote_share'"),
        ("party,vote_share\nHBU,1\nHBU,2\n", "row 3, field 'party': 'HBU' appears twice"),
        ("party,share\nHBU,1\n", "missing column(s) vote_share"),
    ]:
        good.write_text(body, encoding="utf-8")
        with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            WahlomatTask({"results_file": str(good)}).load()


@pytest.fixture
def served_sample():
    """The bundled sample served over HTTP on localhost (no outside network)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(BUNDLED))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_raw_url_source_reads_the_same_files_as_a_folder(served_sample):
    remote = load_election(served_sample + "/")
    local = load_election(BUNDLED)
    assert remote.origin == served_sample
    assert (remote.theses, remote.parties, remote.positions) == (local.theses, local.parties, local.positions)
    assert remote.content_hash == local.content_hash
    samples, info = WahlomatTask({"data": served_sample}).load()
    assert info.source == served_sample and len(samples) == len(local.theses)


def test_missing_remote_file_and_offline_errors(served_sample):
    with pytest.raises(UserError, match=r"/nowhere/statement.json: HTTP 404"):
        load_election(served_sample + "/nowhere")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError, match=r"statement.json: cannot fetch .*offline\? download the folder"):
        load_election(f"http://127.0.0.1:{port}/data")


def test_shorthand_points_at_the_qual_o_mat_repository():
    assert resolve_remote("qual-o-mat:2025/deutschland") == RAW_BASE + "2025/deutschland"
    assert RAW_BASE.startswith("https://raw.githubusercontent.com/gockelhahn/qual-o-mat-data/")
    assert len(FILES) == 6


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        load(tmp_path / "absent")
