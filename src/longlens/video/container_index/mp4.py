"""The mov demuxer's view of the moov: which track is the video stream, and its packets' timestamps and
keyframes from the sample tables (see the package docstring)."""

from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np

from longlens.video.container_index import ContainerIndex, NoIndex, _check
from longlens.video.container_index.boxes import (
    _MP4_CODECS,
    _MP4_OTHER_HANDLERS,
    _MP4_VIDEO_LIKE,
    _arr,
    _child,
    _children,
    _chunks,
    _dref_external,
    _full_box,
    _matrix,
    _other_track_end,
    _sample_sizes,
    _table,
    _top_boxes,
    _Trak,
    _u32,
)
from longlens.video.container_index.h264 import _avcc_length_size, _h264_parser_key
from longlens.video.container_index.timeline import _mov_timeline

_MAX_MOOV = 1 << 30  # a moov larger than this is not trusted (3 h of 30 fps video needs about 5 MB)
_MAX_SAMPLES = 1 << 26  # 620 hours at 30 fps


def _unique(a: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy's hash-based unique is many times slower on 300k timestamps)."""
    s = np.sort(a.astype(np.int64))
    if len(s) < 2:
        return s
    return s[np.concatenate([[True], s[1:] != s[:-1]])]


def _finish(pts_all: np.ndarray, is_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_scan``'s arrays from the kept packets' pts and keyframe flags."""
    pts = _unique(pts_all)
    key_idx = np.searchsorted(pts, _unique(pts_all[is_key])).astype(np.int64)
    if len(key_idx) == 0 or key_idx[0] != 0:
        key_idx = np.concatenate([np.zeros(1, np.int64), key_idx]).astype(np.int64)
    return pts, key_idx


def _display_rotation(tkhd_m: list[int], movie_m: list[int]) -> int | None:
    """FFmpeg's combined display matrix (mov_read_tkhd) and PyAV's ``int(av_display_rotation_get(m))``."""
    res = [0] * 9
    sh = (16, 16, 30)
    for i in range(3):
        for j in range(3):
            acc = 0
            for e in range(3):
                acc += (tkhd_m[i * 3 + e] * movie_m[e * 3 + j]) >> sh[e]
            res[i * 3 + j] = ((acc + (1 << 31)) % (1 << 32)) - (1 << 31)  # stored in an int32
    ident = [1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30]
    if res == ident:
        return 0
    a, b, c, d = (x / 65536.0 for x in (res[0], res[1], res[3], res[4]))
    s0, s1 = math.hypot(a, c), math.hypot(b, d)
    if s0 == 0.0 or s1 == 0.0:
        return None
    angle = -(math.atan2(b / s1, a / s0) * 180 / math.pi)
    if not math.isfinite(angle):
        return None
    return int(angle) % 360


def _read_mp4(f, size: int) -> ContainerIndex:
    fd = f.fileno()

    def peek(offset: int, n: int) -> bytes:
        if hasattr(os, "pread"):  # one call, not a seek and a read (1,300 keyframes in 3 hours)
            return os.pread(fd, n, offset)
        f.seek(offset)
        return f.read(n)

    boxes = _top_boxes(f, size)
    types = [b[0] for b in boxes]
    if b"moof" in types:
        raise NoIndex("fragmented MP4 (moof)")
    moovs = [b for b in boxes if b[0] == b"moov"]
    if not moovs:
        if b"cmov" in types:
            raise NoIndex("compressed moov (cmov)")
        raise NoIndex("no moov box (truncated download, or a fragmented/streamed file)")
    _check(len(moovs) == 1, "several moov boxes")
    _, _, ps, end = moovs[0]
    _check(end <= size, "moov box cut short by the end of the file (truncated)")
    _check(end - ps <= _MAX_MOOV, "moov box too large")
    for typ, _, mps, mend in boxes:
        if typ == b"meta" and mend <= size and mend - mps < (1 << 20):
            f.seek(mps)
            _check(b"iloc" not in f.read(mend - mps), "HEIF items (meta/iloc)")
    f.seek(ps)
    moov = f.read(end - ps)
    _check(len(moov) == end - ps, "moov box cut short by the end of the file (truncated)")
    return _parse_moov(memoryview(moov), size, peek)


def _parse_moov(buf, file_size: int, peek) -> ContainerIndex:
    n = len(buf)
    kids = list(_children(buf, 0, n))
    if any(t in (b"mvex", b"cmov") for t, _, _ in kids):
        raise NoIndex("fragmented MP4 (mvex)" if any(t == b"mvex" for t, _, _ in kids) else "compressed moov (cmov)")
    mvhd = [(s, e) for t, s, e in kids if t == b"mvhd"]
    movie_ts = 0
    movie_m = [1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30]
    if mvhd:
        v, s, e = _full_box(buf, mvhd[0], 96, "mvhd")
        o = s + (16 if v == 1 else 8)
        movie_ts = _u32(buf, o)
        m_off = o + (12 if v == 1 else 8) + 4 + 2 + 10
        _check(m_off + 36 <= e, "mvhd box too short")
        movie_m = _matrix(buf, m_off)
    # FFmpeg makes a stream of every trak, in order; streams.video[0] is the first whose type is video
    advanced_editlist = True
    chosen = None
    before = []
    traks = []
    for t, s, e in kids:
        if t != b"trak":
            if chosen is None:
                before.append((t, s, e))
            continue
        trak = _Trak(buf, s, e)
        traks.append(trak)
        if chosen is not None:
            continue
        if trak.stts_entries() == 0:
            advanced_editlist = False  # FFmpeg turns its edit-list handling off for this and later traks
        if trak.handler == b"vide":
            chosen = trak
        elif trak.handler not in _MP4_OTHER_HANDLERS or (trak.handler not in (b"soun", b"m1a ")
                                                          and trak.fourcc in _MP4_VIDEO_LIKE):
            raise NoIndex(f"a track with handler {trak.handler!r} and sample entry {trak.fourcc!r} before the video")
    if chosen is None:
        raise NoIndex("no video track")
    for t, s, e in before:
        if t in (b"udta", b"meta") and b"covr" in bytes(buf[s:e]):
            raise NoIndex("cover art before the video track (FFmpeg makes it a video stream)")
    tid = chosen.track_id()
    if any(tid in tr.chapter_ids() for tr in traks):
        raise NoIndex("the video track is a chapter track")
    _check(advanced_editlist, "a track without samples before the video (FFmpeg's simple edit-list mode)")
    # demuxing reads every track's packets in turn and stops at the first that the file does not hold
    for tr in traks:
        if tr is not chosen and _other_track_end(buf, tr) > file_size:
            raise NoIndex("another track's data goes past the end of the file (truncated or damaged)")
    rotation = None
    if chosen.tkhd:
        v, s, e = _full_box(buf, chosen.tkhd, 80, "tkhd")
        m_off = s + (32 if v == 1 else 20) + 8 + 8
        _check(m_off + 36 <= e, "tkhd box too short")
        rotation = _display_rotation(_matrix(buf, m_off), movie_m)
    return _video_track(buf, chosen, movie_ts, rotation, file_size, peek)


def _video_track(buf, trak: _Trak, movie_ts: int, rotation: int | None, file_size: int, peek) -> ContainerIndex:
    codec = trak.fourcc.decode("latin-1")
    _check(trak.fourcc in _MP4_CODECS, f"codec {codec!r} not supported by the index reader")
    _check(trak.n_entries == 1, "several sample descriptions in the video track")
    _check(not _dref_external(buf, trak), "video data in another file (dref alias)")
    _check(trak.mdhd is not None, "video track without mdhd")
    v, s, _ = _full_box(trak.buf, trak.mdhd, 20, "mdhd")
    _check(v <= 1, "unknown mdhd version")
    timescale = _u32(buf, s + (16 if v == 1 else 8))
    _check(0 < timescale < (1 << 31), "bad mdhd timescale")
    st = trak.stbl
    for name in (b"stps",):
        if name in st and _table(buf, st[name], name.decode(), 4)[0]:
            raise NoIndex("partial sync samples (stps)")

    # sample sizes
    const, n, sizes = _sample_sizes(buf, st)
    _check(n <= _MAX_SAMPLES, "too many samples")
    if sizes is None:
        sizes = np.full(n, const, np.int64)
    n = len(sizes)
    _check(n > 0, "the video track has no samples")
    _check(int(sizes.max()) <= 0x3FFFFFFF, "sample size too large")

    # decoding times
    _check(b"stts" in st, "video track without stts")
    ne, o = _table(buf, st[b"stts"], "stts", 8)
    tt = _arr(buf, o, 2 * ne, ">u4").reshape(-1, 2).astype(np.int64)
    counts, deltas = tt[:, 0], tt[:, 1]
    nz = np.nonzero(counts)[0]
    _check(len(nz) > 0 and bool(np.all(counts[:nz[-1] + 1] > 0)), "stts entry with no samples")
    _check(int(deltas.max(initial=0)) < (1 << 31), "negative or huge stts delta")
    _check(int(counts.sum()) == n, "stts sample count differs from stsz")
    dur = np.repeat(deltas[:nz[-1] + 1], counts[:nz[-1] + 1])
    dts = np.zeros(n, np.int64)
    np.cumsum(dur[:-1], out=dts[1:])

    # composition offsets, FFmpeg's dts_shift
    has_ctts = False
    ctts = np.zeros(n, np.int64)
    dts_shift = 0
    if b"ctts" in st:
        ne, o = _table(buf, st[b"ctts"], "ctts", 8)
        if ne:
            cc = _arr(buf, o, 2 * ne, ">i4").reshape(-1, 2).astype(np.int64)
            c_counts, c_off = cc[:, 0], cc[:, 1]
            pos = c_counts > 0
            _check(int(c_counts[pos].sum()) == n, "ctts sample count differs from stsz")
            head = np.arange(ne) + 2 < ne  # FFmpeg ignores the last two entries for the shift and the sanity test
            _check(not np.any(pos & head & (np.abs(c_off) > (1 << 28))), "ctts offsets out of range")
            neg = pos & head & (c_off < 0)
            if np.any(neg):
                dts_shift = int(max(0, -int(np.maximum(c_off[neg], -(1 << 31) + 1).min())))
            ctts = np.repeat(c_off[pos], c_counts[pos])
            has_ctts = True

    # keyframes
    key = np.zeros(n, bool)
    has_stss = b"stss" in st
    if has_stss:
        ne, o = _table(buf, st[b"stss"], "stss", 4)
        _check(ne > 0, "empty sync-sample table (FFmpeg then parses the packets for keyframes)")
        ss = _arr(buf, o, ne, ">u4").astype(np.int64)
        _check(bool(np.all(np.diff(ss) > 0)), "stss not ascending")
        _check(_full_box(buf, st[b"stss"], 4, "stss")[2] - o == 4 * ne, "stss size does not match its entry count")
        ss = ss - (1 if ss[0] > 0 else 0)
        _check(int(ss[-1]) < n, "stss lists samples the track does not have")
        key[ss] = True
    else:
        key[:] = True
    for se in st.get(b"sbgp", []):
        v, ps, pe = _full_box(buf, se, 8, "sbgp")
        if bytes(buf[ps:ps + 4]) != b"rap ":
            continue
        ps += 4 + (4 if v == 1 else 0)
        ne = _u32(buf, ps)
        _check(ne * 8 <= pe - ps - 4, "sbgp entry count exceeds the box")
        g = _arr(buf, ps + 4, 2 * ne, ">u4").reshape(-1, 2).astype(np.int64)
        ends = np.minimum(np.cumsum(g[:, 0]), n)
        starts = np.concatenate([[0], ends[:-1]])
        marks = np.zeros(n + 1, np.int64)
        np.add.at(marks, starts[g[:, 1] > 0], 1)
        np.add.at(marks, ends[g[:, 1] > 0], -1)
        key |= np.cumsum(marks[:-1]) > 0

    # sample offsets: chunks and samples per chunk, for the end of the video data
    chunk_off, per_chunk = _chunks(buf, st, n)
    nc = len(chunk_off)
    csum = np.zeros(n + 1, np.int64)
    np.cumsum(sizes, out=csum[1:])
    chunk_first = np.zeros(nc, np.int64)
    np.cumsum(per_chunk[:-1], out=chunk_first[1:])
    data_end = int((chunk_off + csum[chunk_first + per_chunk] - csum[chunk_first]).max())

    def offsets_of(samples: np.ndarray) -> np.ndarray:
        chunk = np.searchsorted(chunk_first, samples, side="right") - 1
        return chunk_off[chunk] + csum[samples] - csum[chunk_first[chunk]]

    if trak.fourcc in (b"avc1", b"avc3"):
        # FFmpeg's H.264 parser, not the sync-sample table, flags the keyframes: IDR pictures and pictures with
        # a recovery-point SEI. The samples the table lists are checked; the others are taken as not keyframes.
        # (samples past the end of a truncated file are not read: the caller rejects the file by data_end)
        length_size = _avcc_length_size(buf, trak)
        if has_stss:
            listed = np.nonzero(key)[0]
            at = offsets_of(listed)
            inside = at + sizes[listed] <= file_size
            for i, o in zip(listed[inside].tolist(), at[inside].tolist(), strict=True):
                if _h264_parser_key(peek, o, int(sizes[i]), length_size) is not True:
                    raise NoIndex(f"sync sample {i + 1} is not an H.264 IDR or recovery point (FFmpeg's parser "
                                  "flags keyframes from the bitstream)")
        else:
            _check(n <= 3000, "no sync-sample table in a long H.264 track (FFmpeg's parser decides every keyframe)")
            offsets = offsets_of(np.arange(n))
            for i in np.nonzero(offsets + sizes <= file_size)[0].tolist():
                got = _h264_parser_key(peek, int(offsets[i]), int(sizes[i]), length_size)
                _check(got is not None, f"cannot tell whether H.264 sample {i + 1} is a keyframe")
                key[i] = got

    # the edit list, as FFmpeg applies it
    edits = None
    if trak.edts:
        elst = _child(buf, *trak.edts, b"elst")
        if elst:
            v, ps, pe = _full_box(buf, elst, 4, "elst")
            ne = _u32(buf, ps)
            size = 20 if v == 1 else 12
            _check(ne * size == pe - ps - 4, "elst size does not match its entry count")
            if ne:
                if v == 1:
                    raw = np.frombuffer(buf, ">i8,>i8,>i4", count=ne, offset=ps + 4)
                else:
                    raw = np.frombuffer(buf, ">u4,>i4,>i4", count=ne, offset=ps + 4)
                edits = [(int(d), int(t)) for d, t, _ in raw.tolist()]
    pts, kept = _mov_timeline(dts, ctts, has_ctts, key, dts_shift, edits, movie_ts, timescale)
    kept &= sizes > 0  # empty packets are skipped by _scan
    _check(bool(kept.any()), "no video packet would be read")
    pts_out, key_out = _finish(pts[kept], key[kept])
    return ContainerIndex(
        source="mp4", time_base=Fraction(1, timescale), pts=pts_out, keyframes=key_out, declared_frames=n,
        data_end=data_end, rotation=rotation, codec=codec,
    )
