"""Colour conversion both ways with the input's own matrix (BT.601, BT.709, ...) and range
(limited or full), so the pictures look as they did. PyAV frames in, RGB ``(H, W, 3)`` uint8 out,
and back to the encoder's YUV."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# AVColorSpace (what a frame is tagged with) -> swscale's SWS_CS_* (what converts it)
SWS_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
SWS_DEFAULT = 5  # BT.601, what FFmpeg assumes for an untagged frame
FULL_RANGE = 2  # AVCOL_RANGE_JPEG
LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG
PIX_FMT = "yuv420p"


def to_rgb(frame: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """A decoded frame as RGB ``(H, W, 3)`` uint8, converted with its own matrix and range;
    scaled to ``size`` (W, H) when given (a stream whose frame size changes midway)."""
    w, h = size if size is not None else (None, None)
    return frame.to_ndarray(
        width=w,
        height=h,
        format="rgb24",
        src_colorspace=SWS_COLORSPACE.get(int(frame.colorspace), SWS_DEFAULT),
        src_color_range=FULL_RANGE if int(frame.color_range) == FULL_RANGE else LIMITED_RANGE,
        dst_color_range=FULL_RANGE,
    )


def to_yuv(rgb: np.ndarray, colorspace: int, color_range: int) -> Any:
    """RGB ``(H, W, 3)`` uint8 as a :data:`PIX_FMT` frame in the given matrix and range."""
    import av

    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(
        format=PIX_FMT,
        src_color_range=FULL_RANGE,
        dst_colorspace=SWS_COLORSPACE.get(colorspace, SWS_DEFAULT),
        dst_color_range=FULL_RANGE if color_range == FULL_RANGE else LIMITED_RANGE,
    )
