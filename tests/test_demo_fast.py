"""`longlens demo` is quick and shows its progress; contact sheets are pages whose stamps read."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from longlens.cli.demo import HEIGHT, WIDTH, Progress
from longlens.cli.main import main
from longlens.video.sheet import (
    MIN_TILE_SIDE,
    PER_PAGE,
    clock,
    contact_sheet,
    contact_sheets,
    page_grid,
    save_contact_sheets,
    sheet_paths,
    tile_scale,
)
from longlens.video.stamps import draw_stamp_rgb


def _stamped(n: int, h: int = 112, w: int = 196, source: tuple[int, int] = (360, 640)) -> np.ndarray:
    """`n` grey frames with their red second stamp, drawn at the source size and shrunk as the decoder does."""
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        big = np.full((*source, 3), 90, np.uint8)
        draw_stamp_rgb(big, str(i))
        frames[i] = np.asarray(Image.fromarray(big).resize((w, h), Image.Resampling.BICUBIC))
    return frames


def _red_rows(image: np.ndarray) -> int:
    """Height in rows of the tallest band of red (stamp) pixels: the stamps of one row of tiles."""
    red = ((image[..., 0] > 180) & (image[..., 1] < 90) & (image[..., 2] < 90)).any(axis=1)
    best = run = 0
    for r in red:
        run = run + 1 if r else 0
        best = max(best, run)
    return best


def test_fast_view_pages_have_few_large_captioned_tiles():
    frames = _stamped(100)
    times = [i * 0.78 for i in range(100)]
    pages = contact_sheets(frames, times, title="the fast view")
    assert len(pages) == 3 == -(-100 // PER_PAGE)
    k = tile_scale(112)
    assert k == 2 and 112 * k >= MIN_TILE_SIDE
    cols, rows = page_grid(PER_PAGE, 196 * k, 112 * k + 28)
    assert cols * rows >= PER_PAGE and cols * (196 * k) <= pages[0].width
    assert pages[0].width < 3000 and pages[0].height < 2000  # a page, not a wall of 768 tiles
    assert pages[2].height < pages[0].height  # the last page holds only the 4 frames left
    # the stamp of a 112 px frame is drawn twice as large, so its digits have more than 14 rows
    assert _red_rows(np.asarray(pages[0])) >= 14 > _red_rows(frames[0])
    # a caption strip under each tile: light text on the dark background
    first = np.asarray(pages[0])
    assert (first[: first.shape[0] // 4] > 200).all(axis=2).any()


def test_large_frames_are_not_enlarged_and_one_page_suffices():
    frames = np.zeros((5, 336, 588, 3), np.uint8)
    (page,) = contact_sheets(frames)
    assert tile_scale(336) == 1 and page.width < 4 * 600
    (page,) = contact_sheets(frames, per_page=5, min_tile_side=400)
    assert page.width >= 2 * 1176 and page.height >= 672  # enlarged twice
    with pytest.raises(ValueError):
        contact_sheets(frames, [0.0, 1.0])
    with pytest.raises(ValueError):
        contact_sheets(frames, per_page=0)


def test_contact_sheet_still_tiles_everything_in_one_image():
    img = contact_sheet(np.zeros((6, 10, 20, 3), np.uint8), columns=3, gap=2)
    assert img.size == (3 * 22 - 2, 2 * 12 - 2)


def test_sheet_paths_and_saving(tmp_path):
    assert sheet_paths(tmp_path / "a.jpg", 1) == [tmp_path / "a.jpg"]
    assert [p.name for p in sheet_paths(tmp_path / "a.jpg", 3)] == ["a-01.jpg", "a-02.jpg", "a-03.jpg"]
    assert sheet_paths(tmp_path / "a.png", 120)[-1].name == "a-120.png"
    pages = contact_sheets(_stamped(PER_PAGE + 1), per_page=PER_PAGE)
    paths = save_contact_sheets(pages, tmp_path / "s.png")
    assert [p.name for p in paths] == ["s-01.png", "s-02.png"] and all(p.exists() for p in paths)


def test_clock():
    assert clock(0) == "0:00.0" and clock(83.44) == "1:23.4" and clock(3723.05) == "1:02:03.0"


def test_progress_rewrites_one_line_on_a_terminal_and_says_little_elsewhere():
    tty = io.StringIO()
    progress = Progress(tty, tty=True, after_s=0.05)
    with progress.step("making the video") as p:
        p.update(0.5)
        time.sleep(0.35)
    text = tty.getvalue()
    assert text.startswith("\r\033[Kmaking the video ... 50 %") and text.endswith("\r\033[K") and "\n" not in text
    log = io.StringIO()
    progress = Progress(log, tty=False, after_s=0.1, every_s=10.0)
    with progress.step("quick"):
        pass
    assert log.getvalue() == ""
    with progress.step("slow") as p:
        time.sleep(0.3)
        p.update(what="slower")
    assert log.getvalue() == "slow ... 0 s\n"


def test_demo_is_small_answers_right_and_writes_readable_sheets(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--minutes", "0.5", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    text = capsys.readouterr().out
    assert "verdict   right" in text and f"{WIDTH}x{HEIGHT}" in text and "s to make" in text
    assert "decoded   the fast view" in text and "time      " in text
    (video,) = out.glob("*.mp4")
    key = json.loads(video.with_suffix(".json").read_text())
    assert (key["width"], key["height"]) == (WIDTH, HEIGHT)
    # 30 s: the fast view is 60 frames, on two pages; the zoom-in clip is one
    fast = sorted(out.glob("*-fast-*.jpg"))
    zoom = list(out.glob("*-zoom.jpg"))
    assert len(fast) == 2 and len(zoom) == 1
    assert "sheets    " in text and "2 pages" in text
    for path in fast:
        with Image.open(path) as page:
            assert page.width <= 3000 and page.height <= 2000
            assert _red_rows(np.asarray(page.convert("RGB"))) >= 12  # 168 px frames, not enlarged: 14 rows
