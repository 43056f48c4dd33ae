"""A translated video is written in segments, so that a killed run resumes, and joined at the end.

Beside the output ``OUT/clip.mp4`` a hidden work folder ``OUT/.clip.mp4.parts/`` holds:

- ``manifest.json``: the settings that make the output, the input's identity (path, size,
  modification time) and the finished segments, each with its frame count and the time stamps of
  its first and last frames. It is rewritten atomically after each segment.
- ``seg-000000.mp4``, ``seg-000001.mp4``, ...: a few seconds of encoded video each, written to a
  temp file and renamed when whole. Each starts with a keyframe (a fresh encoder per segment,
  cut by time stamps whatever the input's GOP), so they join without re-encoding. MP4 keeps
  every packet's time stamps exactly.

A re-run reads the manifest: with the same settings and input it skips the frames of the finished
segments and goes on from there (a segment file the manifest does not list, or a temp file, was cut
short and is deleted); with another input it starts over; with other settings it is refused unless
``--overwrite`` (as an output made with other settings is). At the end the segments' packets and
the input's audio and subtitle packets are remuxed, interleaved by time, into a temp file beside
the output, which is renamed onto it; then the work folder is removed
(:mod:`posterforge.video.join`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from posterforge.atomic import create_temp, fsync_file, write_text_atomic
from posterforge.outputs import fingerprint

MANIFEST = "manifest.json"
VERSION = 1
# seconds of video per segment: what a kill can cost; POSTERFORGE_SEGMENT_SECONDS overrides it
SEGMENT_SECONDS = 5.0
MAX_SEGMENT_FRAMES = 1000  # a segment ends after this many frames whatever their time stamps
# tests only: "EVENT:N" kills this process (-9) at its Nth EVENT (see kill_point)
KILL_ENV = "POSTERFORGE_TEST_KILL"
_kills: dict[str, int] = {}
# container metadata the muxer writes itself
_OWN_TAGS = frozenset({"encoder", "major_brand", "minor_version", "compatible_brands", "duration"})


def segment_seconds() -> float:
    try:
        value = float(os.environ.get("POSTERFORGE_SEGMENT_SECONDS", SEGMENT_SECONDS))
    except ValueError:
        return SEGMENT_SECONDS
    return value if value > 0 else SEGMENT_SECONDS


def kill_point(event: str) -> None:
    """A point where a kill -9 leaves the work folder in a state of its own, named for tests
    (``POSTERFORGE_TEST_KILL=renamed:2`` dies right after its second segment's rename), so that
    every such state is resumed deterministically rather than by racing a timer: ``opened``
    (leftovers removed, manifest not yet rewritten), ``encoded`` (a frame into a segment's temp
    file), ``closed`` (a segment whole, not yet durable), ``renamed`` (named, not yet listed),
    ``listed`` (in the manifest)."""
    spec = os.environ.get(KILL_ENV)
    if not spec or spec.partition(":")[0] != event:
        return
    _kills[event] = _kills.get(event, 0) + 1
    if spec.partition(":")[2] == str(_kills[event]):
        os.kill(os.getpid(), signal.SIGKILL)


def parts_dir(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.parts")


def input_identity(src: Path) -> dict[str, Any]:
    st = src.stat()
    return {"path": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class Segment:
    file: str
    frames: int
    first_pts: int
    last_pts: int
    state: str | None = None  # --stabilize: the state after it (posterforge.video.stable)


class Parts:
    """The work folder of one output and its manifest. Only the run that holds the output's
    claim (lock) touches it."""

    def __init__(self, dest: Path, settings: Mapping[str, Any], identity: Mapping[str, Any]):
        self.dir = parts_dir(dest)
        self.settings, self.identity = dict(settings), dict(identity)
        self.fingerprint = fingerprint(settings)
        self.segments: list[Segment] = []

    # -- what is there -----------------------------------------------------------------------------
    def read(self) -> dict[str, Any] | None:
        try:
            manifest = json.loads((self.dir / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) else None

    def conflict(self) -> str | None:
        """Why the unfinished work here may not be thrown away without ``--overwrite``: it was
        made with other settings (None when there is none, or it is ours to resume)."""
        manifest = self.read()
        if manifest is None or not manifest.get("segments"):
            return None
        old = manifest.get("settings") or {}
        if manifest.get("fingerprint") == self.fingerprint:
            return None
        diff = [
            f"{k} {old.get(k)!r}, now {self.settings.get(k)!r}"
            for k in sorted(set(old) | set(self.settings))
            if old.get(k) != self.settings.get(k)
        ]
        return "made with other settings (" + "; ".join(diff) + ")"

    def open(self) -> str | None:
        """Take up the work folder: resume what the manifest lists, or start afresh. Returns a
        note when finished work is thrown away (the input changed)."""
        note = None
        manifest = self.read()
        if manifest is not None and manifest.get("fingerprint") == self.fingerprint:
            if manifest.get("input") == self.identity and manifest.get("version") == VERSION:
                try:
                    self.segments = [Segment(**s) for s in manifest.get("segments", [])]
                except (TypeError, ValueError):
                    note = "the work folder's manifest is unreadable: starting over"
            elif manifest.get("segments"):
                note = "the input changed since the unfinished run: starting over"
        # a listed segment that is missing (the folder was tampered with): keep what comes before
        kept = []
        for seg in self.segments:
            if not (self.dir / seg.file).is_file():
                break
            if seg.state and not (self.dir / seg.state).is_file():
                kept.append(Segment(seg.file, seg.frames, seg.first_pts, seg.last_pts))
                break  # a resume from there finds no state, and starts over (StateLost)
            kept.append(seg)
        self.segments = kept
        self.dir.mkdir(parents=True, exist_ok=True)
        listed = {s.file for s in self.segments} | {s.state for s in self.segments} | {MANIFEST}
        for entry in os.scandir(self.dir):
            if entry.name not in listed:  # cut short by a kill, or another run's leftovers
                _remove(Path(entry.path))
        kill_point("opened")
        self._save()
        return note

    @property
    def frames_done(self) -> int:
        return sum(s.frames for s in self.segments)

    @property
    def last_pts(self) -> int | None:
        return self.segments[-1].last_pts if self.segments else None

    def restart(self) -> None:
        for seg in self.segments:
            _remove(self.dir / seg.file)
            if seg.state:
                _remove(self.dir / seg.state)
        self.segments = []
        self._save()

    # -- writing -----------------------------------------------------------------------------------
    def next_name(self) -> Path:
        return self.dir / f"seg-{len(self.segments):06d}.mp4"

    def temp_for(self, final: Path) -> Path:
        fd, tmp = create_temp(final)
        os.close(fd)
        return tmp

    def commit(
        self, tmp: Path, final: Path, frames: int, times: tuple[int, int], state: bytes | None
    ) -> None:
        """A finished segment (``times``: its first and last time stamps) and, for ``--stabilize``,
        the state after it: make them durable, give them their names, then list them."""
        from posterforge.video.stable import state_name

        kill_point("closed")
        fsync_file(tmp)
        os.replace(tmp, final)
        kill_point("renamed")
        name = None
        if state is not None:
            name = state_name(final.name)
            fd, state_tmp = create_temp(self.dir / name)
            with os.fdopen(fd, "wb") as f:
                f.write(state)
                f.flush()
                os.fsync(f.fileno())
            os.replace(state_tmp, self.dir / name)
        self.segments.append(Segment(final.name, frames, *times, state=name))
        self._save()
        kill_point("listed")

    def _save(self) -> None:
        manifest = {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "input": self.identity,
            # "state" only where there is one: a plain run's manifest is as it was
            "segments": [
                {k: v for k, v in vars(s).items() if k != "state" or v} for s in self.segments
            ],
        }
        write_text_atomic(self.dir / MANIFEST, json.dumps(manifest, indent=1, default=str) + "\n")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


# --- writing segments -----------------------------------------------------------------------------


class Cuts:
    """Where segments start: once the current one spans ``seconds`` of time stamps or holds
    :data:`MAX_SEGMENT_FRAMES`. Decided from the time stamps alone, on the decode thread, so
    that the model's batches can end at each cut too: a batch never spans two segments, and a
    resumed run (which starts at a cut) batches every frame after it as the first run did. A
    batch of other frames may round the model's output otherwise, and a resumed job must write
    the same bytes."""

    def __init__(self, time_base: Fraction, seconds: float):
        self.time_base, self.seconds = time_base, seconds
        self.t0: Fraction | None = None
        self.frames = 0

    def starts(self, pts: int) -> bool:
        """Whether the frame at ``pts`` (the next in order) starts a segment."""
        t = pts * self.time_base
        if self.t0 is None or t - self.t0 >= self.seconds or self.frames >= MAX_SEGMENT_FRAMES:
            self.t0, self.frames = t, 1
            return True
        self.frames += 1
        return False


class SegmentWriter:
    """Frames in, finished segments out: a new segment (a fresh encoder, so a keyframe of ours,
    whatever the input's keyframes) starts at each frame :class:`Cuts` marks."""

    def __init__(self, parts: Parts, spec: Any):
        self.parts, self.spec = parts, spec
        self.encoder: Any = None
        self.tmp = self.final = Path()
        self.first_pts = self.last_pts = 0

    def write(
        self, rgb: Any, pts: int, duration: int | None, cut: bool, state: bytes | None = None
    ) -> None:
        """One frame; ``state`` (``--stabilize``, on a segment's first frame): the shared
        statistics before it, kept with the segment it ends."""
        from posterforge.video.encode import SegmentEncoder

        if self.encoder is not None and cut:
            self._finish(state)
        if self.encoder is None:
            self.final = self.parts.next_name()
            self.tmp = self.parts.temp_for(self.final)
            self.encoder = SegmentEncoder(self.tmp, self.spec)
            self.first_pts = pts
        self.encoder.encode(rgb, pts, duration)
        self.last_pts = pts
        kill_point("encoded")

    def finish(self) -> None:
        if self.encoder is not None:
            self._finish()

    def _finish(self, state: bytes | None = None) -> None:
        encoder, self.encoder = self.encoder, None
        try:
            encoder.close()
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        times = (self.first_pts, self.last_pts)
        self.parts.commit(self.tmp, self.final, encoder.frames, times, state)

    def abort(self) -> None:
        """Drop the segment being written (a resumed run writes it again)."""
        if self.encoder is not None:
            self.encoder.abort()
            self.encoder = None
            self.tmp.unlink(missing_ok=True)
