"""The ground floor's durable JSON lines: torn last lines, bad lines named, resumable work, unique ids."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from longlens.agents.navigate.captions import Caption, CaptionStore
from longlens.errors import LongLensError
from longlens.jsonl import append_json, complete_lines, cut_torn_line, read_lines, run_each, unique_ids


def test_a_torn_last_line_is_no_line_and_a_bad_middle_line_is_named(tmp_path):
    path = tmp_path / "r.jsonl"
    assert read_lines(path) == [] and complete_lines(path) == []
    path.write_text('{"a": 1}\n\n{"b": 2}\n{"c": ', encoding="utf-8")
    assert complete_lines(path) == [(1, '{"a": 1}'), (3, '{"b": 2}')]
    assert read_lines(path) == [{"a": 1}, {"b": 2}]
    cut_torn_line(path)
    append_json(path, {"c": 3})
    assert read_lines(path) == [{"a": 1}, {"b": 2}, {"c": 3}]
    path.write_text('{"a": 1}\nnot json\n{"b": 2}\n', encoding="utf-8")
    with pytest.raises(LongLensError, match=r"r.jsonl: line 2 is not JSON .*; move it away"):
        read_lines(path)


def test_a_caption_written_after_a_kill_starts_on_its_own_line(tmp_path):
    path = tmp_path / "caps.jsonl"
    store = CaptionStore(path, {"kind": "test"})
    store.add(Caption("h", "first"))
    with path.open("a", encoding="utf-8") as f:
        f.write('{"node": "h,1", "raw": "cut sh')  # a kill mid-write
    again = CaptionStore(path, {"kind": "test"})  # the next process
    assert set(again.load()) == {"h"}
    again.add(Caption("h,1", "second"))
    again.add(Caption("h,2", "third"))
    assert {k: c.raw for k, c in CaptionStore(path, {}).load().items()} == {"h": "first", "h,1": "second",
                                                                             "h,2": "third"}


def test_run_each_keeps_what_finished_and_raises_the_first_failure():
    written, started = [], []
    lock = threading.Lock()

    def work(i):
        with lock:
            started.append(i)
        if i == 3:
            raise ValueError("three")
        time.sleep(0.02)
        return i

    with pytest.raises(ValueError, match="three"):
        run_each(list(range(50)), work, written.append, concurrency=2)
    assert 0 in written and 3 not in written and len(started) < 50  # the rest never started
    written.clear()
    run_each([1, 2, 3], lambda i: i * 2, written.append)
    assert written == [2, 4, 6]


def test_unique_ids_names_the_duplicate():
    items = [SimpleNamespace(id=x) for x in ("a", "b", "a")]
    with pytest.raises(LongLensError, match="question id 'a' appears twice in the benchmark data"):
        unique_ids(items)
    with pytest.raises(LongLensError, match="row id 'a' appears twice in rows.jsonl"):
        unique_ids(items, what="row", where="rows.jsonl")
    unique_ids(items[:2])
