"""Shared fixtures: short generated videos (no downloads), an isolated cache."""

from __future__ import annotations

import pytest

from longlens.synth import make_video
from longlens.video import FrameCache


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's cache: the default cache lives in the test's tmp folder."""
    monkeypatch.setenv("LONGLENS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def cache(tmp_path) -> FrameCache:
    return FrameCache(tmp_path / "frames-cache")


@pytest.fixture(scope="session")
def coded_video(tmp_path_factory):
    """20 s, 640x360, 30 fps, keyframe every 2 s, with B-frames; each frame shows its own index."""
    path = tmp_path_factory.mktemp("videos") / "coded.mp4"
    make_video(path, duration_s=20, width=640, height=360, fps=30, gop_s=2.0, seed=3, needles=0,
               preset="veryfast", bframes=2, frame_code=True, scene_s=(4.0, 8.0))
    return path


@pytest.fixture(scope="session")
def sparse_video(tmp_path_factory):
    """90 s, 320x180, 30 fps, keyframe every 3 s, frame code, no B-frames (ultrafast)."""
    path = tmp_path_factory.mktemp("videos") / "sparse.mp4"
    make_video(path, duration_s=90, width=320, height=180, fps=30, gop_s=3.0, seed=4, needles=0,
               frame_code=True, scene_s=(10.0, 20.0))
    return path
