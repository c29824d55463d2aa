"""The report's plots as self-written SVG: accuracy against visual tokens, steps, runs side by side.

Each function returns the SVG text. Marks carry classes and ``data-*`` attributes (``point correct``,
``point wrong``, ``bin``, ``bar``, ``errbar``) so a test or a script can read a plot back.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 560, 320
LEFT, RIGHT, TOP, BOTTOM = 60, 24, 44, 52
GOOD, BAD, INK, GRID, ACCENT = "#2e8b57", "#c0392b", "#333", "#e3e3e3", "#3465a4"
FONT = "font-family:system-ui,sans-serif;font-size:12px"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def short_number(v: float) -> str:
    if abs(v) >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


class Canvas:
    """A plot area [LEFT, WIDTH-RIGHT] x [TOP, HEIGHT-BOTTOM] with data ranges for x and y."""

    def __init__(self, title: str, x_range: tuple[float, float], y_range: tuple[float, float],
                 width: int = WIDTH, height: int = HEIGHT, left: int = LEFT):
        self.width, self.height, self.left = width, height, left
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.parts = [f'<text x="{width / 2:.0f}" y="20" text-anchor="middle" font-weight="600">'
                      f"{escape(title)}</text>"]

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (v - self.x0) / span * (self.width - self.left - RIGHT)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - BOTTOM - (v - self.y0) / span * (self.height - TOP - BOTTOM)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def y_axis(self, ticks: list[float], label: str, fmt=short_number) -> None:
        for t in ticks:
            y = self.y(t)
            self.add(f'<line x1="{self.left}" x2="{self.width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
            self.add(f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(t))}</text>')
        mid = (TOP + self.height - BOTTOM) / 2
        self.add(f'<text transform="translate(14 {mid:.0f}) rotate(-90)" text-anchor="middle">{escape(label)}</text>')

    def x_axis(self, ticks: list[tuple[float, str]], label: str) -> None:
        base = self.height - BOTTOM
        self.add(f'<line x1="{self.left}" x2="{self.width - RIGHT}" y1="{base}" y2="{base}" stroke="{INK}"/>')
        for v, text in ticks:
            x = self.x(v)
            self.add(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" stroke="{INK}"/>')
            self.add(f'<text x="{x:.1f}" y="{base + 17}" text-anchor="middle">{escape(text)}</text>')
        centre = (self.left + self.width - RIGHT) / 2
        self.add(f'<text x="{centre:.0f}" y="{self.height - 12}" text-anchor="middle">{escape(label)}</text>')

    def svg(self) -> str:
        return svg_document(self.width, self.height, self.parts)


def svg_document(width: int, height: int, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="{FONT}" fill="{INK}">\n'
            f'<rect width="{width}" height="{height}" fill="#fff"/>\n{body}\n</svg>\n')


def empty_plot(title: str, note: str) -> str:
    return svg_document(WIDTH, 120, [f'<text x="{WIDTH / 2}" y="40" text-anchor="middle" font-weight="600">'
                                     f"{escape(title)}</text>",
                                     f'<text x="{WIDTH / 2}" y="70" text-anchor="middle">{escape(note)}</text>'])


def _jitter(key: str) -> float:
    """A stable offset in [-1, 1] from a question id (no randomness between reports)."""
    return (sum((i + 1) * ord(c) for i, c in enumerate(key)) % 1000) / 500 - 1


def tokens_plot(points: list[dict], bins: list[dict], title: str = "Accuracy vs visual tokens") -> str:
    """points: {id, tokens, correct, parsed}; bins: {lo, hi, n, accuracy}. Correct answers sit at 1,
    wrong or unparsed at 0 (jittered a little); the binned accuracy is drawn over them."""
    if not points:
        return empty_plot(title, "no scored questions")
    lo = min(p["tokens"] for p in points)
    hi = max(p["tokens"] for p in points)
    pad = (hi - lo) * 0.05 or max(hi * 0.05, 1)
    xt = nice_ticks(lo - pad, hi + pad)
    c = Canvas(title, (lo - pad, hi + pad), (-0.08, 1.08))
    c.y_axis([0, 0.25, 0.5, 0.75, 1.0], "accuracy", lambda t: f"{t:.2f}")
    c.x_axis([(t, short_number(t)) for t in xt if c.x0 <= t <= c.x1], "visual tokens per question")
    for p in points:
        x = c.x(p["tokens"])
        pid = escape(str(p["id"]), quote=True)
        if p["correct"]:
            y = c.y(1.0 - 0.03 * (1 + _jitter(p["id"])))
            c.add(f'<circle class="point correct" data-id="{pid}" data-tokens="{p["tokens"]}" cx="{x:.1f}" '
                  f'cy="{y:.1f}" r="4" fill="{GOOD}" fill-opacity="0.6"><title>{pid}: correct, '
                  f'{p["tokens"]} tokens</title></circle>')
        else:
            y = c.y(0.03 * (1 + _jitter(p["id"])))
            kind = "unparsed" if p.get("parsed") is None else "wrong"
            cross = f"M{x - 4:.1f} {y - 4:.1f}l8 8m-8 0l8 -8"
            c.add(f'<path class="point wrong" data-id="{pid}" data-tokens="{p["tokens"]}" d="{cross}" '
                  f'stroke="{BAD}" stroke-width="2"><title>{pid}: {kind}, {p["tokens"]} tokens</title></path>')
    line = [(c.x((b["lo"] + b["hi"]) / 2), c.y(b["accuracy"])) for b in bins if b["n"]]
    if len(line) > 1:
        c.add(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in line)}" fill="none" '
              f'stroke="{ACCENT}" stroke-width="2"/>')
    for b in bins:
        if not b["n"]:
            continue
        x, y = c.x((b["lo"] + b["hi"]) / 2), c.y(b["accuracy"])
        x_lo, x_hi = c.x(b["lo"]), c.x(b["hi"])
        c.add(f'<line x1="{x_lo:.1f}" x2="{x_hi:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{ACCENT}" stroke-opacity=".35" '
              f'stroke-width="6"/>')
        c.add(f'<rect class="bin" data-n="{b["n"]}" data-accuracy="{b["accuracy"]:.4f}" x="{x - 5:.1f}" '
              f'y="{y - 5:.1f}" width="10" height="10" fill="{ACCENT}"><title>{short_number(b["lo"])}-'
              f'{short_number(b["hi"])} tokens: {b["accuracy"]:.0%} of {b["n"]}</title></rect>')
        label_y = y + 20 if b["accuracy"] > 0.85 else y - 9
        c.add(f'<text x="{x:.1f}" y="{label_y:.1f}" text-anchor="middle" fill="{ACCENT}">n={b["n"]}</text>')
    lx, ly = c.width - RIGHT - 230, 38
    c.add(f'<circle cx="{lx + 4}" cy="{ly - 4}" r="4" fill="{GOOD}"/><text x="{lx + 12}" y="{ly}">correct</text>'
          f'<path d="M{lx + 66} {ly - 8}l8 8m-8 0l8 -8" stroke="{BAD}" stroke-width="2"/>'
          f'<text x="{lx + 78}" y="{ly}">wrong</text><rect x="{lx + 122}" y="{ly - 9}" width="10" height="10" '
          f'fill="{ACCENT}"/><text x="{lx + 136}" y="{ly}">binned accuracy</text>')
    return c.svg()


def steps_plot(hist: dict[int, dict], title: str = "Questions by number of steps") -> str:
    """hist: {steps: {n, accuracy}}; a bar per step count with its count and accuracy above."""
    if not hist:
        return empty_plot(title, "no questions with steps")
    keys = sorted(hist)
    top = max(h["n"] for h in hist.values())
    yt = nice_ticks(0, top, 4)
    c = Canvas(title, (keys[0] - 0.6, keys[-1] + 0.6), (0, max(yt[-1], top) * 1.15))
    c.y_axis(yt, "questions")
    c.x_axis([(k, str(k)) for k in keys], "steps")
    width = min(60.0, (c.x(1) - c.x(0)) * 0.6)
    for k in keys:
        h = hist[k]
        x, y, base = c.x(k), c.y(h["n"]), c.y(0)
        c.add(f'<rect class="bar" data-steps="{k}" data-count="{h["n"]}" data-accuracy="{h["accuracy"]:.4f}" '
              f'x="{x - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" height="{base - y:.1f}" fill="{ACCENT}">'
              f'<title>{k} steps: {h["n"]} questions, accuracy {h["accuracy"]:.1%}</title></rect>')
        c.add(f'<text x="{x:.1f}" y="{y - 18:.1f}" text-anchor="middle">n={h["n"]}</text>')
        c.add(f'<text x="{x:.1f}" y="{y - 5:.1f}" text-anchor="middle" font-weight="600">{h["accuracy"]:.1%}</text>')
    return c.svg()


def runs_plot(runs: list[dict], title: str = "Runs side by side") -> str:
    """runs: {name, accuracy, se, tokens}; accuracy with ±SE bars on the left, mean visual tokens on the right."""
    if not runs:
        return empty_plot(title, "no runs")
    half = max(WIDTH, 120 * len(runs) + 120)
    width = 2 * half
    n = len(runs)
    acc = Canvas("accuracy (± SE)", (-0.6, n - 0.4), (0, 1.05), width=half)
    top_tokens = max((r["tokens"] or 0) for r in runs) or 1
    tt = nice_ticks(0, top_tokens, 4)
    tok = Canvas("mean visual tokens per question", (-0.6, n - 0.4), (0, max(tt[-1], top_tokens) * 1.12),
                 width=half)
    acc.y_axis([0, 0.25, 0.5, 0.75, 1.0], "accuracy", lambda t: f"{t:.2f}")
    tok.y_axis(tt, "visual tokens")
    names = [(i, r["name"] if len(r["name"]) <= 16 else r["name"][:15] + "…") for i, r in enumerate(runs)]
    acc.x_axis(names, "")
    tok.x_axis(names, "")
    bar = min(60.0, (acc.x(1) - acc.x(0)) * 0.6)
    for i, r in enumerate(runs):
        name = escape(r["name"], quote=True)
        x, y, base = acc.x(i), acc.y(r["accuracy"]), acc.y(0)
        acc.add(f'<rect class="bar" data-run="{name}" data-accuracy="{r["accuracy"]:.4f}" x="{x - bar / 2:.1f}" '
                f'y="{y:.1f}" width="{bar:.1f}" height="{base - y:.1f}" fill="{ACCENT}"/>')
        if r["se"] is not None:  # no error bar where the SE is not estimable (one video)
            lo, hi = acc.y(max(0.0, r["accuracy"] - r["se"])), acc.y(min(1.0, r["accuracy"] + r["se"]))
            acc.add(f'<path class="errbar" data-run="{name}" data-se="{r["se"]:.4f}" d="M{x:.1f} {lo:.1f}V{hi:.1f}'
                    f'M{x - 6:.1f} {lo:.1f}h12M{x - 6:.1f} {hi:.1f}h12" stroke="{INK}" stroke-width="1.5" '
                    'fill="none"/>')
        acc.add(f'<text x="{x + bar / 2 + 3:.1f}" y="{y + 12:.1f}">{r["accuracy"]:.1%}</text>')
        tokens = r["tokens"] or 0
        x, y, base = tok.x(i), tok.y(tokens), tok.y(0)
        tok.add(f'<rect class="bar tokens" data-run="{name}" data-tokens="{tokens:.1f}" x="{x - bar / 2:.1f}" '
                f'y="{y:.1f}" width="{bar:.1f}" height="{base - y:.1f}" fill="#8a6fb0"/>')
        tok.add(f'<text x="{x:.1f}" y="{y - 5:.1f}" text-anchor="middle">{short_number(round(tokens))}</text>')
    parts = [f"<title>{escape(title)}</title>", f'<g>{"".join(acc.parts)}</g>',
             f'<g transform="translate({half} 0)">{"".join(tok.parts)}</g>']
    return svg_document(width, HEIGHT, parts)
