"""Reading and writing video frames with PyAV: probing, decoding with damage notes, colour
conversion, and the encoder of one segment. PyAV is imported inside functions only.

Frames are handed around as RGB ``(H, W, 3)`` uint8 arrays in the orientation the file stores
them; the display matrix (rotation) travels as metadata. Colour conversion uses the input's own
matrix (BT.601, BT.709, ...) and range (limited or full) both ways, and the output is tagged with
the input's colour range, matrix, primaries and transfer, so the pictures look as they did.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError

if TYPE_CHECKING:
    import av
    import numpy as np

# AVColorSpace (what a frame is tagged with) -> swscale's SWS_CS_* (what converts it)
_SWS_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
_SWS_DEFAULT = 5  # BT.601, what FFmpeg assumes for an untagged frame
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG

# CRF per encoder: the scale's top and our default (libx264's 18 is visually lossless)
CRF_RANGE = {"libx264": 51, "libx265": 51}
CRF_DEFAULT = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "libsvtav1": 28, "libaom-av1": 28}
PIX_FMT = "yuv420p"
# decode errors in a row after which a damaged input is given up
MAX_BAD_PACKETS_IN_A_ROW = 100


class VideoError(PosterforgeError):
    """A video input that cannot be translated; ``reason`` is one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = Path(path)
        self.reason = " ".join(reason.split())
        super().__init__(f"{self.path}: {self.reason}")


def _ff_reason(e: BaseException) -> str:
    """FFmpeg's message without the file name PyAV appends."""
    text = getattr(e, "strerror", None) or str(e) or e.__class__.__name__
    return text.split(": '")[0].strip() if isinstance(text, str) else str(text)


# --- codec checks (before any work) ---------------------------------------------------------------


def check_codec(vcodec: str, crf: int | None, suffixes: set[str]) -> int | None:
    """Raise :class:`PosterforgeError` (one line) unless this FFmpeg build has the video encoder
    ``vcodec``, ``crf`` suits it and every output suffix in ``suffixes`` can hold it; returns the
    CRF to use (None for an encoder without one)."""
    import av

    try:
        codec = av.Codec(vcodec, "w")
    except (av.FFmpegError, ValueError):
        raise PosterforgeError(
            f"--vcodec {vcodec}: this FFmpeg build has no such encoder; video encoders it has "
            f"include {', '.join(_known_encoders())}"
        ) from None
    if codec.type != "video":
        raise PosterforgeError(f"--vcodec {vcodec}: a {codec.type} encoder, not a video encoder")
    has_crf = any(
        o.name == "crf" for o in av.CodecContext.create(vcodec, "w").supported_options.private
    )
    if crf is None:
        crf = CRF_DEFAULT.get(codec.name, 18) if has_crf else None
    elif not has_crf:
        raise PosterforgeError(f"--crf: the {vcodec} encoder has no CRF (constant quality) mode")
    elif not 0 <= crf <= CRF_RANGE.get(codec.name, 63):
        raise PosterforgeError(f"invalid --crf {crf}: use 0 to {CRF_RANGE.get(codec.name, 63)}")
    from posterforge.video.containers import MUXERS

    for suffix in sorted(suffixes):
        muxer = MUXERS[suffix.lower()]
        try:
            with av.open(_Sink(), "w", format=muxer) as probe:
                probe.add_stream(vcodec, rate=24)
        except ValueError:
            raise PosterforgeError(
                f"--vcodec {vcodec} cannot be written into {suffix} files; "
                f"use {_fits(muxer)}, or another output suffix"
            ) from None
    return crf


class _Sink:
    """A write-only file object that keeps nothing (for trying a muxer's header)."""

    def write(self, data: bytes) -> int:
        return len(data)

    def seek(self, *args: int) -> int:
        return 0

    def tell(self) -> int:
        return 0


def _known_encoders() -> list[str]:
    import av

    wanted = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1", "mpeg4")
    return [name for name in wanted if name in av.codecs_available]


def _fits(muxer: str) -> str:
    import av

    fits = []
    for name in _known_encoders():
        try:
            with av.open(_Sink(), "w", format=muxer) as probe:
                probe.add_stream(name, rate=24)
            fits.append(name)
        except ValueError:
            continue
    return "--vcodec " + " or ".join(fits) if fits else "another --vcodec"


# --- probing --------------------------------------------------------------------------------------


@dataclass
class Probe:
    """What a video holds, read from its header and its first frame."""

    path: Path
    width: int  # as stored (before the display matrix turns it)
    height: int
    time_base: Fraction
    rate: Fraction  # average frame rate (a hint for the encoder; time stamps rule)
    frames: int  # frames, exact where the container says, else estimated from the duration
    duration: float | None  # seconds the header declares, if any
    duration_exact: bool  # whether that is the video stream's own length (else the container's)
    start: float  # time stamp of the first frame, seconds
    end_pts: int | None = None  # where the stream's header says it ends, in time_base units
    rotation: int = 0  # counter-clockwise degrees to display it upright (0, 90, 180, 270)
    display_matrix: tuple[int, ...] | None = None
    color_range: int = 0
    colorspace: int = 2
    color_primaries: int = 2
    color_trc: int = 2
    sample_aspect_ratio: Fraction | None = None
    copied: list[int] = field(default_factory=list)  # audio and subtitle streams to copy
    others: list[str] = field(default_factory=list)  # streams left out, described

    @property
    def upright(self) -> tuple[int, int]:
        """(W, H) as displayed."""
        return (
            (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)
        )


def open_input(path: Path) -> av.container.InputContainer:
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError:
        raise VideoError(path, "no such file") from None
    except IsADirectoryError:
        raise VideoError(path, "a folder, not a video") from None
    except PermissionError:
        raise VideoError(path, "permission denied") from None
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoError(path, f"not a video FFmpeg can read ({_ff_reason(e)})") from None


def video_stream(container: Any, path: Path) -> Any:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        if kinds:
            raise VideoError(path, f"no video stream (only {', '.join(kinds)})")
        raise VideoError(path, "no video stream: no streams at all (empty, or cut short?)")
    stream = container.streams.best("video")
    if stream.codec_context is None:
        raise VideoError(path, "unsupported video codec: this FFmpeg has no decoder for it")
    return stream


def probe(path: Path) -> Probe:
    """Open ``path``, check it holds a video stream that decodes, and describe it. Raises
    :class:`VideoError` with one line for a file that is no video, holds no video stream, uses a
    codec this FFmpeg cannot decode, or whose first frame does not decode."""
    import av

    with open_input(path) as container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        first = None
        damage = Damage()
        try:
            for frame in decode(container, stream, damage):
                first = frame
                break
        except av.FFmpegError as e:
            damage.error(_ff_reason(e))
        if first is None:
            if damage.packets == 0:
                raise VideoError(path, "the video stream holds no frames")
            why = damage.first_error or damage.stopped
            raise VideoError(path, "no frame decodes" + (f" ({why})" if why else ""))
        tb = stream.time_base or Fraction(1, 90000)
        end_pts = None
        if stream.duration and stream.time_base:
            end_pts = (stream.start_time or 0) + stream.duration
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration, exact = declared_duration(container, stream)
        frames = stream.frames or (round(duration * rate) if duration else 0)
        matrix = display_matrix(first)
        rotation = round(first.rotation / 90.0) % 4 * 90 if first.rotation else 0
        copied, others = [], []
        for s in container.streams:
            if s.index == stream.index:
                continue
            if s.type in ("audio", "subtitle"):
                copied.append(s.index)
            else:
                others.append(f"{s.type} stream #{s.index}")
        return Probe(
            path=path,
            width=first.width,
            height=first.height,
            time_base=tb,
            rate=Fraction(rate),
            frames=int(frames),
            duration=duration,
            duration_exact=exact,
            start=float((first.pts or 0) * tb),
            end_pts=end_pts,
            rotation=rotation,
            display_matrix=matrix,
            color_range=int(first.color_range),
            colorspace=int(first.colorspace),
            color_primaries=int(first.color_primaries),
            color_trc=int(first.color_trc),
            sample_aspect_ratio=stream.sample_aspect_ratio or None,
            copied=copied,
            others=others,
        )


def declared_duration(container: Any, stream: Any) -> tuple[float | None, bool]:
    """Seconds of video the file declares, and whether that is the video stream's own length
    (exact) rather than the whole container's (which longer audio may stretch)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base), True
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")  # Matroska
    if tag and (m := re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", tag.strip())):
        return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]), True
    if container.duration:
        return container.duration / 1_000_000, False
    return None, False


def display_matrix(frame: Any) -> tuple[int, ...] | None:
    import av.sidedata.sidedata as sd

    for data in frame.side_data:
        if data.type == sd.Type.DISPLAYMATRIX:
            raw = bytes(data)
            if len(raw) == 36:
                return struct.unpack("=9i", raw)
    return None


# --- decoding -------------------------------------------------------------------------------------


@dataclass
class Damage:
    """Where a damaged input broke while decoding, for one line in the record."""

    first_error: str | None = None  # "at 3.20 s: Invalid data found ..."
    bad_packets: int = 0
    corrupt_frames: int = 0
    stopped: str | None = None  # why reading ended early, if it did
    last_time: float | None = None  # time stamp of the last frame decoded, seconds
    reordered: int = 0  # frames whose time stamp went backwards and was moved on
    packets: int = 0  # packets read

    def error(self, reason: str) -> None:
        self.bad_packets += 1
        if self.first_error is None:
            where = "at the start" if self.last_time is None else f"after {self.last_time:.2f} s"
            self.first_error = f"{where}: {reason}"

    def note(
        self, frames: int, end: float | None, declared: float | None, start: float, slack: float
    ) -> str | None:
        """One line about the damage, or None when the input decoded whole. A video that ends
        more than ``slack`` seconds before the ``declared`` length was cut short."""
        parts = []
        if self.first_error is not None:
            parts.append(f"decoding broke {self.first_error} ({self.bad_packets} packet(s) lost)")
        if self.stopped is not None:
            parts.append(f"reading stopped: {self.stopped}")
        if self.corrupt_frames:
            parts.append(f"{self.corrupt_frames} frame(s) decoded with errors concealed")
        if declared is not None and end is not None:
            got = end - start
            if got < declared - slack:
                parts.append(
                    f"the video ends at {got:.2f} s of the {declared:.2f} s its header declares"
                )
        if not parts:
            return None
        return (
            "input damaged: "
            + "; ".join(parts)
            + f"; the output holds the {frames} frames that decode"
        )


def decode(container: Any, stream: Any, damage: Damage) -> Iterator[Any]:
    """The frames of ``stream`` in order, going past packets that do not decode (noted in
    ``damage``); a read error ends it (noted too)."""
    import av

    packets = container.demux(stream)
    in_a_row = 0
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as e:
            damage.stopped = _ff_reason(e)
            break
        if packet.size:
            damage.packets += 1
        try:
            frames = packet.decode()
        except av.FFmpegError as e:
            damage.error(_ff_reason(e))
            in_a_row += 1
            if in_a_row >= MAX_BAD_PACKETS_IN_A_ROW:
                damage.stopped = f"{in_a_row} packets in a row do not decode"
                break
            continue
        in_a_row = 0
        for frame in frames:
            if frame.is_corrupt:
                damage.corrupt_frames += 1
            yield frame
    if damage.stopped is not None:  # the decoder still holds frames the demuxer fed it
        with contextlib.suppress(av.FFmpegError):
            yield from stream.decode(None)


def to_rgb(frame: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """A decoded frame as RGB ``(H, W, 3)`` uint8, converted with its own matrix and range;
    scaled to ``size`` (W, H) when given (a stream whose frame size changes midway)."""
    w, h = size if size is not None else (None, None)
    return frame.to_ndarray(
        width=w,
        height=h,
        format="rgb24",
        src_colorspace=_SWS_COLORSPACE.get(int(frame.colorspace), _SWS_DEFAULT),
        src_color_range=_FULL_RANGE if int(frame.color_range) == _FULL_RANGE else _LIMITED_RANGE,
        dst_color_range=_FULL_RANGE,
    )


# --- encoding one segment -------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodeSpec:
    """How every segment of one output is encoded (the same for each, so they join)."""

    vcodec: str
    crf: int | None
    width: int  # as stored
    height: int
    time_base: Fraction
    rate: Fraction
    color_range: int = 0
    colorspace: int = 2
    color_primaries: int = 2
    color_trc: int = 2
    sample_aspect_ratio: Fraction | None = None
    display_matrix: tuple[int, ...] | None = None


class SegmentEncoder:
    """One segment file: frames in, packets muxed; :meth:`close` finishes it."""

    muxer = "mp4"  # keeps each packet's pts and dts exactly, in the stream's time base

    def __init__(self, path: Path, spec: EncodeSpec):
        import av

        if spec.vcodec == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT-AV1 prints its banner
        self.spec = spec
        self.container = av.open(
            str(path), "w", format=self.muxer, options=exact_times(self.muxer, spec.time_base)
        )
        try:
            self.stream = self._add_stream(spec)
        except BaseException:
            self.container.close()
            raise
        self.frames = 0
        self.durations: dict[int, int] = {}

    def _add_stream(self, spec: EncodeSpec) -> Any:
        stream = self.container.add_stream(spec.vcodec, rate=spec.rate)
        ctx = stream.codec_context
        stream.width, stream.height = spec.width, spec.height
        stream.pix_fmt = PIX_FMT
        stream.time_base = spec.time_base
        ctx.time_base = spec.time_base
        ctx.color_range = spec.color_range
        ctx.colorspace = spec.colorspace
        ctx.color_primaries = spec.color_primaries
        ctx.color_trc = spec.color_trc
        if spec.sample_aspect_ratio:
            ctx.sample_aspect_ratio = spec.sample_aspect_ratio
        options = {}
        if spec.crf is not None:
            options["crf"] = str(spec.crf)
            if spec.vcodec.startswith("libvpx"):
                ctx.bit_rate = 0  # constant quality, no bitrate target
        stream.options = options
        if spec.display_matrix is not None:
            stream.set_display_matrix(spec.display_matrix)
        return stream

    def encode(self, rgb: np.ndarray, pts: int, duration: int | None) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        spec = self.spec
        out = frame.reformat(
            format=PIX_FMT,
            src_color_range=_FULL_RANGE,
            dst_colorspace=_SWS_COLORSPACE.get(spec.colorspace, _SWS_DEFAULT),
            dst_color_range=_FULL_RANGE if spec.color_range == _FULL_RANGE else _LIMITED_RANGE,
        )
        out.pts, out.time_base = pts, spec.time_base
        if duration:
            out.duration = duration
            self.durations[pts] = duration
        self._mux(self.stream.encode(out))
        self.frames += 1

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            # encoders leave packet durations at 0: the container then guesses the last frame's
            if packet.pts is not None and (duration := self.durations.pop(packet.pts, 0)):
                packet.duration = duration
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        try:
            self._mux(self.stream.encode(None))
        finally:
            self.container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # a half-written segment is deleted anyway
            self.container.close()


def exact_times(muxer: str, time_base: Fraction) -> dict[str, str]:
    """Muxer options that keep a track's start time exact: MP4 and MOV write it in an edit list
    counted in the movie's timescale (1/1000 s by default, which rounds 1/24 s steps)."""
    if muxer in ("mp4", "mov") and time_base.numerator == 1 and time_base.denominator < 2**31:
        return {"movie_timescale": str(time_base.denominator)}
    return {}


def even(n: int) -> int:
    """4:2:0 chroma needs even sides."""
    return max(2, n - n % 2)


def frame_step(spec_time_base: Fraction, rate: Fraction) -> int:
    """One frame's duration in time-base units (for frames that carry no time stamp)."""
    return max(1, math.floor(1 / (rate * spec_time_base) + 0.5)) if rate else 1
