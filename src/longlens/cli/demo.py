"""`longlens demo`: a synthetic long video with a hidden text needle, answered by the offline zoom agent.

Makes a 10-minute 640x360 video at 15 fps (once; it is kept in the out folder) with one small text label that
is unreadable in the fast view, asks its multiple-choice question with the embedded offline backend (the zoom
agent at its LOVE-R1 defaults), and prints each step, the answer against the truth, and where the trace and the
contact sheets are. Every step that takes more than a second shows its progress while it runs.

The video is small on purpose: the fast view is 196x112 whatever the source, and the label has to be read from
the zoom-in clip's 588x336 frames, so 640x360 shows what 720p shows at about a quarter of the cost to make and to
decode, and 15 fps halves that again (the fast view samples at most 2 frames a second). The label is drawn a
little smaller than the maker's default (`TEXT_CAP`), so that it stays as unreadable in the fast view as at 720p.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends.offline import OfflineBackend
from longlens.cli._common import add_cache_options, cache_from
from longlens.cli.ask import report
from longlens.cli.plan import describe
from longlens.prompts.messages import Video
from longlens.synth import load_answer_key, make_video
from longlens.video import default_cache_dir, fast_plan, open_video
from longlens.video.sheet import PER_PAGE, contact_sheets, save_contact_sheets, tile_scale

WIDTH, HEIGHT, FPS = 640, 360, 15
TEXT_CAP = 0.02
"""The label's cap height, a fraction of the frame height: 7 px at 360p. The maker's 0.024, measured at 720p, is
too easy at 360p: on whole fast-view frames of 2-minute 360p demos (seeds 0-7) RapidOCR read 3 labels of 8 well
enough to pick the option (a match of 0.75 or more, the offline backend's bar); at 0.02 it read none, as at 720p
with 0.024, and the agent still read all 8 in the zoom-in clip."""


def add_parser(sub, name):
    p = sub.add_parser(name, help="make a synthetic video with a hidden needle and answer its question offline",
                       description="Make a synthetic long video with a known answer and answer it offline.")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the demo video (default: 10)")
    p.add_argument("--out", help="folder for the video, trace and contact sheets (default: <cache>/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic video (default: 0)")
    add_cache_options(p)
    return p


class Progress:
    """Shows that a step is under way. On a terminal: one line, rewritten a few times a second (what, the percent
    done when known, the seconds so far) and cleared when the step ends. Elsewhere: a line once the step has run
    `after_s`, then one every `every_s` seconds."""

    def __init__(self, stream=None, *, tty: bool | None = None, after_s: float = 1.0, every_s: float = 10.0):
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.after_s = after_s
        self.every_s = every_s
        self._lock = threading.Lock()
        self._what = ""
        self._fraction: float | None = None
        self._t0 = 0.0

    def update(self, fraction: float | None = None, what: str | None = None) -> None:
        """Set the fraction done (0-1); or say what the step does now (the seconds and the fraction start anew)."""
        with self._lock:
            if what is not None and what != self._what:
                self._what, self._fraction, self._t0 = what, None, time.perf_counter()
            if fraction is not None:
                self._fraction = min(max(fraction, 0.0), 1.0)

    def line(self) -> str:
        with self._lock:
            what, f = self._what, self._fraction
        el = time.perf_counter() - self._t0
        if f is None:
            return f"{what} ... {el:.0f} s"
        text = f"{what} ... {100 * f:.0f} %, {el:.0f} s"
        if 0.05 <= f < 1:
            text += f", about {el * (1 - f) / f:.0f} s left"
        return text

    def _shown(self) -> str:
        if not self.tty:
            return self.line() + "\n"
        width = shutil.get_terminal_size((80, 24)).columns - 1  # a wrapped line would not be cleared
        return "\r\033[K" + self.line()[: max(width, 10)]

    @contextmanager
    def step(self, what: str, after_s: float | None = None) -> Iterator[Progress]:
        self._what, self._fraction, self._t0 = what, None, time.perf_counter()
        stop = threading.Event()
        shown = threading.Event()
        wait = self.after_s if after_s is None else after_s

        def tick() -> None:
            if stop.wait(wait):
                return
            while True:
                self._write(self._shown())
                shown.set()
                if stop.wait(0.25 if self.tty else self.every_s):
                    return

        thread = threading.Thread(target=tick, name="longlens-demo-progress", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            if self.tty and shown.is_set():
                self._write("\r\033[K")

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: progress is not worth failing for
            self.stream.write(text)
            self.stream.flush()


class _Watched:
    """A backend that tells `progress` which model step is running (everything else is the backend's)."""

    def __init__(self, backend, progress: Progress):
        self._backend = backend
        self._progress = progress
        self._steps = 0

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def generate(self, messages, *args, **kwargs):
        self._steps += 1
        frames = sum(len(p.frames) for m in messages for p in m.parts if isinstance(p, Video))
        self._progress.update(what=f"step {self._steps}  the offline model looks at {frames} frames")
        completion = self._backend.generate(messages, *args, **kwargs)
        if "\\boxed{[" in completion.text:
            self._progress.update(what=f"step {self._steps}  done; decoding the clip it asked for")
        return completion


def video_path(out: Path, minutes: float, seed: int) -> Path:
    return out / f"demo-{minutes:g}min-seed{seed}-{WIDTH}x{HEIGHT}-{FPS}fps.mp4"


def run(args) -> int:
    t_start = time.perf_counter()
    progress = Progress()
    spent: dict[str, float] = {}
    cache = cache_from(args)
    out = Path(args.out) if args.out else (cache.root if cache else default_cache_dir()) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    video = video_path(out, args.minutes, args.seed)
    key_path = video.with_suffix(".json")
    if video.exists() and key_path.exists():
        key = load_answer_key(key_path)
        print(f"video     {video} (made earlier)")
    else:
        t0 = time.perf_counter()
        what = f"making a {args.minutes:g}-minute {WIDTH}x{HEIGHT} {FPS} fps synthetic video with a small text needle"
        print(f"{what} ...", flush=True)
        with progress.step("making the video", after_s=0.0 if progress.tty else 5.0):
            key = make_video(video, duration_s=args.minutes * 60, width=WIDTH, height=HEIGHT, fps=FPS, seed=args.seed,
                             needles=1, needle_kinds=("text",), text_cap=TEXT_CAP,
                             progress=lambda done, n: progress.update(done / n))
        spent["video"] = time.perf_counter() - t0
        print(f"video     {video} ({spent['video']:.0f} s to make)")
    needle = key.needles[0]
    print(f"needle    {needle.content!r} on screen {needle.start_s:.1f}-{needle.end_s:.1f} s (hidden from the agent)")
    print(f"question  {needle.question}")
    for letter, option in zip("ABCD", needle.options, strict=False):
        print(f"          {letter}. {option}", flush=True)
    with progress.step("reading the video's frame index"):
        info = open_video(video, cache=cache)
    plan = fast_plan(info)
    print(f"plan      {describe(plan)}", flush=True)
    backend = OfflineBackend()
    with progress.step("loading the offline backend's OCR model"):
        backend.check()
    agent = ZoomAgent(_Watched(backend, progress), ZoomConfig(), cache=cache)

    t0 = time.perf_counter()
    with progress.step(f"decoding the fast view ({plan.n_frames} frames from {info.n_frames:,})"):
        fast = agent.fast_view(info)  # kept in memory for the agent's first step and the contact sheets
    spent["fast view"] = time.perf_counter() - t0
    how = "from the cache" if fast.from_cache else f"{fast.decoded_frames:,} frames decoded"
    print(f"decoded   the fast view in {spent['fast view']:.1f} s ({how})", flush=True)

    t0 = time.perf_counter()
    with progress.step("the zoom agent"):
        trace = agent.run(info, needle.question, needle.options)
    spent["agent"] = time.perf_counter() - t0
    report(trace)
    verdict = "right" if trace.choice == needle.answer else f"wrong (the answer is {needle.answer})"
    print(f"verdict   {verdict}")
    trace_path = trace.save(out / f"{video.stem}-trace.json")
    print(f"trace     {trace_path}", flush=True)

    t0 = time.perf_counter()
    clip = next((s.clip_added for s in trace.steps if s.clip_added), None)
    with progress.step("writing the contact sheets") as p:
        pages = contact_sheets(fast.frames, fast.times_s, title=f"the fast view of {video.name}")
        paths = save_contact_sheets(pages, out / f"{video.stem}-fast.jpg", quality=88)
        zoom = None
        if clip:
            p.update(what="writing the contact sheets: decoding the zoom-in clip")
            frames = agent.clip_view(info, *clip).frames
            title = f"the zoom-in clip [{clip[0]:g}, {clip[1]:g}] s of {video.name}"
            zoom = save_contact_sheets(contact_sheets(frames.frames, frames.times_s, title=title),
                                       out / f"{video.stem}-zoom.jpg", quality=88)
    spent["sheets"] = time.perf_counter() - t0
    k = tile_scale(min(fast.frames.shape[1:3]))
    shown = f"{len(fast)} frames, {PER_PAGE} a page" if len(paths) > 1 else f"{len(fast)} frames"
    enlarged = f", enlarged {k}x" if k > 1 else ""
    if len(paths) == 1:
        print(f"sheet     {paths[0]} (the fast view: {shown}{enlarged})")
    else:
        print(f"sheets    {paths[0]} ... {paths[-1].name} (the fast view: {len(paths)} pages, {shown}{enlarged})")
    for path in zoom or ():
        print(f"sheet     {path} (the zoom-in clip [{clip[0]:g}, {clip[1]:g}] s: {len(frames)} frames)")
    parts = ", ".join(f"{name} {s:.0f} s" for name, s in spent.items())
    print(f"time      {time.perf_counter() - t_start:.0f} s in all ({parts})")
    return 0
