"""The video packets' timestamps after the edit list, as FFmpeg's mov demuxer builds them (mov_fix_index)."""

from __future__ import annotations

import numpy as np

from longlens.video.container_index import _check


def _rescale(a: int, b: int, c: int) -> int:
    """av_rescale: a * b / c rounded to nearest, halves away from zero."""
    r = c // 2
    if a < 0:
        return -((-a * b + r) // c)
    return (a * b + r) // c


def _search_backward(ts: np.ndarray, wanted: int) -> int:
    """The position ff_index_search_timestamp's binary search ends on (no discarded entries, backward)."""
    n = len(ts)
    a, b = -1, n
    if n and ts[n - 1] < wanted:
        a = n - 1
    while b - a > 1:
        m = (a + b) >> 1
        v = int(ts[m])
        if v >= wanted:
            b = m
        if v <= wanted:
            a = m
    return a


def _prev_closest(ts, key_pos, shown, has_ctts: bool, key, wanted: int, any_frame: bool) -> int:
    """FFmpeg's find_prev_closest_index on the unedited index; -1 when it finds nothing."""
    m = _search_backward(ts, wanted)
    if m >= 0 and not any_frame and not key[m]:
        j = int(np.searchsorted(key_pos, m, side="right")) - 1
        m = int(key_pos[j]) if j >= 0 else -1
    if m < 0:
        return -1
    # back over entries with the same timestamp, to the earliest acceptable one
    run = int(np.searchsorted(ts, ts[m], side="left"))
    if run < m:
        if any_frame:
            m = run
        else:
            j = int(np.searchsorted(key_pos, run, side="left"))
            if j < len(key_pos) and key_pos[j] < m:
                m = int(key_pos[j])
    if has_ctts:
        # a keyframe shown at or before the wanted time, going backwards
        cand = key_pos[: int(np.searchsorted(key_pos, m, side="right"))]
        ok = np.nonzero(shown[cand] <= wanted)[0]
        m = int(cand[ok[-1]]) if len(ok) else -1
    return m


def _mov_timeline(dts, ctts, has_ctts: bool, key, dts_shift: int, edits, movie_ts: int, media_ts: int):
    """Every sample's packet pts and whether FFmpeg's mov demuxer outputs it undiscarded.

    Without an edit list, pts = dts + ctts. With one, this is mov_fix_index for one non-empty edit after
    any number of empty ones: the samples from the keyframe the edit needs up to the second keyframe after
    its end are indexed; those shown outside the edit are marked discarded; the indexed ones are retimed
    from the first sample shown inside the edit, so that the earliest shown starts at the empty edits'
    total (and dts go negative before it).
    """
    n = len(dts)
    if not edits:
        return dts + ctts, np.ones(n, bool)
    _check(movie_ts > 0, "edit list without a movie timescale")
    empty = 0
    media_time = duration = None
    for d, t in edits:
        _check(d >= 0, "negative edit duration")
        d = _rescale(d, media_ts, movie_ts)
        if t == -1 and media_time is None:
            empty += d
            continue
        _check(t >= 0, "edit with a negative media time")
        _check(media_time is None, "several edits (FFmpeg splices them; not reproduced)")
        media_time, duration = t, d
    _check(media_time is not None, "edit list with only empty edits")
    _check(media_time + duration < (1 << 62) and empty < (1 << 62), "edit list times out of range")
    ts = dts - dts_shift  # FFmpeg's index timestamps before the edit list
    shown = ts + ctts  # compared with the wanted time less the shift
    key_pos = np.nonzero(key)[0]
    wanted = media_time - dts_shift
    start = _prev_closest(ts, key_pos, shown, has_ctts, key, wanted, False)
    if start < 0:
        start = _prev_closest(ts, key_pos, shown, has_ctts, key, wanted, True)
    if start < 0:
        start = 0
    cts = dts + ctts
    frame_dur = np.empty(n, np.int64)
    frame_dur[:-1] = np.diff(ts)
    frame_dur[-1] = duration
    edit_end = media_time + duration
    ends = np.nonzero(key[start:] & (cts[start:] + frame_dur[start:] >= edit_end))[0] + start
    need = 2 if has_ctts else 1
    last = int(ends[need - 1]) if len(ends) >= need else n - 1
    inside = np.zeros(n, bool)
    inside[start:last + 1] = (cts[start:last + 1] >= media_time) & (cts[start:last + 1] < edit_end)
    where = np.nonzero(inside)[0]
    _check(len(where) > 0, "the edit list selects no frame")
    first = int(where[0])
    new_ts = (empty - dts_shift) + (ts - ts[first])  # valid from the first sample inside the edit
    corrected = new_ts[where] + ctts[where] + dts_shift
    neg = np.nonzero(corrected < 0)[0]  # FFmpeg restarts its running minimum after a negative value
    if len(neg) == 0:
        min_pts = int(corrected.min())
    elif neg[-1] == len(corrected) - 1:
        min_pts = int(corrected[-1])
    else:
        min_pts = int(corrected[neg[-1] + 1:].min())
    min_pts -= empty
    if min_pts > 0:
        new_ts = new_ts - min_pts
    return new_ts + dts_shift + ctts, inside
