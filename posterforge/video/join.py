"""The join of a translated video: the segments' packets and the input's audio and subtitle
packets remuxed, interleaved by time, into one file (nothing re-encoded), written atomically.

The video keeps the input's time stamps in the input's time base (a segment whose container
counts in another is converted back), its stream tags and its frame rate; a timecode tag is kept
(MOV and MP4 rebuild their timecode track from it), or left out with a note when the output
container cannot hold it at this frame rate.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from posterforge.atomic import create_temp, fsync_file
from posterforge.errors import PosterforgeError

# container metadata the muxer writes itself
_OWN_TAGS = frozenset({"encoder", "major_brand", "minor_version", "compatible_brands", "duration"})


def join(
    segments: list[tuple[Path, int]],
    source: Path | None,
    copied: list[int],
    dest: Path,
    muxer: str,
    *,
    rate: Fraction | None = None,
) -> list[str]:
    """Remux the video packets of ``segments`` (each with the time stamp its first frame must
    have, in the input video's time base) and the packets of the ``copied`` streams of
    ``source`` (audio, subtitles), interleaved by time, into ``dest``, atomically. Returns notes
    about what the output container cannot hold (left out). ``source`` None: a video made here
    (``posterforge morph``), with nothing to copy, at the frame ``rate``."""
    import av

    if source is None:
        return _join(segments, None, [], dest, muxer, keep_timecode=False, rate=rate)
    try:
        return _join(segments, source, copied, dest, muxer, keep_timecode=True)
    except av.FFmpegError as e:
        timecode = _timecode(source)
        if timecode is None:
            raise
        notes = _join(segments, source, copied, dest, muxer, keep_timecode=False)
        reason = _ff_line(e)
        return [f"timecode {timecode} left out: {muxer} cannot write it ({reason})", *notes]


def _join(
    segments: list[tuple[Path, int]],
    source: Path | None,
    copied: list[int],
    dest: Path,
    muxer: str,
    *,
    keep_timecode: bool,
    rate: Fraction | None = None,
) -> list[str]:
    import av

    from posterforge.video.encode import exact_times
    from posterforge.video.io import video_stream

    with av.open(str(segments[0][0])) as first:
        tb = first.streams.video[0].time_base
    fd, tmp = create_temp(dest)
    os.close(fd)
    notes: list[str] = []
    try:
        opened = (
            contextlib.nullcontext(None)
            if source is None
            else av.open(str(source), metadata_errors="ignore")
        )
        with (
            opened as src,
            av.open(str(tmp), "w", format=muxer, options=exact_times(muxer, tb)) as out,
        ):
            with av.open(str(segments[0][0])) as first:
                video = out.add_stream_from_template(first.streams.video[0], opaque=True)
            if src is not None:
                source_video = video_stream(src, source)
                _from_source(src, source_video, video, keep_timecode)
                rate = source_video.average_rate or source_video.guessed_rate
            # the template's stream carries no frame rate: a timecode track is counted in it
            if rate:
                with contextlib.suppress(AttributeError, TypeError, ValueError):
                    video.codec_context.framerate = rate
            streams = _add_copied(out, src, copied, notes) if src is not None else {}
            try:
                out.start_encoding()
            except (ValueError, av.FFmpegError) as e:
                raise PosterforgeError(f"cannot write {dest}: {e}") from None
            video_tb = source_video.time_base if src is not None else tb
            packets = heapq.merge(
                _video_packets(segments, video, video_tb),
                _copied_packets(src, streams),
                key=lambda kp: kp[0],
            )
            for _, packet in packets:
                out.mux(packet)
        fsync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return notes


def _from_source(src: Any, source_video: Any, video: Any, keep_timecode: bool) -> None:
    """The input's stream tags, disposition, container tags and chapters, onto the output."""
    import av

    tags = _stream_tags(source_video)
    if not keep_timecode:  # FFmpeg reads tags whatever their case (MKV's: TIMECODE)
        tags = {k: v for k, v in tags.items() if k.lower() != "timecode"}
    video.metadata.update(tags)
    _copy_disposition(source_video, video)
    out = video.container
    out.metadata.update({k: v for k, v in src.metadata.items() if k.lower() not in _OWN_TAGS})
    try:
        if chapters := src.chapters():
            out.set_chapters(chapters)
    except (AttributeError, ValueError, av.FFmpegError):
        pass


def _add_copied(out: Any, src: Any, copied: list[int], notes: list[str]) -> dict[int, Any]:
    import av

    streams: dict[int, Any] = {}
    for index in copied:
        s = src.streams[index]
        try:
            o = out.add_stream_from_template(s, opaque=True)
        except (ValueError, av.FFmpegError) as e:
            notes.append(f"{s.type} stream #{index} ({_name(s)}) left out: {e}")
            continue
        o.metadata.update(_stream_tags(s))
        _copy_disposition(s, o)
        streams[index] = o
    return streams


def copyable(source: Path, copied: list[int], muxer: str) -> tuple[list[int], list[str]]:
    """The streams of ``copied`` that the ``muxer`` can hold, and a note for each it cannot;
    found before any work (a header written to nowhere)."""
    import av

    from posterforge.video.codecs import Sink

    kept, notes = [], []
    with av.open(str(source), metadata_errors="ignore") as src:
        for index in copied:
            s = src.streams[index]
            try:
                with av.open(Sink(), "w", format=muxer) as trial:
                    trial.add_stream_from_template(s, opaque=True)
                    trial.start_encoding()
            except (ValueError, av.FFmpegError) as e:
                notes.append(f"{s.type} stream #{index} ({_name(s)}) left out: {e}")
                continue
            kept.append(index)
    return kept, notes


def _video_packets(
    segments: list[tuple[Path, int]], stream: Any, time_base: Fraction
) -> Iterator[tuple[tuple[Fraction, int], Any]]:
    """The packets of every segment in order, with time stamps that only go forward. A segment
    whose container moved its time stamps (a start rounded to its timescale) is moved back so
    that its first frame has the time stamp it was encoded with (``first_pts``, counted in the
    input's ``time_base``; the segment's own may differ)."""
    import av

    last_dts: Fraction | None = None
    order = itertools.count()
    for path, first_pts in segments:
        with av.open(str(path)) as seg:
            vs = seg.streams.video[0]
            packets = [p for p in seg.demux(vs) if p.size and p.dts is not None]
            first = round(first_pts * time_base / vs.time_base)
            shift = first - min((p.pts for p in packets if p.pts is not None), default=first)
            for packet in packets:
                if shift:
                    packet.dts += shift
                    if packet.pts is not None:
                        packet.pts += shift
                tb = packet.time_base
                dts = packet.dts * tb
                if last_dts is not None and dts <= last_dts:
                    # independent encoders may start a segment's decode times one tick early
                    bumped = int(last_dts / tb) + 1
                    if packet.pts is not None and bumped > packet.pts:
                        raise PosterforgeError(
                            f"{path.name}: cannot order its packets after the last segment's"
                        )
                    packet.dts = bumped
                    dts = bumped * tb
                last_dts = dts
                packet.stream = stream
                yield (dts, next(order)), packet


def _copied_packets(src: Any, streams: dict[int, Any]) -> Iterator[tuple[Any, Any]]:
    if not streams:
        return
    order = itertools.count()
    sources = [src.streams[i] for i in streams]
    last: Fraction | None = None
    for packet in src.demux(sources):
        if packet.size == 0 or packet.dts is None:
            continue
        index = packet.stream.index
        # the merge needs a key that never goes back; the muxer interleaves the rest exactly
        when = packet.dts * packet.time_base
        last = when if last is None else max(when, last)
        packet.stream = streams[index]
        yield (last, next(order)), packet


def _timecode(source: Path) -> str | None:
    import av

    from posterforge.video.io import video_stream

    with av.open(str(source), metadata_errors="ignore") as src:
        tags = video_stream(src, source).metadata
    return next((v for k, v in tags.items() if k.lower() == "timecode"), None)


def _ff_line(e: BaseException) -> str:
    """FFmpeg's last log line when PyAV gives one, else its error without the file name."""
    text = str(e)
    if "last error log:" in text:
        return text.rsplit("]", 1)[-1].strip() or text
    return text.split(": '")[0].strip()


def _stream_tags(stream: Any) -> dict[str, str]:
    return {k: v for k, v in stream.metadata.items() if k.lower() not in _OWN_TAGS}


def _copy_disposition(src: Any, dst: Any) -> None:
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        dst.disposition = src.disposition


def _name(stream: Any) -> str:
    ctx = stream.codec_context
    return ctx.name if ctx is not None else "unknown codec"
