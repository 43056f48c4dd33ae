"""Reading video with PyAV: one probe of a video's header (and first frame) for both
``posterforge frames`` and video translation, and decoding that goes past damage, noting it.
PyAV is imported inside functions only.

Frames are handed around as RGB ``(H, W, 3)`` uint8 arrays in the orientation the file stores
them (:func:`~posterforge.video.colour.to_rgb`); the display matrix (rotation) travels as
metadata. Encoding is :mod:`posterforge.video.encode`; the encoder checks are
:mod:`posterforge.video.codecs`.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError
from posterforge.video.codecs import check_codec
from posterforge.video.colour import hdr_reason, to_rgb

if TYPE_CHECKING:
    import av

__all__ = ["Damage", "Probe", "Problem", "VideoError", "check_codec", "decode", "probe", "to_rgb"]

# decode errors in a row after which a damaged input is given up
MAX_BAD_PACKETS_IN_A_ROW = 100


class Problem(StrEnum):
    """Why a file is no video that can be read: lets each command word it for its users."""

    UNREADABLE = "unreadable"  # FFmpeg cannot open it (``cause`` says why)
    NO_VIDEO = "no-video"  # no video stream (cover pictures do not count)
    NO_DECODER = "no-decoder"  # no decoder for it, or no picture size
    NO_FRAME = "no-frame"  # no frame decodes
    HDR = "hdr"  # a PQ or HLG transfer: refused, not shown wrong


class VideoError(PosterforgeError):
    """A video input that cannot be translated; ``reason`` is one line."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        reason: str,
        *,
        problem: Problem | None = None,
        cause: BaseException | None = None,
    ):
        self.path = Path(path)
        self.reason = " ".join(reason.split())
        self.problem, self.cause = problem, cause
        super().__init__(f"{self.path}: {self.reason}")


def _ff_reason(e: BaseException) -> str:
    """FFmpeg's message without the file name PyAV appends."""
    text = getattr(e, "strerror", None) or str(e) or e.__class__.__name__
    return text.split(": '")[0].strip() if isinstance(text, str) else str(text)


# --- probing --------------------------------------------------------------------------------------


@dataclass
class Probe:
    """What a video holds, read from its header and (unless told not to) its first frame."""

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
    format: str = ""  # FFmpeg's name of the container ("matroska,webm", "image2", ...)
    shown_width: int = 0  # the stored width times the sample aspect ratio (the stream's or codec's)
    stream_duration: float | None = None  # seconds, the video stream's own header field
    container_duration: float | None = None  # seconds, the container's (may be an estimate)

    @property
    def upright(self) -> tuple[int, int]:
        """(W, H) as displayed."""
        return (
            (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)
        )


def open_input(path: Path) -> av.container.InputContainer:
    import av

    from posterforge.images import not_regular

    if (why := not_regular(path)) is not None:  # a FIFO would block the open forever
        raise VideoError(path, why, problem=Problem.UNREADABLE)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoError(path, _open_reason(e), problem=Problem.UNREADABLE, cause=e) from None


def _open_reason(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, IsADirectoryError):
        return "a folder, not a video"
    if isinstance(e, PermissionError):
        return "permission denied"
    return f"not a video FFmpeg can read ({_ff_reason(e)})"


def video_stream(container: Any, path: Path) -> Any:
    """The video stream to read: FFmpeg's best one, cover pictures (a music file's) not counted."""
    pictures = [s for s in container.streams.video if not _cover(s)]
    if not pictures:
        kinds = sorted({"cover picture" if _cover(s) else s.type for s in container.streams})
        reason = "no video stream: no streams at all (empty, or cut short?)"
        if kinds:
            reason = f"no video stream (only {', '.join(kinds)})"
        raise VideoError(path, reason, problem=Problem.NO_VIDEO)
    best = container.streams.best("video")
    stream = next((s for s in pictures if best is not None and s.index == best.index), pictures[0])
    if stream.codec_context is None:
        raise VideoError(
            path,
            "unsupported video codec: this FFmpeg has no decoder for it",
            problem=Problem.NO_DECODER,
        )
    return stream


def _cover(stream: Any) -> bool:
    import av

    pic = getattr(av.stream.Disposition, "attached_pic", 0)
    return bool(pic and stream.disposition & pic)


def probe(path: Path, *, first_frame: bool = True) -> Probe:
    """Open ``path``, check it holds a video stream that decodes, and describe it. Raises
    :class:`VideoError` with one line (and its :class:`Problem`) for a file that is no video,
    holds no video stream, uses a codec this FFmpeg cannot decode, or whose first frame does not
    decode. Without ``first_frame`` nothing is decoded: the picture's size and colour are the
    header's, and a stream whose frames do not decode passes."""
    with open_input(path) as container:
        stream = video_stream(container, path)
        if first_frame:
            stream.thread_type = "AUTO"
            info = _described(path, container, stream, _first_frame(container, stream, path))
        else:
            ctx = stream.codec_context
            if not ctx.width or not ctx.height:
                reason = "its video stream has no picture size"
                raise VideoError(path, reason, problem=Problem.NO_DECODER)
            info = _described(path, container, stream, None)
    if (why := hdr_reason(info.color_trc)) is not None:
        raise VideoError(path, why, problem=Problem.HDR)
    return info


def _first_frame(container: Any, stream: Any, path: Path) -> Any:
    import av

    damage = Damage()
    try:
        for frame in decode(container, stream, damage):
            return frame
    except av.FFmpegError as e:
        damage.error(_ff_reason(e))
    if damage.packets == 0:
        raise VideoError(path, "the video stream holds no frames", problem=Problem.NO_FRAME)
    why = damage.first_error or damage.stopped
    reason = "no frame decodes" + (f" ({why})" if why else "")
    raise VideoError(path, reason, problem=Problem.NO_FRAME)


def _described(path: Path, container: Any, stream: Any, first: Any | None) -> Probe:
    """The :class:`Probe` of ``stream``; the picture's own facts from ``first`` when decoded."""
    ctx = stream.codec_context
    pic = first if first is not None else ctx
    tb = stream.time_base or Fraction(1, 90000)
    end_pts = None
    if stream.duration and stream.time_base:
        end_pts = (stream.start_time or 0) + stream.duration
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    duration, exact = declared_duration(container, stream)
    sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
    shown = max(1, round(pic.width * sar)) if sar and sar > 0 and sar != 1 else pic.width
    copied, others = _other_streams(container, stream)
    rotation, start = 0, 0.0
    matrix: tuple[int, ...] | None = None
    if first is not None:
        rotation = upright_turns(first) * 90
        matrix, start = display_matrix(first), float((first.pts or 0) * tb)
    own = None if stream.duration is None or stream.time_base is None else stream.duration
    return Probe(
        path=path,
        width=pic.width,
        height=pic.height,
        time_base=tb,
        rate=Fraction(rate),
        frames=int(stream.frames or (round(duration * rate) if duration else 0)),
        duration=duration,
        duration_exact=exact,
        start=start,
        end_pts=end_pts,
        rotation=rotation,
        display_matrix=matrix,
        color_range=int(pic.color_range),
        colorspace=int(pic.colorspace),
        color_primaries=int(pic.color_primaries),
        color_trc=int(pic.color_trc),
        sample_aspect_ratio=stream.sample_aspect_ratio or None,
        copied=copied,
        others=others,
        format=container.format.name,
        shown_width=shown,
        stream_duration=None if own is None else float(own * stream.time_base),
        container_duration=None if container.duration is None else container.duration / 1_000_000,
    )


def _other_streams(container: Any, stream: Any) -> tuple[list[int], list[str]]:
    """The audio and subtitle streams to copy, and the others described (left out)."""
    copied, others = [], []
    for s in container.streams:
        if s.index == stream.index:
            continue
        if s.type in ("audio", "subtitle"):
            copied.append(s.index)
        else:
            others.append(f"{s.type} stream #{s.index}")
    return copied, others


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


def upright_turns(frame: Any) -> int:
    """Counter-clockwise quarter turns (0-3) that show ``frame`` upright, read from its display
    matrix: ``np.rot90(rgb, k)`` or ``torch.rot90(x, k, (-2, -1))`` with it. The one reading of
    rotation, for translation (through :class:`Probe`) and ``frames`` alike."""
    return round(frame.rotation / 90.0) % 4 if frame.rotation else 0


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
