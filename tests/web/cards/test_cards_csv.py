"""Reading the operator's registry export as a file: comma or semicolon, BOM, line numbers of bad rows,
duplicates, blank lines (no database needed)."""

from __future__ import annotations

from datetime import date

from domain.cards import RowProblem
from domain.carriers import CarrierType, ResidentStatus
from web.cards.service import read_registry_csv

PESEL = "44051401458"
OTHER_PESEL = "02270803624"


def test_comma_separated_with_every_column() -> None:
    text = (
        "type,client_code,pesel,holder_name,resident_from,resident_until,blocked\n"
        f"KKM,100200300,{PESEL},Anna Nowak,2024-01-01,2025-12-31,no\n"
        f"mKK,MK4405140,{PESEL},Anna Nowak,01.01.2024,31.12.2025,tak\n"
    )
    rows, problems = read_registry_csv(text)
    assert problems == []
    assert [(r.line, r.carrier_type, r.client_code, r.blocked) for r in rows] == [
        (2, CarrierType.KKM, "100200300", False), (3, CarrierType.MKK, "MK4405140", True)]
    assert rows[0].resident == rows[1].resident == ResidentStatus(date(2024, 1, 1), date(2025, 12, 31))


def test_semicolons_bom_crlf_and_only_the_required_columns() -> None:
    text = "\ufefftype;client_code;pesel;holder_name\r\n" f"KK;200 300 401;{OTHER_PESEL};Jan Kowalski\r\n"
    rows, problems = read_registry_csv(text)
    assert problems == []
    assert len(rows) == 1
    assert (rows[0].carrier_type, rows[0].client_code, rows[0].pesel, rows[0].holder_name, rows[0].resident) == (
        CarrierType.KK, "200300401", OTHER_PESEL, "Jan Kowalski", None)


def test_semicolon_file_whose_names_contain_commas() -> None:
    text = "type;client_code;pesel;holder_name\n" f"KKM;100200300;{PESEL};Nowak, Anna\n"
    rows, problems = read_registry_csv(text)
    assert problems == [] and rows[0].holder_name == "Nowak, Anna"


def test_quoted_fields_and_header_in_another_case_and_order() -> None:
    text = 'Holder_Name,PESEL,Client_Code,TYPE\n' f'"Nowak, Anna",{PESEL},100200300,KKM\n'
    rows, problems = read_registry_csv(text)
    assert problems == [] and rows[0].holder_name == "Nowak, Anna" and rows[0].client_code == "100200300"


def test_every_bad_row_is_reported_with_its_line_number_and_blank_lines_count() -> None:
    text = (
        "type,client_code,pesel,holder_name,resident_from,resident_until,blocked\n"  # line 1
        f"KKM,100200300,{PESEL},Anna Nowak,,,no\n"  # 2 good
        f"XYZ,100200301,{PESEL},Anna Nowak,,,no\n"  # 3 bad type
        "\n"  # 4 blank, skipped
        f"KKM,1,{PESEL},Anna Nowak,,,no\n"  # 5 bad code
        "KKM,100200302,44051401459,Anna Nowak,,,no\n"  # 6 bad PESEL check digit
        f"KKM,100200303,{PESEL},,,,no\n"  # 7 no holder
        f"KKM,100200304,{PESEL},Anna Nowak,2024-13-01,,no\n"  # 8 bad date
        f"KKM,100200305,{PESEL},Anna Nowak,2024-05-01,2024-04-30,no\n"  # 9 period ends before it starts
        f"KKM,100200306,{PESEL},Anna Nowak,,,perhaps\n"  # 10 bad blocked flag
        f"KKM,1002-00300,{PESEL},Anna Nowak,,,no\n"  # 11 the same card as line 2
        f"KKM,100200307,{PESEL},Anna Nowak,,,no,extra\n"  # 12 too many fields
        f"mKKM,100200308,{PESEL},Anna Nowak\n"  # 13 good (short row: optional columns empty)
    )
    rows, problems = read_registry_csv(text)
    assert [r.line for r in rows] == [2, 13]
    assert problems == [
        RowProblem(3, "type 'XYZ' is not a carrier type (KKM, mKKM, KK, mKK, KKR3+, ELS, ELD, MKA)"),
        RowProblem(5, "client_code must be 4-20 letters or digits"),
        RowProblem(6, "pesel has a wrong check digit"),
        RowProblem(7, "holder_name is missing"),
        RowProblem(8, "resident_from/resident_until must be dates as YYYY-MM-DD or DD.MM.YYYY"),
        RowProblem(9, "resident_until is before resident_from"),
        RowProblem(10, "blocked must be yes/no (or 1/0)"),
        RowProblem(11, "the same card (KKM 100200300) is already on line 2"),
        RowProblem(12, "more fields than columns in the header"),
    ]
    assert all("44051401459" not in p.reason for p in problems)


def test_same_code_on_different_carrier_types_is_not_a_duplicate() -> None:
    text = "type,client_code,pesel,holder_name\n" f"KKM,100200300,{PESEL},Anna Nowak\n" f"KK,100200300,{PESEL},Anna Nowak\n"
    rows, problems = read_registry_csv(text)
    assert problems == [] and len(rows) == 2


def test_missing_required_columns_are_one_problem_on_line_1() -> None:
    rows, problems = read_registry_csv("type;client_code;holder\nKKM;100200300;Anna\n")
    assert rows == []
    assert problems == [RowProblem(1, "missing column(s): pesel, holder_name")]


def test_empty_file() -> None:
    assert read_registry_csv("") == ([], [RowProblem(1, "missing column(s): type, client_code, pesel, holder_name")])
    assert read_registry_csv("\ufeff") == ([], [RowProblem(1, "missing column(s): type, client_code, pesel, holder_name")])


def test_header_only_is_an_empty_registry_export() -> None:
    assert read_registry_csv("type,client_code,pesel,holder_name\n") == ([], [])


def test_demo_registry_is_a_valid_export_matching_the_demo_passengers() -> None:
    from web.simulators.demo import DEMO_PEOPLE, demo_registry

    pesels = {person[4] for person in DEMO_PEOPLE if person[4]}
    for today in [date(2025, 6, 1), date(2024, 2, 29), date(2025, 12, 31), date(2026, 1, 1)]:
        rows, problems = read_registry_csv(demo_registry(today))
        assert problems == [], today
        assert {r.pesel for r in rows} == pesels
        resident = [r for r in rows if r.resident]
        assert resident and all(r.resident.valid_until and r.resident.valid_until >= today for r in resident
                                if r.resident.valid_from and r.resident.valid_from <= today and r.holder_name == "Anna Nowak")


def test_a_field_over_the_csv_limit_is_a_line_problem() -> None:
    """Issue 13, item 8: a 128 KB field raised csv.Error (a traceback from `ekp cards import`)."""
    text = "type,client_code,pesel,holder_name\n" f"KKM,100200300,{PESEL},Anna\n" f"KKM,100200301,{PESEL},{'A' * 200_000}\n"
    rows, problems = read_registry_csv(text)
    assert [(p.line, "longer than" in p.reason) for p in problems] == [(3, True)]
    header_too_long = read_registry_csv("type," + "x" * 200_000 + "\n")[1]
    assert [p.line for p in header_too_long] == [1]
