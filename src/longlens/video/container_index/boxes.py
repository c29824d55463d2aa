"""MP4 / MOV boxes: the top level walked with seeks, child boxes in the moov bytes, one trak's boxes, and the
sample-size and chunk tables read into numpy arrays."""

from __future__ import annotations

import struct

import numpy as np

from longlens.video.container_index import NoIndex, _check

_MAX_TOP_BOXES = 1 << 16

_MP4_TOP_TYPES = {
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"udta", b"uuid", b"junk", b"styp", b"sidx",
    b"pdin", b"meta", b"moof", b"PICT", b"prfl",
}
# the sample entries whose packets FFmpeg takes as they are (no parser that could split them; H.264's parser
# only decides which packets are keyframes, and that is reproduced)
_MP4_CODECS = {b"avc1", b"avc3", b"hvc1", b"hev1", b"mp4v"}
# sample entries that make FFmpeg's stream a video stream even under another handler
_MP4_VIDEO_LIKE = _MP4_CODECS | {
    b"av01", b"vp09", b"vp08", b"jpeg", b"mjpa", b"mjpb", b"apch", b"apcn", b"apcs", b"apco", b"ap4h", b"ap4x",
    b"dvh1", b"dvhe", b"dvav", b"dva1", b"encv", b"s263", b"h263", b"mp2v", b"xvid", b"SVQ3", b"png ", b"raw ",
    b"vvc1", b"vvi1", b"avc2", b"avc4", b"hvc2", b"hev2",
}
# handlers of tracks that are not video streams in FFmpeg (the sample entry permitting)
_MP4_OTHER_HANDLERS = {b"soun", b"m1a ", b"subp", b"clcp", b"text", b"sbtl", b"subt", b"tmcd", b"meta", b"hint",
                       b"data", b"mdir", b"odsm", b"sdsm", b"tx3g", b"mdta", b"camm", b"gpmd"}


def _u32(b, o: int) -> int:
    return int.from_bytes(b[o:o + 4], "big")


def _top_boxes(f, size: int) -> list[tuple[bytes, int, int, int]]:
    """The top-level boxes: (type, box start, payload start, box end); the last may end past the file."""
    out = []
    pos = 0
    while pos + 8 <= size:
        _check(len(out) < _MAX_TOP_BOXES, "too many top-level boxes")
        f.seek(pos)
        h = f.read(16)
        n = _u32(h, 0)
        typ = bytes(h[4:8])
        hdr = 8
        if n == 1:
            _check(len(h) >= 16, "truncated box header")
            n = int.from_bytes(h[8:16], "big")
            hdr = 16
        elif n == 0:
            n = size - pos
        if n < hdr:
            # FFmpeg stops reading the top level at a bad box: past the moov that is harmless trailing junk
            _check(any(b[0] == b"moov" for b in out), f"bad size of top-level box {typ!r}")
            break
        out.append((typ, pos, pos + hdr, pos + n))
        pos += n
    return out


def _children(buf, start: int, end: int):
    """Child boxes of buf[start:end]: (type, payload start, payload end). Under 8 bytes left are ignored."""
    pos = start
    while end - pos >= 8:
        n = _u32(buf, pos)
        typ = bytes(buf[pos + 4:pos + 8])
        hdr = 8
        if n == 1:
            _check(end - pos >= 16, f"truncated header of box {typ!r}")
            n = int.from_bytes(buf[pos + 8:pos + 16], "big")
            hdr = 16
        elif n == 0:
            n = end - pos
        _check(hdr <= n <= end - pos, f"box {typ!r} has a bad size")
        yield typ, pos + hdr, pos + n
        pos += n


def _child(buf, start: int, end: int, typ: bytes):
    """The one child box of that type (payload start, end), None if absent; two of them raise NoIndex."""
    found = [(s, e) for t, s, e in _children(buf, start, end) if t == typ]
    _check(len(found) <= 1, f"duplicated {typ.decode('latin-1')} box")
    return found[0] if found else None


def _full_box(buf, se, need: int, name: str) -> tuple[int, int, int]:
    """(version, payload start after version/flags, payload end) of a full box with at least `need` bytes."""
    s, e = se
    _check(e - s >= 4 + need, f"{name} box too short")
    return buf[s], s + 4, e


def _table(buf, se, name: str, entry: int, header: int = 0):
    """(entry count, start of the entries) of a table box with `header` bytes before the count."""
    _, s, e = _full_box(buf, se, header + 4, name)
    n = _u32(buf, s + header)
    start = s + header + 4
    _check(n * entry <= e - start, f"{name} entry count exceeds the box")
    return n, start


def _arr(buf, start: int, count: int, dtype: str) -> np.ndarray:
    return np.frombuffer(buf, dtype=dtype, count=count, offset=start)


def _matrix(buf, o: int) -> list[int]:
    return list(struct.unpack_from(">9i", buf, o))


class _Trak:
    """What one trak box says, parsed on demand from the moov bytes."""

    def __init__(self, buf, s: int, e: int):
        self.buf = buf
        self.tkhd = _child(buf, s, e, b"tkhd")
        self.edts = _child(buf, s, e, b"edts")
        self.tref = _child(buf, s, e, b"tref")
        mdia = _child(buf, s, e, b"mdia")
        _check(mdia is not None, "trak without mdia")
        self.mdhd = _child(buf, *mdia, b"mdhd")
        hdlr = _child(buf, *mdia, b"hdlr")
        self.handler = bytes(buf[hdlr[0] + 8:hdlr[0] + 12]) if hdlr and hdlr[1] - hdlr[0] >= 12 else b""
        minf = _child(buf, *mdia, b"minf")
        stbl = _child(buf, *minf, b"stbl") if minf else None
        self.dinf = _child(buf, *minf, b"dinf") if minf else None
        self.stbl = {}
        if stbl:
            for t, cs, ce in _children(buf, *stbl):
                _check(t not in self.stbl or t in (b"sgpd", b"sbgp"), f"duplicated {t.decode('latin-1')} box")
                if t == b"sbgp":
                    self.stbl.setdefault(t, []).append((cs, ce))
                else:
                    self.stbl[t] = (cs, ce)
        self.fourcc = b""
        self.n_entries = 0
        self.entry = None  # the first sample entry box: (start, end)
        stsd = self.stbl.get(b"stsd")
        if stsd:
            _, ps, pe = _full_box(buf, stsd, 4, "stsd")
            self.n_entries = _u32(buf, ps)
            if self.n_entries and pe - ps >= 12:
                self.fourcc = bytes(buf[ps + 8:ps + 12])
                n = _u32(buf, ps + 4)
                if 8 <= n <= pe - ps - 4:
                    self.entry = (ps + 4, ps + 4 + n)

    def stts_entries(self) -> int:
        se = self.stbl.get(b"stts")
        if se is None:
            return 0
        return _table(self.buf, se, "stts", 8)[0]

    def track_id(self) -> int:
        if not self.tkhd:
            return 0
        v, s, _ = _full_box(self.buf, self.tkhd, 20, "tkhd")
        return _u32(self.buf, s + (16 if v == 1 else 8))

    def chapter_ids(self) -> list[int]:
        if not self.tref:
            return []
        out = []
        for t, s, e in _children(self.buf, *self.tref):
            if t == b"chap":
                out += [_u32(self.buf, o) for o in range(s, e - 3, 4)]
        return out


def _dref_external(buf, trak: _Trak) -> bool:
    """Whether the track's data may be in another file (an alias data reference); NoIndex if dref is broken."""
    if not trak.dinf:
        return False
    dref = _child(buf, *trak.dinf, b"dref")
    if not dref:
        return False
    _, s, e = _full_box(buf, dref, 4, "dref")
    count = _u32(buf, s)
    _check(count <= (e - s - 4) // 12, "bad dref entry count")
    entries = list(_children(buf, s + 4, e))
    _check(len(entries) >= count and all(ce - cs >= 4 for _, cs, ce in entries[:count]), "bad dref entries")
    return any(t == b"alis" and not (buf[cs + 3] & 1) for t, cs, _ in entries[:count])


def _sample_sizes(buf, st: dict) -> tuple[int, int, np.ndarray | None]:
    """(constant size or 0, sample count, sizes or None when constant) from stsz or stz2."""
    if b"stsz" in st:
        _, ps, pe = _full_box(buf, st[b"stsz"], 8, "stsz")
        const = _u32(buf, ps)
        count = _u32(buf, ps + 4)
        if const:
            return const, count, None
        _check(count * 4 <= pe - ps - 8, "stsz entry count exceeds the box")
        return 0, count, _arr(buf, ps + 8, count, ">u4").astype(np.int64)
    if b"stz2" in st:
        _, ps, pe = _full_box(buf, st[b"stz2"], 8, "stz2")
        field = buf[ps + 3]
        count = _u32(buf, ps + 4)
        _check(field in (4, 8, 16), "bad stz2 field size")
        _check((count * field + 7) // 8 <= pe - ps - 8, "stz2 entry count exceeds the box")
        if field == 4:
            raw = _arr(buf, ps + 8, (count + 1) // 2, "u1")
            return 0, count, np.stack([raw >> 4, raw & 15], axis=1).reshape(-1)[:count].astype(np.int64)
        return 0, count, _arr(buf, ps + 8, count, ">u1" if field == 8 else ">u2").astype(np.int64)
    raise NoIndex("track without sample sizes (stsz)")


def _chunks(buf, st: dict, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(chunk offsets, samples per chunk) from stco/co64 and stsc, checked against the sample count."""
    if b"stco" in st:
        nc, o = _table(buf, st[b"stco"], "stco", 4)
        chunk_off = _arr(buf, o, nc, ">u4").astype(np.int64)
    elif b"co64" in st:
        nc, o = _table(buf, st[b"co64"], "co64", 8)
        chunk_off = _arr(buf, o, nc, ">u8")
        _check(bool(np.all(chunk_off < (1 << 62))), "bad co64 offset")
        chunk_off = chunk_off.astype(np.int64)
    else:
        raise NoIndex("track without chunk offsets (stco)")
    _check(b"stsc" in st, "track without stsc")
    ne, o = _table(buf, st[b"stsc"], "stsc", 12)
    sc = _arr(buf, o, 3 * ne, ">u4").reshape(-1, 3).astype(np.int64)
    _check(ne > 0 and nc > 0, "empty stsc or stco")
    first, per, ids = sc[:, 0], sc[:, 1], sc[:, 2]
    _check(first[0] == 1 and bool(np.all(np.diff(first) > 0)) and int(first[-1]) <= nc, "inconsistent stsc")
    _check(bool(np.all(per >= 1)) and bool(np.all(ids == 1)) and int(per.max()) <= count, "inconsistent stsc")
    runs = np.diff(np.append(first, nc + 1))
    _check(int((per * runs).sum()) == count, "stsc/stco sample count differs from stsz")
    return chunk_off, np.repeat(per, runs)


def _other_track_end(buf, trak: _Trak) -> int:
    """Where the data of a track that is not the video ends (0 for a track without samples)."""
    st = trak.stbl
    if not any(k in st for k in (b"stsz", b"stz2")):
        return 0
    const, count, sizes = _sample_sizes(buf, st)
    if count == 0:
        return 0
    chunk_off, per_chunk = _chunks(buf, st, count)
    if sizes is None:
        return int((chunk_off + per_chunk * const).max())
    starts = np.zeros(len(per_chunk), np.int64)
    np.cumsum(per_chunk[:-1], out=starts[1:])
    return int((chunk_off + np.add.reduceat(sizes, starts)).max())
