"""Which encoders this FFmpeg build has and which containers hold them: checked before any work,
one line naming the option on a problem. PyAV is imported inside functions only."""

from __future__ import annotations

from posterforge.errors import PosterforgeError

# CRF per encoder: the scale's top and our default (libx264's 18 is visually lossless)
CRF_RANGE = {"libx264": 51, "libx265": 51}
CRF_DEFAULT = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "libsvtav1": 28, "libaom-av1": 28}


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
        if not fits(vcodec, muxer):
            raise PosterforgeError(
                f"--vcodec {vcodec} cannot be written into {suffix} files; "
                f"use {_fitting(muxer)}, or another output suffix"
            )
    return crf


class Sink:
    """A write-only file object that keeps nothing (for trying a muxer's header)."""

    def write(self, data: bytes) -> int:
        return len(data)

    def seek(self, *args: int) -> int:
        return 0

    def tell(self) -> int:
        return 0


def fits(vcodec: str, muxer: str) -> bool:
    """Whether the ``muxer`` takes a stream of the encoder ``vcodec`` (a header to nowhere)."""
    import av

    try:
        with av.open(Sink(), "w", format=muxer) as probe:
            probe.add_stream(vcodec, rate=24)
    except ValueError:
        return False
    return True


def _known_encoders() -> list[str]:
    import av

    wanted = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1", "mpeg4")
    return [name for name in wanted if name in av.codecs_available]


def _fitting(muxer: str) -> str:
    fitting = [name for name in _known_encoders() if fits(name, muxer)]
    return "--vcodec " + " or ".join(fitting) if fitting else "another --vcodec"
