"""The shared CSV validation toolkit: every problem of a file is found, named and located."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from mes_common.csv_cells import Boolean, Choice, Code, Date, Integer, Number, Text, describe_char
from mes_common.csv_report import CsvImportError
from mes_common.csv_validation import parse_csv, read_csv
from mes_common.errors import DomainError

LOCATIONS = (Code("code"), Text("name"), Choice("kind", ("stores", "wip", "finished", "scrap", "quarantine")))
BALANCES = (
    Code("item"),
    Code("location"),
    Code("lot", required=False),
    Number("qty", positive=True, places=6),
    Number("unit_cost", minimum=Decimal(0), places=6),
)


def _csv(text: str) -> bytes:
    return text.encode("utf-8")


def _issues(data: bytes, columns=LOCATIONS, key=("code",)) -> list[tuple[int, str, str]]:
    table = parse_csv(data, columns, key=key, name="f.csv")
    return [(i.row, i.column, i.message) for i in table.issues]


def test_valid_file_parses_typed_values_with_line_numbers() -> None:
    rows = read_csv(
        _csv("item,location,lot,qty,unit_cost\nRM-STEEL,STORES,,100,4.00\nRM-BOLT,STORES,L-7,500,0.10\n"),
        BALANCES,
        key=("item", "location", "lot"),
    )
    assert [r.line for r in rows] == [2, 3]
    assert rows[0]["qty"] == Decimal("100") and rows[0]["lot"] is None
    assert list(rows[0].values())[:2] == ["RM-STEEL", "STORES"]
    assert rows[1]["unit_cost"] == Decimal("0.10") and rows[1]["lot"] == "L-7"


def test_nbsp_in_code_names_row_column_and_code_point() -> None:
    data = _csv("code,name,kind\nSTORES,Stores,stores\nFG\u00a0,Finished,finished\n")
    with pytest.raises(CsvImportError) as info:
        read_csv(data, LOCATIONS, key=("code",), name="locations.csv")
    err = info.value
    assert isinstance(err, DomainError)
    assert [(i.row, i.column) for i in err.issues] == [(3, "code")]
    assert "U+00A0 NO-BREAK SPACE" in err.message
    assert "locations.csv: row 3, column code" in err.message


@pytest.mark.parametrize(
    "char, name",
    [
        ("\u200b", "U+200B ZERO WIDTH SPACE"),
        ("\u200c", "U+200C ZERO WIDTH NON-JOINER"),
        ("\u200d", "U+200D ZERO WIDTH JOINER"),
        ("\u2060", "U+2060 WORD JOINER"),
        ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("\u2009", "U+2009 THIN SPACE"),
        ("\t", "U+0009 CHARACTER TABULATION"),
        ("\u00ad", "U+00AD SOFT HYPHEN"),
    ],
)
def test_invisible_characters_are_refused_in_codes_and_text(char: str, name: str) -> None:
    issues = _issues(_csv(f"code,name,kind\nA{char}B,Na{char}me,stores\n"))
    assert issues == [
        (2, "code", f"{name} at position 2 (invisible or control character)"),
        (2, "name", f"{name} at position 3 (invisible or control character)"),
    ]


def test_a_byte_order_mark_at_the_very_start_is_accepted_elsewhere_refused() -> None:
    assert _issues(_csv("\ufeffcode,name,kind\nX,Stores,stores\n")) == []
    assert _issues(_csv("\ufeffcode,name,kind\nX,\ufeffStores,stores\n")) == [
        (2, "name", "U+FEFF ZERO WIDTH NO-BREAK SPACE at position 1 (invisible or control character)")]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_separated_files_are_read_from_their_header(sep: str) -> None:
    table = parse_csv(f"code{sep}name{sep}kind\nX{sep}Stores{sep}stores\n".encode(), LOCATIONS,
                      name="locations.csv")
    assert table.issues == [] and [dict(r.data) for r in table.rows] == [
        {"code": "X", "name": "Stores", "kind": "stores"}]


def test_a_semicolon_header_that_does_not_fit_names_the_delimiter() -> None:
    assert _issues(_csv("code;name;type\nX;Stores;stores\n")) == [
        (1, "", "header is 'code;name;type', expected exactly 'code,name,kind' (separated by semicolons: such a "
                "file is read only when its header names exactly the expected columns)")]


def test_cyrillic_lookalike_in_code_is_named() -> None:
    issues = _issues(_csv("code,name,kind\nST\u041eRES,Stores,stores\n"))
    assert issues == [
        (2, "code", "U+041E CYRILLIC CAPITAL LETTER O at position 3 (not allowed in a code, looks like Latin 'O')")
    ]


def test_greek_and_fullwidth_lookalikes_in_code() -> None:
    issues = _issues(_csv("code,name,kind\n\u039aEY,K,stores\nK\uff25Y,K,stores\n"))
    assert [m for _, _, m in issues] == [
        "U+039A GREEK CAPITAL LETTER KAPPA at position 1 (not allowed in a code, looks like Latin 'K')",
        "U+FF25 FULLWIDTH LATIN CAPITAL LETTER E at position 2 (not allowed in a code, looks like Latin 'E')",
    ]


def test_text_allows_other_scripts_but_not_mixed_words() -> None:
    ok = _issues(_csv("code,name,kind\nA,Größe Ø8 Склад 10k\u03a9 5\u03bcm,stores\n"))
    assert ok == []
    mixed = _issues(_csv("code,name,kind\nA,B\u043elt,stores\n"))
    assert mixed == [
        (
            2,
            "name",
            "U+043E CYRILLIC SMALL LETTER O at position 2 in word 'B\u043elt' mixes scripts (looks like Latin 'o')",
        )
    ]


def test_leading_trailing_and_inner_spaces() -> None:
    issues = _issues(_csv("code,name,kind\n STORES,Stores,stores\nFG,Finished ,finished\nA B,x,wip\nC,   ,wip\n"))
    assert issues == [
        (2, "code", "leading space"),
        (3, "name", "trailing space"),
        (4, "code", "space inside code 'A B' at position 2"),
        (5, "name", "blank (only spaces)"),
    ]


def test_numbers_negative_bad_and_too_precise() -> None:
    data = _csv(
        "item,location,lot,qty,unit_cost\n"
        "A,S,,-5,1\n"
        "B,S,,0,1\n"
        "C,S,,1e3,1\n"
        'D,S,,1,"1,50"\n'
        "E,S,,1,-0.01\n"
        "F,S,,0.0000001,1\n"
        "G,S,,abc,1\n"
    )
    issues = _issues(data, BALANCES, key=("item",))
    assert issues == [
        (2, "qty", "-5 must be greater than zero"),
        (3, "qty", "0 must be greater than zero"),
        (4, "qty", "'1e3' is not a decimal number"),
        (5, "unit_cost", "'1,50' is not a decimal number (use '.' as the decimal separator, no thousands separator)"),
        (6, "unit_cost", "-0.01 is negative"),
        (7, "qty", "0.0000001 has more than 6 decimal places"),
        (8, "qty", "'abc' is not a decimal number"),
    ]


def test_dates_booleans_integers() -> None:
    columns = (Code("code"), Date("valid_from"), Date("valid_to", required=False), Boolean("phantom"),
               Integer("operation", minimum=0))  # fmt: skip
    data = _csv(
        "code,valid_from,valid_to,phantom,operation\n"
        "A,2026-01-01,,true,10\n"
        "B,2026-02-30,,yes,-1\n"
        "C,01/02/2026,20260101,FALSE,1.5\n"
    )
    table = parse_csv(data, columns, key=("code",))
    assert len(table.rows) == 1
    assert dict(table.rows[0]) == {
        "code": "A",
        "valid_from": date(2026, 1, 1),
        "valid_to": None,
        "phantom": True,
        "operation": 10,
    }
    assert [(i.row, i.column) for i in table.issues] == [
        (3, "valid_from"),
        (3, "phantom"),
        (3, "operation"),
        (4, "valid_from"),
        (4, "valid_to"),
        (4, "operation"),
    ]
    assert "'yes' is not a boolean (expected true or false)" in [i.message for i in table.issues]
    assert "-1 is negative" in [i.message for i in table.issues]


def test_duplicate_keys_name_the_first_row() -> None:
    issues = _issues(_csv("code,name,kind\nA,x,wip\nB,y,wip\nA,z,wip\n"))
    assert issues == [(4, "code", "duplicate key (code=A), first on row 2")]


def test_header_must_match_exactly() -> None:
    issues = _issues(_csv("code,kind,name\nA,wip,x\n"))
    assert issues == [(1, "", "header is 'code,kind,name', expected exactly 'code,name,kind'")]
    hidden = _issues(_csv("code,name\u200b,kind\nA,x,wip\n"))
    assert hidden == [(1, "name\u200b", "header: U+200B ZERO WIDTH SPACE at position 5 of column 2")]


def test_field_count_and_quoted_multiline_rows_keep_line_numbers() -> None:
    data = _csv('code,name,kind\nA,"two\nlines",wip\nB,x\nC,\u00a0,wip\n')
    issues = _issues(data)
    assert issues == [
        (2, "name", "U+000A LINE FEED at position 4 (invisible or control character)"),
        (4, "", "expected 3 fields, found 2"),
        (5, "name", "U+00A0 NO-BREAK SPACE at position 1 (invisible or control character)"),
    ]


def test_invalid_utf8_names_the_line_and_byte() -> None:
    data = b"code,name,kind\nA,x,wip\nB,caf\xe9,wip\n"
    issues = _issues(data)
    assert issues[0] == (3, "", "not UTF-8: byte(s) 0xE9 at byte offset 28")


def test_all_issues_collected_and_caller_issues_join_the_report(tmp_path: Path) -> None:
    path = tmp_path / "locations.csv"
    path.write_bytes(_csv("code,name,kind\nA\u00a0,x,wip\nB,y,depot\nC,z,wip\n"))
    table = parse_csv(path, LOCATIONS, key=("code",))
    assert [r["code"] for r in table.rows] == ["C"]
    table.add_issue(4, "code", "location C already exists")
    with pytest.raises(CsvImportError) as info:
        table.raise_if_issues()
    assert [i.row for i in info.value.issues] == [2, 3, 4]
    assert info.value.message.startswith("locations.csv: 3 problem(s), nothing imported:")
    assert "'depot' is not one of stores, wip, finished, scrap, quarantine" in info.value.message


def test_empty_file_and_blank_lines() -> None:
    assert _issues(b"") == [(1, "", "empty file (expected header code,name,kind)")]
    assert _issues(_csv("code,name,kind\n\nA,x,wip\n\n")) == []


def test_describe_control_character() -> None:
    assert describe_char("\r") == "U+000D CARRIAGE RETURN"
    assert describe_char("\u00a0") == "U+00A0 NO-BREAK SPACE"


def test_crlf_line_endings_and_no_final_newline() -> None:
    rows = read_csv(b"code,name,kind\r\nA,x,wip\r\nB,y,wip", LOCATIONS, key=("code",))
    assert [(r.line, r["code"], r["name"]) for r in rows] == [(2, "A", "x"), (3, "B", "y")]
