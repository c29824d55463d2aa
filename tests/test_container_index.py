"""The container-index reader gives the arrays that demuxing gives (info._scan), or says NoIndex."""

from __future__ import annotations

import ast
import random
import shutil
import struct
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import longlens.video.container_index as container_index
from longlens.errors import VideoError
from longlens.video.container_index import ContainerIndex, NoIndex, read_index
from longlens.video.info import _scan
from media import write_video

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
needs_ffmpeg = pytest.mark.skipif(not Path(FFMPEG).exists(), reason="needs the ffmpeg command")


def ffmpeg(*args: str | Path) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)


def lavfi_video(path: Path, *extra: str, seconds: float = 4, size: str = "160x96") -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size={size}:rate=30", "-t", str(seconds), "-pix_fmt", "yuv420p",
           "-threads", "1", *extra, path)
    return path


def encoders() -> str:
    return subprocess.run([FFMPEG, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout


def demuxed(path: Path) -> dict:
    """What info._scan computes (pts, keyframes, time base, rotation of the first frame), without its checks
    for truncation: _scan takes the packets FFmpeg discards at an edit for missing ones."""
    container = av.open(str(path), metadata_errors="ignore")
    try:
        stream = container.streams.video[0]
        pts_list, key_pts = [], []
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                continue
            pts_list.append(ts)
            if packet.is_keyframe:
                key_pts.append(ts)
        if not pts_list:
            raise VideoError(path, "no packets")
        pts = np.unique(np.asarray(pts_list, dtype=np.int64))
        key_idx = np.searchsorted(pts, np.unique(np.asarray(key_pts, dtype=np.int64)))
        if len(key_idx) == 0 or key_idx[0] != 0:
            key_idx = np.concatenate([[0], key_idx]).astype(np.int64)
        container.seek(int(pts[0]), stream=stream, backward=True)
        rotation = int(next(container.decode(stream)).rotation or 0) % 360
        tb = Fraction(stream.time_base)
        return {"time_base": [tb.numerator, tb.denominator], "pts": pts, "keyframes": key_idx.astype(np.int64),
                "rotation": rotation}
    except (av.error.FFmpegError, StopIteration) as exc:
        raise VideoError(path, f"unreadable ({exc})") from exc
    finally:
        container.close()


def same_as_demux(path: Path) -> ContainerIndex:
    """read_index equals the demuxed arrays (pts, keyframes, time base, rotation); returns the index."""
    ci = read_index(path)
    ref = demuxed(Path(path))
    assert ci.time_base == Fraction(*ref["time_base"])
    assert ci.pts.dtype == np.int64 and ci.keyframes.dtype == np.int64
    np.testing.assert_array_equal(ci.pts, ref["pts"])
    np.testing.assert_array_equal(ci.keyframes, ref["keyframes"])
    if ci.rotation is not None:
        assert ci.rotation == ref["rotation"]
    assert ci.declared_frames >= len(ci.pts)
    assert 0 < ci.data_end <= Path(path).stat().st_size
    return ci


# ---------------------------------------------------------------------------------------------- MP4 boxes


def boxes(buf: bytes, start: int = 0, end: int | None = None):
    """(type, box start, box size) of the boxes in buf[start:end]."""
    end = len(buf) if end is None else end
    pos = start
    while pos + 8 <= end:
        n, t = struct.unpack_from(">I4s", buf, pos)
        if n == 1:
            n = struct.unpack_from(">Q", buf, pos + 8)[0]
        elif n == 0:
            n = end - pos
        yield t, pos, n
        pos += n


def find(buf: bytes, path: list[bytes], start: int = 0, end: int | None = None):
    """(start, size) of the boxes along `path`, the first match at each level."""
    chain = []
    for name in path:
        hit = next(((p, n) for t, p, n in boxes(buf, start, end) if t == name), None)
        if hit is None:
            return None
        chain.append(hit)
        start, end = hit[0] + 8, hit[0] + hit[1]
    return chain


def video_trak(buf: bytes):
    moov = find(buf, [b"moov"])[0]
    for t, p, n in boxes(buf, moov[0] + 8, moov[0] + moov[1]):
        if t == b"trak":
            hdlr = find(buf, [b"mdia", b"hdlr"], p + 8, p + n)
            if hdlr and buf[hdlr[-1][0] + 16:hdlr[-1][0] + 20] == b"vide":
                return moov, (p, n)
    raise AssertionError("no video trak")


def stbl_box(buf: bytes, name: bytes) -> tuple[int, int]:
    _, (p, n) = video_trak(buf)
    return find(buf, [b"mdia", b"minf", b"stbl", name], p + 8, p + n)[-1]


def with_edits(data: bytes, edits: list[tuple[int, int]], version: int = 0) -> bytes:
    """The file with the video track's edit list replaced by `edits` ((duration, media time) each); the moov
    must be the last box, so that no chunk offset moves."""
    buf = bytearray(data)
    moov, trak = video_trak(buf)
    assert moov[0] + moov[1] == len(buf)
    fmt = ">Iii" if version == 0 else ">Qqi"
    body = b"".join(struct.pack(fmt, d, t, 0x10000) for d, t in edits)
    elst = struct.pack(">I4sB3sI", 16 + len(body), b"elst", version, b"\0\0\0", len(edits)) + body
    edts = struct.pack(">I4s", 8 + len(elst), b"edts") + elst
    old = find(buf, [b"edts"], trak[0] + 8, trak[0] + trak[1])
    if old:
        o, n = old[0]
    else:
        o, n = sum(find(buf, [b"tkhd"], trak[0] + 8, trak[0] + trak[1])[0]), 0
    buf[o:o + n] = edts
    delta = len(edts) - n
    struct.pack_into(">I", buf, trak[0], trak[1] + delta)
    struct.pack_into(">I", buf, moov[0], moov[1] + delta)
    return bytes(buf)


# ------------------------------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """A folder of small test files made once for the module."""
    if not Path(FFMPEG).exists():
        pytest.skip("needs the ffmpeg command")
    d = tmp_path_factory.mktemp("container_index")
    lavfi_video(d / "b.mp4", "-c:v", "libx264", "-preset", "fast", "-bf", "2", "-g", "25")
    lavfi_video(d / "b.mov", "-c:v", "libx264", "-preset", "fast", "-bf", "2", "-g", "25")
    ffmpeg("-f", "lavfi", "-i", "sine=d=4", "-f", "lavfi", "-i", "testsrc=size=160x96:rate=30", "-t", "4",
           "-map", "0:a", "-map", "1:v", "-c:v", "libx264", "-preset", "fast", "-g", "30", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-threads", "1", d / "audio_first.mp4")
    return d


@needs_ffmpeg
@pytest.mark.parametrize("name", ["b.mp4", "b.mov"])
def test_h264_with_b_frames(media, name):
    ci = same_as_demux(media / name)
    assert (ci.source, ci.codec, len(ci.pts), len(ci.keyframes)) == ("mp4", "avc1", 120, 5)
    assert ci.time_base == Fraction(1, 15360) and ci.pts[0] == 0 and ci.rotation == 0


def test_h264_without_b_frames_written_by_pyav(tmp_path):
    ci = same_as_demux(write_video(tmp_path / "plain.mp4", n=45))
    assert len(ci.pts) == 45 and ci.declared_frames == 45


@needs_ffmpeg
def test_hevc(tmp_path):
    if "libx265" not in encoders():
        pytest.skip("ffmpeg has no libx265")
    for tag in ("hev1", "hvc1"):
        path = lavfi_video(tmp_path / f"{tag}.mp4", "-c:v", "libx265", "-g", "25", "-tag:v", tag,
                       "-x265-params", "log-level=none:pools=1:frame-threads=1")
        assert same_as_demux(path).codec == tag


@needs_ffmpeg
@pytest.mark.parametrize("params", ["open-gop=1:keyint=25:scenecut=0", "intra-refresh=1:keyint=25"])
def test_h264_recovery_point_keyframes(tmp_path, params):
    """Keyframes that are not IDR pictures but follow a recovery-point SEI (open GOP, intra refresh)."""
    path = lavfi_video(tmp_path / "rp.mp4", "-c:v", "libx264", "-preset", "fast", "-x264-params", params)
    assert len(same_as_demux(path).keyframes) == 5


@needs_ffmpeg
def test_mpeg4_part2(tmp_path):
    assert same_as_demux(lavfi_video(tmp_path / "m4.mp4", "-c:v", "mpeg4", "-bf", "2", "-g", "12")).codec == "mp4v"


@needs_ffmpeg
@pytest.mark.parametrize("ext", ["mp4", "mov"])
def test_edit_list_cut_inside_a_gop(media, tmp_path, ext):
    """-ss with -c copy keeps the GOP before the cut and an edit that starts after its keyframe: FFmpeg reads
    the whole GOP but marks the frames shown before the edit as discarded."""
    out = tmp_path / f"cut.{ext}"
    ffmpeg("-ss", "1.3", "-i", media / f"b.{ext}", "-c", "copy", out)
    ci = same_as_demux(out)
    assert ci.declared_frames > len(ci.pts)  # some frames are decoded only to be dropped
    assert ci.pts[0] == 0


@needs_ffmpeg
@pytest.mark.parametrize("option", [["-itsoffset", "0.5"], ["-output_ts_offset", "2"]])
def test_empty_edit_delays_the_video(media, tmp_path, option):
    out = tmp_path / "late.mp4"
    if option[0] == "-itsoffset":
        ffmpeg(*option, "-i", media / "b.mp4", "-c", "copy", out)
    else:
        ffmpeg("-i", media / "b.mp4", "-c", "copy", *option, out)
    ci = same_as_demux(out)
    assert ci.pts[0] > 0  # the empty edit's length


@needs_ffmpeg
def test_negative_composition_offsets(media, tmp_path):
    """ctts version 1 with negative offsets: FFmpeg's dts_shift."""
    out = tmp_path / "neg.mp4"
    ffmpeg("-i", media / "b.mp4", "-c", "copy", "-movflags", "negative_cts_offsets", out)
    buf = out.read_bytes()
    assert buf[stbl_box(buf, b"ctts")[0] + 8] == 1
    same_as_demux(out)


def write_vfr(path: Path, bframes: bool) -> Path:
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
    stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
    stream.options = {"preset": "fast", "bf": "2" if bframes else "0", "g": "20"}
    rng = np.random.default_rng(1)
    t = 0
    for _ in range(60):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8), format="rgb24")
        frame.pts, frame.time_base = t, Fraction(1, 1000)
        t += int(rng.choice([7, 20, 33, 34, 50, 100]))
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.mark.parametrize("bframes", [True, False])
def test_variable_frame_rate(tmp_path, bframes):
    ci = same_as_demux(write_vfr(tmp_path / "vfr.mp4", bframes))
    assert len(set(np.diff(ci.pts).tolist())) > 3


@needs_ffmpeg
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation(media, tmp_path, degrees):
    out = tmp_path / f"r{degrees}.mp4"
    try:
        ffmpeg("-display_rotation", str(degrees), "-i", media / "b.mp4", "-c", "copy", out)
    except subprocess.CalledProcessError:  # ffmpeg before 6: the rotate tag
        ffmpeg("-i", media / "b.mp4", "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", out)
    ci = same_as_demux(out)
    assert ci.rotation == demuxed(out)["rotation"] != 0


@needs_ffmpeg
def test_moov_first_and_moov_last(media, tmp_path):
    out = tmp_path / "fast.mp4"
    ffmpeg("-i", media / "b.mp4", "-c", "copy", "-movflags", "+faststart", out)
    buf = out.read_bytes()
    assert find(buf, [b"moov"])[0][0] < find(buf, [b"mdat"])[0][0]
    np.testing.assert_array_equal(same_as_demux(out).pts, read_index(media / "b.mp4").pts)


@needs_ffmpeg
def test_64_bit_and_open_ended_box_sizes(media, tmp_path):
    # moov last: ffmpeg leaves 'free' (8 bytes) before 'mdat', room for a 64-bit mdat header at the same offsets
    buf = bytearray((media / "b.mp4").read_bytes())
    (free_at, _), (mdat_at, mdat_size) = find(buf, [b"free"])[0], find(buf, [b"mdat"])[0]
    assert mdat_at == free_at + 8
    buf[free_at:mdat_at + 8] = struct.pack(">I4sQ", 1, b"mdat", mdat_size + 8)
    (tmp_path / "large.mp4").write_bytes(buf)
    same_as_demux(tmp_path / "large.mp4")
    # moov first: the last box (mdat) with size 0 runs to the end of the file
    ffmpeg("-i", media / "b.mp4", "-c", "copy", "-movflags", "+faststart", tmp_path / "fast.mp4")
    buf = bytearray((tmp_path / "fast.mp4").read_bytes())
    mdat_at, mdat_size = find(buf, [b"mdat"])[0]
    assert mdat_at + mdat_size == len(buf)
    struct.pack_into(">I", buf, mdat_at, 0)
    (tmp_path / "open.mp4").write_bytes(buf)
    same_as_demux(tmp_path / "open.mp4")


@needs_ffmpeg
def test_concatenated_segments(media, tmp_path):
    (tmp_path / "list.txt").write_text("".join(f"file '{media / 'b.mp4'}'\n" for _ in range(3)))
    out = tmp_path / "cat.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-i", tmp_path / "list.txt", "-c", "copy", out)
    ci = same_as_demux(out)
    assert len(ci.pts) == 360 and len(ci.keyframes) == 15


@needs_ffmpeg
def test_audio_track_before_the_video(media):
    buf = (media / "audio_first.mp4").read_bytes()
    first = next(p for t, p, _ in boxes(buf, find(buf, [b"moov"])[0][0] + 8) if t == b"trak")
    assert find(buf, [b"mdia", b"hdlr"], first + 8)[-1] and buf.find(b"soun", first) < buf.find(b"vide", first)
    same_as_demux(media / "audio_first.mp4")


@needs_ffmpeg
def test_fragmented_mp4_has_no_index(media, tmp_path):
    out = tmp_path / "frag.mp4"
    ffmpeg("-i", media / "b.mp4", "-c", "copy", "-movflags", "frag_keyframe+empty_moov", out)
    with pytest.raises(NoIndex, match="fragmented"):
        read_index(out)


@needs_ffmpeg
def test_truncated_files(media, tmp_path):
    # moov at the end: lost with the end of the file
    data = (media / "b.mp4").read_bytes()
    (tmp_path / "cut_end.mp4").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(NoIndex, match="moov"):
        read_index(tmp_path / "cut_end.mp4")
    # moov first: the index is whole, the data is not; data_end says so
    ffmpeg("-i", media / "b.mp4", "-c", "copy", "-movflags", "+faststart", tmp_path / "fast.mp4")
    data = (tmp_path / "fast.mp4").read_bytes()
    short = tmp_path / "cut_data.mp4"
    short.write_bytes(data[: len(data) * 2 // 3])
    ci = read_index(short)
    assert ci.data_end == len(data) > short.stat().st_size
    with pytest.raises(VideoError, match="truncated"):
        _scan(short)
    # the audio's data lost (the video's whole): demuxing stops at the first missing packet of any track
    buf = bytearray((media / "audio_first.mp4").read_bytes())
    moov = find(buf, [b"moov"])[0]
    trak = next((p, n) for t, p, n in boxes(buf, moov[0] + 8, moov[0] + moov[1]) if t == b"trak")
    stco = find(buf, [b"mdia", b"minf", b"stbl", b"stco"], trak[0] + 8, sum(trak))[-1][0]
    struct.pack_into(">I", buf, stco + 16, len(buf) + 1000)
    (tmp_path / "audio_gone.mp4").write_bytes(buf)
    with pytest.raises(NoIndex, match="another track"):
        read_index(tmp_path / "audio_gone.mp4")


@needs_ffmpeg
def test_crafted_edit_lists(media, tmp_path):
    """Single edits anywhere (optionally after an empty one) match demuxing; several edits are refused."""
    data = (media / "b.mp4").read_bytes()
    last = int(read_index(media / "b.mp4").pts[-1])
    rng = random.Random(5)
    out = tmp_path / "edit.mp4"
    matched = 0
    for i in range(30):
        edits = [(rng.randrange(0, 2000), -1)] if i % 3 == 0 else []
        start = rng.choice([0, 512, 1024, 1536, rng.randrange(0, last), rng.randrange(0, 3000)])
        length = rng.choice([last + 2048 - start, rng.randrange(1, last), last - start, last + 512 - start])
        edits.append((max(1, length * 1000 // 15360 + rng.choice([-1, 0, 1])), start))  # movie timescale 1000
        out.write_bytes(with_edits(data, edits, version=i % 2))
        try:
            ci = read_index(out)
        except NoIndex:
            with pytest.raises(VideoError):
                demuxed(out)
            continue
        ref = demuxed(out)
        np.testing.assert_array_equal(ci.pts, ref["pts"], err_msg=str(edits))
        np.testing.assert_array_equal(ci.keyframes, ref["keyframes"], err_msg=str(edits))
        matched += 1
    assert matched >= 25
    out.write_bytes(with_edits(data, [(1000, 0), (1000, 15360)]))
    with pytest.raises(NoIndex, match="several edits"):
        read_index(out)


@needs_ffmpeg
def test_h264_keyframes_come_from_the_bitstream(media, tmp_path):
    """FFmpeg's H.264 parser flags keyframes (IDR pictures), whatever stss says: an stss that lists a non-IDR
    sample is refused. For HEVC the demuxer takes stss as it is, and so does the reader."""
    buf = bytearray((media / "b.mp4").read_bytes())
    at, _ = stbl_box(buf, b"stss")
    struct.pack_into(">I", buf, at + 16 + 4, struct.unpack_from(">I", buf, at + 16 + 4)[0] + 3)
    (tmp_path / "stss.mp4").write_bytes(buf)
    keys = demuxed(tmp_path / "stss.mp4")["keyframes"]
    np.testing.assert_array_equal(keys, demuxed(media / "b.mp4")["keyframes"])  # stss ignored by FFmpeg
    with pytest.raises(NoIndex, match="IDR"):
        read_index(tmp_path / "stss.mp4")
    if "libx265" in encoders():
        hevc = lavfi_video(tmp_path / "h.mp4", "-c:v", "libx265", "-g", "25", "-x265-params",
                       "log-level=none:pools=1:frame-threads=1")
        buf = bytearray(hevc.read_bytes())
        at, _ = stbl_box(buf, b"stss")
        struct.pack_into(">I", buf, at + 16 + 4, struct.unpack_from(">I", buf, at + 16 + 4)[0] + 3)
        (tmp_path / "h_stss.mp4").write_bytes(buf)
        same_as_demux(tmp_path / "h_stss.mp4")


@needs_ffmpeg
@pytest.mark.parametrize("name", ["b.mp4", "audio_first.mp4"])
def test_corrupted_moov_gives_no_index_or_the_demuxed_arrays(media, tmp_path, name):
    data = (media / name).read_bytes()
    moov_at, moov_size = find(data, [b"moov"])[0]
    rng = random.Random(7)
    out = tmp_path / "bad.mp4"
    outcomes = {"same": 0, "no index": 0, "unreadable": 0, "truncated": 0}
    for _ in range(120):
        buf = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 4, 16])):
            at = rng.randrange(moov_at, moov_at + moov_size)
            buf[at] = rng.randrange(256) if rng.random() < 0.5 else buf[at] ^ (1 << rng.randrange(8))
        out.write_bytes(buf)
        t = time.perf_counter()
        try:
            ci = read_index(out)
        except NoIndex:
            outcomes["no index"] += 1
            continue
        finally:
            assert time.perf_counter() - t < 2
        if ci.data_end > len(buf):
            outcomes["truncated"] += 1  # the caller reports the file as damaged
            continue
        try:
            ref = demuxed(out)
        except VideoError:
            outcomes["unreadable"] += 1  # FFmpeg cannot open or decode it: nothing to compare with
            continue
        assert ci.time_base == Fraction(*ref["time_base"])
        np.testing.assert_array_equal(ci.pts, ref["pts"])
        np.testing.assert_array_equal(ci.keyframes, ref["keyframes"])
        outcomes["same"] += 1
    assert outcomes["same"] >= 10 and outcomes["no index"] >= 30, outcomes


# -------------------------------------------------------------------------------------------- Matroska


@needs_ffmpeg
def test_matroska_and_webm_are_left_to_demuxing(media, tmp_path):
    ffmpeg("-i", media / "b.mp4", "-c", "copy", tmp_path / "b.mkv")
    paths = [tmp_path / "b.mkv", write_video(tmp_path / "pyav.mkv", n=30)]
    if "libvpx-vp9" in encoders():
        paths.append(lavfi_video(tmp_path / "v.webm", "-c:v", "libvpx-vp9", "-g", "30", "-deadline", "realtime",
                                 "-cpu-used", "8", seconds=1))
    for path in paths:
        with pytest.raises(NoIndex, match="Matroska/WebM: no per-frame index"):
            read_index(path)


# ---------------------------------------------------------------------------------------------- others


def test_not_a_video(tmp_path):
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    with pytest.raises(NoIndex):
        read_index(tmp_path / "noise.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(NoIndex):
        read_index(tmp_path / "empty.mp4")


def test_imports_only_stdlib_numpy_and_errors():
    package = container_index.__name__
    names = set()
    for path in sorted(Path(container_index.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if module == package or module.startswith(package + "."):
                    continue  # the package's own modules
                names.add(module.split(".")[0] if module != "longlens.errors" else "longlens.errors")
    assert names <= {"__future__", "math", "os", "struct", "dataclasses", "fractions", "numpy",
                     "longlens.errors"}, names
