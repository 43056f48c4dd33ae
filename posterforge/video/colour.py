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
RGB_MATRIX, BT709, SMPTE170M = 0, 1, 6  # AVColorSpace
# transfers of HDR video: 8-bit SDR pixels tagged with them would be shown wrong
HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}


def written_tags(colorspace: int, color_range: int) -> tuple[int, int]:
    """The matrix and range of the YUV that :func:`to_yuv` writes for an input tagged so, which
    the output is tagged with: the input's own where swscale converts with it; BT.709 limited for
    RGB input (FFV1, x264rgb: our pixels are YUV, never RGB); BT.601 for a matrix swscale lacks
    (it converts with that) or none (read and written as BT.601: an H.264 stream without a matrix
    tag has no place for its range either, so a limited range came out "unknown")."""
    if colorspace == RGB_MATRIX:
        return BT709, LIMITED_RANGE
    matrix = colorspace if colorspace in SWS_COLORSPACE else SMPTE170M
    return matrix, FULL_RANGE if color_range == FULL_RANGE else LIMITED_RANGE


def hdr_reason(color_trc: int) -> str | None:
    """Why a video with this transfer is refused (HDR), or None."""
    name = HDR_TRANSFERS.get(color_trc)
    if name is None:
        return None
    return (
        f"HDR video ({name} transfer) is not supported: the models see 8-bit SDR pictures; "
        "tone-map it to SDR first (ffmpeg -vf zscale=t=linear,tonemap=hable,"
        "zscale=p=bt709:t=bt709:m=bt709,format=yuv420p)"
    )


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
