"""The action parser: the reference's cases, the tolerated forms, and fuzzing (it never raises)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longlens.agents.zoom.actions import Answer, Malformed, Zoom, last_boxed, parse_action, parse_choice, parse_time

ZOOM = "I need to zoom in on the video.\n\n"
ANSWER = "I get the answer.\n\n"


@pytest.mark.parametrize(
    "reply,expected",
    [
        (ZOOM + "The label appears near 10 minutes. \\boxed{[600, 610]}", Zoom(600, 610)),
        (ZOOM + "\\boxed{[600.5, 612.25]}", Zoom(600.5, 612.25)),
        (ZOOM + "\\boxed{[10:00, 10:30]}", Zoom(600, 630)),
        (ZOOM + "\\boxed{[0:10:00, 0:10:30]}", Zoom(600, 630)),
        (ZOOM + "\\boxed{[ 600s , 610 s ]}", Zoom(600, 610)),
        (ZOOM + "\\boxed{[20, 10]}", Zoom(20, 10)),  # reversed: the policy decides
        (ANSWER + "So it is \\boxed{B}", Answer("B", "B")),
        (ANSWER + "\\boxed{b}", Answer("b", "B")),
        (ANSWER + "\\boxed{(C) the red one}", Answer("(C) the red one", "C")),
        (ANSWER + "\\boxed{\\text{D}}", Answer("\\text{D}", "D")),
        (ANSWER + "\\boxed{[A]}", Answer("A", "A")),
        (ANSWER + "\\boxed{ROCKET}", Answer("ROCKET", None)),
        (ANSWER + "\\boxed{A cat}", Answer("A cat", None)),
        ("first \\boxed{[1, 2]} then \\boxed{A}", Answer("A", "A")),  # the last box counts
        ("\\boxed{A} then \\boxed{[1, 2]}", Zoom(1, 2)),
        ("\\boxed{\\frac{1}{2}}", Answer("\\frac{1}{2}", None)),  # nested braces kept
        ("\\boxed{B", Answer("B", "B")),  # unclosed box runs to the end
    ],
)
def test_parse_action(reply, expected):
    assert parse_action(reply, "ABCD") == expected


@pytest.mark.parametrize(
    "reply,reason",
    [
        ("I think it is B.", "no \\boxed{}"),
        ("\\boxed{}", "empty"),
        ("\\boxed{  }", "empty"),
        ("\\boxed{[1, 2, 3]}", "exactly two times"),
        ("\\boxed{[start_time, end_time]}", "seconds"),
        ("\\boxed{[1:75, 2:00]}", "seconds"),
        ("\\boxed{[]}", "exactly two times"),
    ],
)
def test_malformed_replies(reply, reason):
    action = parse_action(reply)
    assert isinstance(action, Malformed) and reason in action.reason


def test_choice_letters_are_limited_to_the_options():
    assert parse_action("\\boxed{E}", "ABCD") == Answer("E", None)
    assert parse_action("\\boxed{E}", "ABCDE") == Answer("E", "E")
    assert parse_choice("Option D", "ABCD") == "D" and parse_choice("Answer: c") == "C"
    assert parse_choice("The answer is B") == "B"
    assert parse_choice("Blue") is None and parse_choice("ABC") is None


def test_parse_time_forms():
    assert [parse_time(t) for t in ("90", "90.5", ".5", "90s", "1:30", "1:30.5", "01:02:03")] == [
        90, 90.5, 0.5, 90, 90, 90.5, 3723]
    assert all(parse_time(t) is None for t in ("", "abc", "1:75", "1.5:30", "-3", "1:2:3:4", "nan"))
    huge = "9" * 400
    assert parse_time(f"{huge}.5") is None and parse_time(f"{huge}:00") is None  # never inf
    assert isinstance(parse_action(f"\\boxed{{[{huge}.5, 2]}}", "ABCD", "lenient"), Malformed)


def test_last_boxed_brace_matching():
    assert last_boxed("x \\boxed{a{b}c} y") == "a{b}c"
    assert last_boxed("\\boxed{a} \\boxed{ b }") == "b"
    assert last_boxed("nothing") is None


boxes = st.one_of(
    st.text(max_size=40),
    st.builds(lambda a, b: f"[{a}, {b}]", st.floats(allow_nan=True), st.floats(allow_nan=True)),
    st.builds(lambda a, b: f"[{a}:{b}]", st.integers(-5, 200), st.integers(-5, 200)),
    st.sampled_from(["A", "(B)", "[C]", "\\text{D}", "{", "}", "[", "]", "[,]", "[1,]", "\\boxed{"]),
)
replies = st.one_of(
    st.text(max_size=300),
    st.builds(lambda pre, box, post: f"{pre}\\boxed{{{box}}}{post}", st.text(max_size=80), boxes, st.text(max_size=20)),
    st.builds(lambda a, b: a + "\\boxed{" + b, st.text(max_size=50), boxes),
)


@settings(max_examples=3000, deadline=None)
@given(replies)
def test_fuzz_parser_never_raises(reply):
    action = parse_action(reply, "ABCD")
    assert isinstance(action, Answer | Zoom | Malformed)
    if isinstance(action, Zoom):
        assert action.start_s >= 0 and action.end_s >= 0
    if isinstance(action, Answer):
        assert action.choice in (None, "A", "B", "C", "D")


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 20000), st.integers(0, 20000), st.text(alphabet=st.characters(blacklist_characters="\\{}"),
                                                               max_size=100))
def test_fuzz_intervals_round_trip(a, b, cot):
    assert parse_action(f"{ZOOM}{cot} \\boxed{{[{a}, {b}]}}") == Zoom(a, b)
