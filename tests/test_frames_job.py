"""The typed job of ``posterforge frames``, the one probe it shares with video translation, and
the records the video package yields (issue 20)."""

from __future__ import annotations

import dataclasses
import doctest
import json
import wave
from fractions import Fraction

import pytest

import posterforge
from posterforge.errors import PosterforgeError
from posterforge.jobs import frames as frames_job
from posterforge.jobs.frames import FrameOptions, FrameSettings, FramesJob
from posterforge.records import Record, Status
from posterforge.video.films import FilmError, open_film
from posterforge.video.io import Problem, VideoError, probe
from posterforge.video.records import FilmStatus, FrameRecord, VideoRecord

from .test_frames import blobs, make_film, moving


def test_job_doctests():
    assert doctest.testmod(frames_job).failed == 0


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"mode": "shots"}, "invalid mode 'shots': use every, keyframes, scenes"),
        ({"every": 0.0}, "invalid --every 0.0: use a number of seconds > 0"),
        ({"every": float("nan")}, "invalid --every nan: use a number of seconds > 0"),
        ({"scene_threshold": 1.0}, "invalid --scene-threshold 1.0: use a number between 0 and 1"),
        ({"size": "0x5"}, "invalid --size '0x5': use N (shorter side) or WxH, e.g. 256x256"),
        ({"dedupe": 65}, "invalid --dedupe 65: use 0 to 64 (bits)"),
        ({"max_frames": 0}, "invalid --max 0: use 1 or more"),
        ({"fmt": "gif"}, "invalid --format 'gif': use png, jpg, webp"),
        ({"quality": 101}, "invalid --quality 101: use 1 to 100"),
        ({"films": ()}, "no films given"),
    ],
)
def test_a_job_is_checked_when_made(tmp_path, fields, line):
    made = {"films": (tmp_path / "a.mkv",), "out": tmp_path / "out", **fields}
    with pytest.raises(PosterforgeError) as e:
        FramesJob(**made)
    assert str(e.value).startswith(line) and "\n" not in str(e.value)


def test_a_job_takes_paths_and_refuses_a_file_as_out(tmp_path):
    job = FramesJob(films=[str(tmp_path / "a.mkv")], out=str(tmp_path / "out"), mode="scenes")
    assert job.films == (tmp_path / "a.mkv",) and job.out == tmp_path / "out"
    assert isinstance(job, FrameOptions) and job.settings()["mode"] == "scenes"
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.mode = "every"  # type: ignore[misc]
    (tmp_path / "file").write_text("x")
    with pytest.raises(PosterforgeError, match=r"^--out .*file: not a folder$"):
        FramesJob(films=["a.mkv"], out=tmp_path / "file")


def test_the_api_keywords_are_the_jobs_fields(tmp_path):
    fields = {f.name for f in dataclasses.fields(FramesJob)} - {"films", "out"}
    assert set(FrameSettings.__annotations__) == fields
    with pytest.raises(TypeError, match="nosuch"):
        posterforge.frames(["a.mkv"], tmp_path / "out", nosuch=1)  # type: ignore[call-arg]
    with pytest.raises(PosterforgeError, match="invalid --every"):
        posterforge.frames(["a.mkv"], tmp_path / "out", every=-1.0)


def test_the_api_runs_the_job_and_overwrite_recuts(tmp_path):
    film = make_film(tmp_path / "film.mkv", moving(20))
    first = posterforge.frames([film], tmp_path / "out", every=1.0)
    assert [r.status for r in first] == [Status.OK, Status.OK, FilmStatus.DONE]
    with pytest.raises(PosterforgeError, match=r"every 1.0, now 0.5.*--overwrite"):
        posterforge.frames([film], tmp_path / "out", every=0.5)
    again = posterforge.frames([film], tmp_path / "out", every=0.5, overwrite=True)
    assert [r.status for r in again][-1] == FilmStatus.DONE and len(again) == 5


def test_one_probe_describes_a_film_for_frames_and_translate(tmp_path):
    path = make_film(tmp_path / "dvd.mkv", blobs(10, size=(32, 48)), sar=Fraction(2, 1))
    header, decoded = probe(path, first_frame=False), probe(path)
    assert (header.width, header.height, header.shown_width) == (32, 48, 64)
    assert (decoded.width, decoded.height, decoded.shown_width) == (32, 48, 64)
    assert header.format == decoded.format and "matroska" in header.format
    film = open_film(path)
    assert (film.width, film.height, film.stored_width, film.name) == (64, 48, 32, "dvd")
    assert film.trust_duration and film.duration == pytest.approx(1.0, abs=0.15)
    assert film.bytes == path.stat().st_size


def test_a_probe_problem_is_worded_for_each_command(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a film\n" * 100)
    with wave.open(str(tmp_path / "sound.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    cases = [
        (text, Problem.UNREADABLE, "not a video FFmpeg can read", "not a video, or one cut short"),
        (tmp_path / "sound.wav", Problem.NO_VIDEO, "no video stream (only audio)",
         "no video stream (audio only?)"),
    ]  # fmt: skip
    for path, problem, translate_words, frames_words in cases:
        with pytest.raises(VideoError) as e:
            probe(path)
        assert e.value.problem is problem and translate_words in e.value.reason
        with pytest.raises(FilmError) as f:
            open_film(path)
        assert str(f.value) == f"{path}: {f.value.reason}" and frames_words in f.value.reason


def test_records_are_told_apart_by_class_and_print_as_before():
    video = VideoRecord("in.mp4", "out.mp4", Status.OK, frames=3, seconds=0.5)
    image = Record("in.png", "out.png", Status.OK)
    assert isinstance(video, VideoRecord) and not isinstance(image, VideoRecord)
    assert json.loads(json.dumps(video.as_dict())) == {
        "input": "in.mp4", "output": "out.mp4", "status": "ok", "error": None, "ms": 0.0,
        "frames": 3, "seconds": 0.5, "note": None,
    }  # fmt: skip
    frame = FrameRecord("f.mkv", 1.5, "o/f.png", Status.SKIPPED, (64, 48), "00" * 8)
    line = json.dumps(frame.as_dict())
    assert line.startswith(
        '{"film": "f.mkv", "time": 1.5, "output": "o/f.png", "status": "skipped"'
    )
    assert json.loads(line)["size"] == [64, 48]


def test_video_translate_keeps_its_constructor():
    import inspect

    from posterforge.video.translate import VideoRun

    params = inspect.signature(VideoRun).parameters
    assert list(params)[:2] == ["pairs", "out"]
    keywords = ["engine", "batch_size", "size", "vcodec", "crf", "overwrite", "notify", "on_frames"]
    assert [p for p in params if params[p].kind is inspect.Parameter.KEYWORD_ONLY] == keywords
