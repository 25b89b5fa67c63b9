"""fgff_core.format: one style for percent, points, durations and sizes, and MISSING for what is not a number
(issue 35 item 6: the UI showed both "91.2 %" and "91%", and "13116.6 ms" for a 13 s epoch)."""

from __future__ import annotations

import math

import pytest

from fgff_core.format import MISSING, duration, node_id, node_label, percent, points, shorten, size

NOT_NUMBERS = [None, math.nan, math.inf, -math.inf, "abc", object()]


@pytest.mark.parametrize(("value", "kwargs", "expected"), [
    (0.9123, {}, "91.23 %"),
    (0.9, {}, "90.00 %"),
    (1.0, {}, "100.00 %"),
    (0.0, {}, "0.00 %"),
    (0.91234, {"digits": 1}, "91.2 %"),
    (0.3, {"digits": 0}, "30 %"),
    (0.004, {"sign": True}, "+0.40 %"),
    (0.9123, {"unit": ""}, "91.23"),
    ("0.5", {}, "50.00 %"),
    (-0.00004, {"digits": 1}, "0.0 %"),  # rounds to zero: no minus
])
def test_percent_writes_a_fraction_as_a_percentage(value, kwargs, expected):
    assert percent(value, **kwargs) == expected


@pytest.mark.parametrize(("value", "kwargs", "expected"), [
    (0.004, {}, "+0.40 points"),
    (-0.0125, {}, "-1.25 points"),
    (0.0, {}, "+0.00 points"),
    (0.065, {"digits": 1}, "+6.5 points"),
    (0.065, {"digits": 1, "sign": False}, "6.5 points"),
    (0.007, {"digits": 1, "sign": False, "unit": ""}, "0.7"),
    (-0.0002, {"digits": 1}, "+0.0 points"),  # "-0.0 points" once stood in a verdict
    (-0.0002, {"digits": 2}, "-0.02 points"),
])
def test_points_are_signed_percentage_point_differences(value, kwargs, expected):
    assert points(value, **kwargs) == expected


@pytest.mark.parametrize(("seconds", "expected"), [
    (0, "0 s"),
    (0.0042, "4.2 ms"),
    (0.1066, "107 ms"),
    (0.9994, "999 ms"),
    (0.9995, "1.0 s"),
    (3.21, "3.2 s"),
    (9.96, "10 s"),
    (13.1166, "13 s"),  # the Train page showed "13116.6 ms" for this epoch
    (59.4, "59 s"),
    (59.6, "1 min 00 s"),
    (65, "1 min 05 s"),
    (75, "1 min 15 s"),
    (3599.4, "59 min 59 s"),
    (3599.6, "1 h 00 min"),
    (7380, "2 h 03 min"),
])
def test_duration_picks_the_unit_a_person_reads(seconds, expected):
    assert duration(seconds) == expected


@pytest.mark.parametrize(("n_bytes", "expected"), [
    (0, "0 B"),
    (512, "512 B"),
    (1023, "1023 B"),
    (1024, "1 KiB"),
    (1536, "1.5 KiB"),
    (256 << 10, "256 KiB"),
    (1 << 20, "1 MiB"),
    ((1 << 20) - 1, "1 MiB"),  # 1023.999 KiB: written in the next unit, not as "1024 KiB"
    (int(1.5 * (1 << 30)), "1.5 GiB"),
    (3 << 40, "3 TiB"),
    (5 << 70, "5120 EiB"),  # past the last unit: stays in it
])
def test_size_in_binary_units(n_bytes, expected):
    assert size(n_bytes) == expected


@pytest.mark.parametrize("formatter", [percent, points, duration, size])
@pytest.mark.parametrize("value", NOT_NUMBERS, ids=lambda v: type(v).__name__ if type(v) is object else repr(v))
def test_what_is_not_a_number_is_missing(formatter, value):
    assert formatter(value) == MISSING


@pytest.mark.parametrize("formatter", [duration, size])
def test_a_negative_duration_or_size_is_missing(formatter):
    assert formatter(-1) == MISSING
def test_sizes_are_written_in_binary_units_with_at_most_three_digits():
    cases = {0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 256 << 10: "256 KiB",
             (1 << 20) - 1: "1 MiB", 1 << 20: "1 MiB", 10_585_759: "10.1 MiB", 5 << 30: "5 GiB"}
    assert {n: size(n) for n in cases} == cases


@pytest.mark.parametrize("text, limit, expected", [
    ("short enough", 300, "short enough"),
    ("The node died. It had trained eleven epochs of the run", 40, "The node died. It had trained eleven …"),
    ("First sentence is long enough here. Second one goes past the limit", 50,
     "First sentence is long enough here. …"),
    ("one two three four five six seven", 15, "one two three …"),
    ("x" * 400, 20, "x" * 20 + " …"),  # no word end in the second half: cut where the limit is
])
def test_shorten_cuts_a_long_message_at_a_sentence_or_word_end(text, limit, expected):
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit + len(" …")



def test_a_node_is_its_machine_and_on_ray_its_short_id():
    """Issue 36 item 6: "vm (127.0.0.1, node 1a2b3c4d)" made the Runs table scroll sideways at 1440 px."""
    full = "1a2b3c4d" + "0" * 48  # a Ray node id: 56 hex digits
    assert node_id(full) == "1a2b3c4d"
    assert node_label("vm", full) == "vm · 1a2b3c4d"
    assert node_label("vm") == node_label("vm", None) == "vm"
