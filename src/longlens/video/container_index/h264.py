"""H.264 keyframes as FFmpeg's H.264 parser flags them: IDR pictures, and pictures after a recovery-point SEI
(read from the first NAL units of a sample)."""

from __future__ import annotations

from longlens.video.container_index import _check
from longlens.video.container_index.boxes import _children, _Trak


def _avcc_length_size(buf, trak: _Trak) -> int:
    """The NAL length size from the sample entry's avcC, as FFmpeg's H.264 parser reads it."""
    _check(trak.entry is not None, "bad H.264 sample entry")
    s, e = trak.entry
    avcc = [(cs, ce) for t, cs, ce in _children(buf, s + 86, e) if t == b"avcC"] if e - s >= 86 else []
    _check(len(avcc) == 1, "H.264 sample entry without one avcC")
    cs, ce = avcc[0]
    _check(ce - cs >= 7 and buf[cs] == 1, "avcC not in the ISO format")
    # FFmpeg's parser keeps no NAL length size when the parameter sets do not fit (and then finds no keyframe)
    p = cs + 6
    for count_at in (None, 1):
        if count_at is None:
            count = buf[cs + 5] & 0x1F
        else:
            _check(p < ce, "avcC without a picture parameter set count")
            count = buf[p]
            p += 1
        for _ in range(count):
            _check(p + 2 <= ce, "avcC parameter set cut short")
            p += 2 + int.from_bytes(buf[p:p + 2], "big")
            _check(p <= ce, "avcC parameter set cut short")
    return (buf[cs + 4] & 3) + 1


def _rbsp(nal: bytes) -> bytes:
    """The NAL payload without its emulation-prevention bytes (00 00 03 -> 00 00)."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    zeros = 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)



def _sei_number(d: bytes, i: int) -> tuple[int, int]:
    """An SEI payload type or size at `i` (bytes of 255 add up until one that is not); the value and the next
    position."""
    value = 0
    while True:
        _check(i < len(d), "truncated SEI")
        value += d[i]
        i += 1
        if d[i - 1] != 255:
            return value, i


def _sei_recovery_point(nal: bytes) -> bool | None:
    """Whether FFmpeg's SEI reader sets a recovery point from this SEI NAL: True, False (surely not), or None.

    Only the messages it reads without fail are stepped over (unregistered user data of 16 bytes or more);
    any other message before a recovery point makes the answer unknown.
    """
    d = _rbsp(nal[1:])
    i = 0
    while (len(d) - i) * 8 > 16 and d[i:i + 2] != b"\x00\x00":
        typ, i = _sei_number(d, i)
        size, i = _sei_number(d, i)
        if size > len(d) - i:
            return None
        if typ == 6:
            bits = "".join(f"{b:08b}" for b in d[i:i + min(size, 8)])
            k = bits.find("1")
            if k < 0 or 2 * k + 1 > len(bits):
                return None
            value = (1 << k) - 1 + (int(bits[k + 1:2 * k + 1], 2) if k else 0)
            return value <= 65535 or None
        if typ != 5 or size < 16:
            return None
        i += size
    return False


def _h264_parser_key(peek, offset: int, size: int, length_size: int) -> bool | None:
    """Whether FFmpeg's H.264 parser flags this sample as a keyframe; None when it cannot be told for sure.

    The parser walks the length-prefixed NAL units to the first slice: an IDR slice is a keyframe, a
    non-IDR slice is one when an SEI before it carried a recovery point.
    """
    data = peek(offset, min(size, 256))
    pos = 0
    recovery = False
    while True:
        if pos >= size - length_size:
            return False  # FFmpeg: no picture in the access unit
        if pos + length_size + 1 > len(data):
            data = data + peek(offset + len(data), min(size - len(data), max(256, pos + 64 - len(data))))
            if pos + length_size + 1 > len(data):
                return None
        nal_size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if nal_size <= 0 or nal_size > size - pos:
            return False  # FFmpeg: invalid NAL size, no picture
        typ = data[pos] & 0x1F
        if typ == 5:
            return True
        if typ == 1:
            return recovery
        if nal_size > (1 << 20):
            return None
        if pos + nal_size > len(data):
            data = data + peek(offset + len(data), pos + nal_size - len(data))
            if pos + nal_size > len(data):
                return None
        nal = data[pos:pos + nal_size]
        if b"\x00\x00\x01" in nal:
            return None  # a start code inside: FFmpeg would cut the unit there
        if typ == 6:
            got = _sei_recovery_point(nal)
            if got is None:
                return None
            recovery = recovery or got
        pos += nal_size
