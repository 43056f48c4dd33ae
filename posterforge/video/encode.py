"""The encoder of one segment: RGB frames in (converted back to the input's colour matrix and
range, tagged with its colour and display matrix), packets muxed with their exact times."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.video.colour import PIX_FMT, to_yuv
from posterforge.video.containers import LOSSLESS_VCODEC

if TYPE_CHECKING:
    import numpy as np


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
        self.lossless = spec.vcodec == LOSSLESS_VCODEC  # an animation's segments (exact RGB)
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
        stream.pix_fmt = "rgb24" if self.lossless else PIX_FMT
        stream.time_base = spec.time_base
        ctx.time_base = spec.time_base
        if not self.lossless:  # RGB tagged with a YUV range would be scaled when decoded
            ctx.color_range = spec.color_range
            ctx.colorspace = spec.colorspace
            ctx.color_primaries = spec.color_primaries
            ctx.color_trc = spec.color_trc
        if spec.sample_aspect_ratio:
            ctx.sample_aspect_ratio = spec.sample_aspect_ratio
        options = {"qp": "0"} if self.lossless else {}  # x264rgb at qp 0: exact RGB
        if spec.crf is not None:
            options["crf"] = str(spec.crf)
            if spec.vcodec.startswith("libvpx"):
                ctx.bit_rate = 0  # constant quality, no bitrate target
        stream.options = options
        if spec.display_matrix is not None:
            stream.set_display_matrix(spec.display_matrix)
        return stream

    def encode(self, rgb: np.ndarray, pts: int, duration: int | None) -> None:
        spec = self.spec
        if self.lossless:
            import av

            out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        else:
            out = to_yuv(rgb, spec.colorspace, spec.color_range)
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
    """Muxer options that keep a track's times exact: MP4 and MOV write the start in an edit list
    counted in the movie's timescale (1/1000 s by default, which rounds 1/24 s steps), and would
    pick a track timescale of their own (at least 1/10000 s) for a coarser time base."""
    if muxer in ("mp4", "mov") and time_base.numerator == 1 and time_base.denominator < 2**31:
        scale = str(time_base.denominator)
        return {"movie_timescale": scale, "video_track_timescale": scale}
    return {}


def even(n: int) -> int:
    """4:2:0 chroma needs even sides."""
    return max(2, n - n % 2)


def frame_step(spec_time_base: Fraction, rate: Fraction) -> int:
    """One frame's duration in time-base units (for frames that carry no time stamp)."""
    return max(1, math.floor(1 / (rate * spec_time_base) + 0.5)) if rate else 1
