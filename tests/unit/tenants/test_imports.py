from __future__ import annotations

from datetime import date

import pytest

from lianka.tenants.domain.imports import mask_phone, normalise_phone, parse_members_csv


def test_a_good_file_in_chinese_headers_with_bom() -> None:
    content = "\ufeff手机,姓名,性别,生日,标签,短信,积分\n138 0013 8000,张三,男,1990-05-01,咖啡；常客,是,120\n".encode()
    r = parse_members_csv(content)
    assert r.ok
    [row] = r.rows
    assert row.phone == "+8613800138000"
    assert row.gender == "male"
    assert row.birthday == date(1990, 5, 1)
    assert row.tags == ("咖啡", "常客")
    assert row.sms_consent is True
    assert row.opening_points == 120


def test_row_level_errors_are_reported_per_line() -> None:
    content = (
        "phone,name,gender,birthday,email,opening_points,sms_consent\n"
        "13800138000,A,f,,a@example.com,0,no\n"
        "12345,B,x,1990-13-01,not-mail,-5,maybe\n"
        "+86 138-0013-8000,C,,,,,\n"
        "\n"
        "13900139000,D,,,,,\n"
    )
    r = parse_members_csv(content)
    assert [row.line for row in r.rows] == [2, 6]
    assert [e.line for e in r.errors] == [3, 4]
    bad = r.errors[0].errors
    assert len(bad) == 6  # phone, gender, birthday, email, points, consent
    assert "already on line 2" in r.errors[1].errors[0]
    assert not r.ok


@pytest.mark.parametrize(
    ("content", "fatal"),
    [
        ("", "empty"),
        ("name\nA\n", "phone"),
        ("phone,favourite_colour\n1,red\n", "unknown columns"),
    ],
)
def test_fatal_file_problems(content: str, fatal: str) -> None:
    assert fatal in parse_members_csv(content).fatal


def test_phone_helpers() -> None:
    assert normalise_phone("008613800138000") == "+8613800138000"
    assert normalise_phone("+1 650 253 0000") == "+16502530000"
    with pytest.raises(ValueError, match="phone"):
        normalise_phone("hello")
    assert mask_phone("+8613800138000") == "+86 138****8000"
    assert "253" not in mask_phone("+16502530000")[4:]


def test_old_mac_line_endings_are_line_endings() -> None:
    r = parse_members_csv("phone,name\r13800138000,A\r13900139000,B\r")
    assert r.ok
    assert [(row.line, row.name) for row in r.rows] == [(2, "A"), (3, "B")]


def test_line_breaks_and_control_characters_inside_cells_are_row_errors() -> None:
    content = 'phone,name,tags\n13800138000,"A\rB",\n13900139000,C,"x\ny"\n13700137000,D\x1b[2J,\n13600136000,E,ok\n'
    r = parse_members_csv(content)
    assert [row.name for row in r.rows] == ["E"]
    assert [(e.line, e.errors) for e in r.errors] == [  # rows as a spreadsheet numbers them
        (2, ("name: line breaks and control characters are not allowed",)),
        (3, ("tags: line breaks and control characters are not allowed",)),
        (4, ("name: line breaks and control characters are not allowed",)),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "phone,name\n13800138000,A\x00B\n",
        "phone,name\n".encode("utf-16-le").decode("utf-8"),  # a UTF-16 file read as UTF-8: NULs everywhere
    ],
)
def test_a_nul_character_makes_the_file_unreadable(content: str) -> None:
    r = parse_members_csv(content)
    assert "NUL" in r.fatal and not r.rows


def test_a_cell_over_the_csv_field_limit_is_a_fatal_problem() -> None:
    r = parse_members_csv('phone,name\n13800138000,"' + "x" * 200_000 + '"\n')
    assert "not readable CSV" in r.fatal
