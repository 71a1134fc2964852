"""The batch onboarding file: good rows, bad rows with their line numbers, and the
files that cannot be read as such a table at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from wafleet_app.people.errors import UsageError
from wafleet_app.people.onboard_csv import BadRow, Row, parse_sheet, read_sheet


def test_good_rows_are_normalised_with_their_line_numbers() -> None:
    sheet = parse_sheet(
        "phone,name,login\n+40 712 000 001,Shop,qr\n+40712000002,,pairingCode\n+40712000003\n"
    )
    assert sheet.rows == (
        Row(2, "+40712000001", "Shop", "qr"),
        Row(3, "+40712000002", None, "pairingCode"),
        Row(4, "+40712000003", None, "qr"),
    )
    assert sheet.bad == () and sheet.total == 3


def test_bad_rows_are_reported_by_line_and_do_not_stop_the_others() -> None:
    text = (
        "Name , PHONE,login\n"  # any order and case
        "Shop,+40712000001,qr\n"
        "Letters,call-me,\n"
        "\n"  # blank: skipped, yet counted as a line
        "Again,+40 712 000 001,\n"
        "Local,0712000004,\n"
        "Login,+40712000005,sms\n"
        "Short,+4071,\n"
        "Empty,,\n"
        "Next,+40712000006,PAIRINGCODE\n"
        "Extra,+40712000007,qr,surplus\n"
    )
    sheet = parse_sheet(text)
    assert [row.line for row in sheet.rows] == [2, 10]
    assert sheet.rows[1].login == "pairingCode"
    reasons = {bad.line: bad.reason for bad in sheet.bad}
    assert sorted(reasons) == [3, 5, 6, 7, 8, 9, 11]
    assert "letter" in reasons[3]
    assert "duplicate" in reasons[5] and "line 2" in reasons[5]
    assert "no country code" in reasons[6] and "--region" in reasons[6]
    assert "login" in reasons[7]
    assert "not a phone number" in reasons[8]
    assert reasons[9] == "no phone number"
    assert "4 fields" in reasons[11]
    assert all("712000004" not in reason for reason in reasons.values())  # masked


def test_a_region_reads_local_numbers() -> None:
    sheet = parse_sheet("phone\n0712 000 004\n", region="RO")
    assert sheet.rows == (Row(2, "+40712000004", None, "qr"),)


def test_line_numbers_count_the_lines_of_a_quoted_name_on_several() -> None:
    sheet = parse_sheet('phone,name\n+40712000001,"two\nlines"\nnope,x\n')
    assert sheet.rows[0].line == 2
    assert sheet.bad == (BadRow(4, sheet.bad[0].reason),)


def test_an_excel_byte_order_mark_is_no_column_name() -> None:
    assert parse_sheet("\ufeffphone\n+40712000001\n").rows[0].phone == "+40712000001"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("name,login\nShop,qr\n", "no 'phone' column"),
        ("phone,nmae\n+40712000001,Shop\n", "unknown column 'nmae'"),
        ("phone,phone\n", "named twice"),
    ],
)
def test_a_file_that_is_no_such_table_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_sheet(text)


def test_reading_a_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("phone\n+40712000001\n", encoding="utf-8")
    assert read_sheet(path).rows[0].phone == "+40712000001"
    with pytest.raises(UsageError, match="no file"):
        read_sheet(tmp_path / "missing.csv")
    path.write_bytes(b"phone\n\xff\xfe\n")
    with pytest.raises(UsageError, match="UTF-8"):
        read_sheet(path)
