"""translate at the edges (issue 12): terminals and pipes, stdin lists, Ctrl-C, GIFs, one-line
errors before the model loads, output quality and metadata. The command runs in this process
(``inproc``) unless a process is what is tested: then the real thing, a real subprocess on a
real pseudo-terminal, a real shell pipeline, a real SIGINT."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image, ImageCms

from posterforge.api import translate
from posterforge.errors import PosterforgeError
from posterforge.images import FORMATS, decode, encode_atomic
from posterforge.inputs import Job, discover, output_path
from posterforge.sizing import Size

from .conftest import ROOT

FAST = ("--device", "cpu", "--compile", "off")
MAX_SIDE = 16384


def _img(path: Path, w: int = 16, h: int = 16, seed: int = 0, mode: str = "RGB", **save) -> Path:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    if mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **save)
    return path


def _anim_gif(path: Path, frames: int = 3) -> Path:
    ims = [Image.fromarray(np.full((12, 16, 3), 40 * i, np.uint8)) for i in range(frames)]
    path.parent.mkdir(parents=True, exist_ok=True)
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=80, loop=0)
    return path


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "posterforge", "translate", *args]


def _one_line_error(r, *needles: str) -> None:
    """Exit 2, exactly one stderr line, ``posterforge: error: ...`` naming what is wrong."""
    assert r.code == 2, (r.code, r.err)
    assert r.err.count("\n") == 1 and r.err.startswith("posterforge: error: "), r.err
    assert "Traceback" not in r.err
    for needle in needles:
        assert needle in r.err, (needle, r.err)
    assert r.out == ""


def api(tiny_style, inputs, out, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("compile", "off")
    return translate(inputs, out, style=str(tiny_style), **kw)


# --- 1. stdout reaches the pipe whatever stderr is ------------------------------------------------


def _read_pty(master: int, proc: subprocess.Popen, timeout: float = 180) -> bytes:
    """Everything written to the terminal until the process ends (read as it comes, so a full
    terminal buffer never blocks the child)."""
    got = bytearray()
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            got += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=max(1, deadline - time.time()))
    return bytes(got)


@pytest.mark.slow
@pytest.mark.parametrize("sink", ["file", "pipe"])
def test_stdout_carries_exactly_the_records_when_stderr_is_a_terminal(tiny_style, tmp_path, sink):
    for i in range(3):
        _img(tmp_path / "in" / f"{i}.png", seed=i)
    args = _cmd(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-s", str(tiny_style), "--json")
    master, slave = os.openpty()
    out_file = tmp_path / "out.jsonl"
    try:
        with open(out_file, "wb") as f:
            stdout = f if sink == "file" else subprocess.PIPE
            proc = subprocess.Popen(
                [*args, *FAST], stdout=stdout, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT
            )
        os.close(slave)
        if sink == "pipe":  # `| jq`: read stdout as the pty is drained
            terminal = _read_pty(master, proc)
            out_file.write_bytes(proc.stdout.read())
            proc.stdout.close()
        else:
            terminal = _read_pty(master, proc)
    finally:
        os.close(master)
    assert proc.returncode == 0, terminal
    records = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert sorted(Path(r["input"]).name for r in records) == ["0.png", "1.png", "2.png"]
    assert {r["status"] for r in records} == {"ok"}
    text = terminal.decode()
    assert "translating [" in text and "3/3" in text  # the bar was drawn, on the terminal only
    assert '"status"' not in text and "Traceback" not in text
    assert "translated 3, skipped 0, failed 0" in text


def test_records_stay_whole_lines_when_stdout_and_stderr_share_a_terminal(tiny_style, tmp_path):
    for i in range(3):
        _img(tmp_path / "in" / f"{i}.png", seed=i)
    args = _cmd(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-s", str(tiny_style), *FAST)
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT
        )
        os.close(slave)
        terminal = _read_pty(master, proc).decode()
    finally:
        os.close(master)
    assert proc.returncode == 0, terminal
    # what a person sees: each bar draw is erased ("\r" + erase line) before a line is printed
    shown = [re.sub(r".*\r", "", line).replace("\x1b[K", "") for line in terminal.splitlines()]
    for i in range(3):
        assert str(tmp_path / "out" / f"{i}.png") in shown


def test_progress_line_is_cleared_around_lines_on_the_same_terminal():
    from posterforge.cli.output import Lines, ProgressLine

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    lines = Lines(ProgressLine("translating", 2, stream=err))
    out = Tty()
    old = sys.stdout
    sys.stdout = out
    try:
        lines.advance()
        lines.out("a.png")
    finally:
        sys.stdout = old
    assert out.getvalue() == "a.png\n"  # stdout gets exactly its line, never the bar
    # the bar was drawn, erased before the line, and drawn again after it
    assert err.getvalue().count("translating [") == 2 and "\r\x1b[K" in err.getvalue()


# --- 2. NUL-separated stdin and --relative-to --------------------------------------------------


@pytest.mark.slow
def test_null_separated_stdin_and_relative_to_mirror_absolute_paths(inproc, tiny_style, tmp_path):
    root = tmp_path / "shots"
    a = _img(root / "x" / "a.png", seed=1)
    b = _img(root / "y" / "a.png", seed=2)  # same name: flattened, the two would collide
    odd = _img(root / "y" / "new\nline.png", seed=3)  # only NUL separation can carry this name
    listing = b"\0".join(os.fsencode(p) for p in (a, b, odd)) + b"\0"
    out = tmp_path / "out"
    res = inproc("translate", "-", "-0", "--relative-to", str(root), "-o", str(out),
                 "-s", str(tiny_style), "--json", *FAST, stdin=listing)  # fmt: skip
    assert res.code == 0, res.err
    outputs = sorted(json.loads(line)["output"] for line in res.out.splitlines())
    assert outputs == sorted(str(out / r) for r in ("x/a.png", "y/a.png", "y/new\nline.png"))
    assert all(Path(o).is_file() for o in outputs)
    # the same list without --relative-to: named by file name alone, a collision before any work
    res = inproc("translate", "-", "-0", "-o", str(tmp_path / "flat"), "-s", str(tiny_style),
                 stdin=listing)  # fmt: skip
    assert res.code == 2 and "would both write" in res.err
    assert not (tmp_path / "flat").exists()


def test_relative_to_rejects_a_path_outside_it_and_null_needs_stdin(inproc, tiny_style, tmp_path):
    src = _img(tmp_path / "elsewhere" / "a.png")
    (tmp_path / "root").mkdir()
    r = inproc(
        "translate",
        str(src),
        "--relative-to",
        str(tmp_path / "root"),
        "-o",
        str(tmp_path / "o"),
        "-s",
        str(tiny_style),
    )
    _one_line_error(r, str(src), "not inside --relative-to")
    r = inproc("translate", str(src), "-0", "-o", str(tmp_path / "o"), "-s", str(tiny_style))
    _one_line_error(r, "give - as an input")


def test_discover_reads_nul_separated_names_as_bytes(tmp_path):
    raw = b"a.png\0sub/b c.png\0\0bad\xff.png\0last.png"  # not UTF-8, and no final NUL
    stream = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
    jobs = list(discover(["-"], stdin=stream, null=True))
    assert [j.src for j in jobs] == [
        Path("a.png"),
        Path("sub/b c.png"),
        Path(os.fsdecode(b"bad\xff.png")),
        Path("last.png"),
    ]
    assert jobs[1].rel == PurePosixPath("sub/b c.png")
    jobs = list(discover(["-"], stdin=io.StringIO("x.png\0y.png\n\0"), null=True))
    assert [j.src for j in jobs] == [Path("x.png"), Path("y.png\n")]


def test_discover_relative_to_names_files_and_folders_below_it(tmp_path):
    (tmp_path / "r" / "d" / "e").mkdir(parents=True)
    (tmp_path / "r" / "d" / "e" / "f.png").write_bytes(b"x")
    (tmp_path / "r" / "g.png").write_bytes(b"x")
    root = tmp_path / "r"
    stdin = io.StringIO(f"{root / 'g.png'}\n")
    jobs = list(discover([root / "d", "-"], stdin=stdin, relative_to=root))
    assert [j.rel.as_posix() for j in jobs] == ["d/e/f.png", "g.png"]
    jobs = list(discover([root], relative_to=root))  # the folder itself: walked from its top
    assert [j.rel.as_posix() for j in jobs] == ["g.png", "d/e/f.png"]
    with pytest.raises(PosterforgeError, match="not inside --relative-to"):
        list(discover([tmp_path / "x.png"], relative_to=root))


# --- 3. a closed pipe -------------------------------------------------------------------------


def test_a_closed_pipe_ends_quietly_with_sigpipe_status(tiny_style, tmp_path):
    for i in range(12):
        _img(tmp_path / "in" / f"{i:02d}.png", 48, 48, seed=i)
    cmd = " ".join(
        f"'{a}'"
        for a in _cmd(
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "-s",
            str(tiny_style),
            "--json",
            "-b",
            "1",
            *FAST,
        )
    )
    script = f"set -o pipefail; {cmd} 2>err.txt | head -2 >head.txt; echo $? >status.txt"
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True, timeout=300)
    assert (tmp_path / "status.txt").read_text().strip() == "141"  # 128 + SIGPIPE, as `yes | head`
    head = [json.loads(line) for line in (tmp_path / "head.txt").read_text().splitlines()]
    assert [r["status"] for r in head] == ["ok", "ok"]
    err = (tmp_path / "err.txt").read_text()
    assert "Traceback" not in err and "rror" not in err and "failed 1" not in err, err
    for f in (tmp_path / "out").glob("*.png"):  # what was written is whole
        Image.open(f).load()


# --- 4. Ctrl-C ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_prints_one_line_keeps_every_record_and_exits_130(tiny_style, tmp_path):
    n = 60
    for i in range(n):
        _img(tmp_path / "in" / f"{i:03d}.png", 96, 96, seed=i)
    out = tmp_path / "out"
    args = _cmd(str(tmp_path / "in"), "-o", str(out), "-s", str(tiny_style), "--json", "-b", "2")
    proc = subprocess.Popen(
        [*args, *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True
    )
    deadline = time.time() + 180
    while time.time() < deadline and len(list(out.glob("*.png"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and stderr.splitlines()[-1] == lines[0]
    assert re.fullmatch(
        r"posterforge: interrupted: translated \d+, skipped 0, failed 0, \d+ left; "
        r"run the same command again to resume \(outputs that exist are skipped\)",
        lines[0],
    ), lines[0]
    records = [json.loads(line) for line in stdout.splitlines()]
    on_disk = sorted(str(p) for p in out.glob("*.png"))
    assert 3 <= len(on_disk) < n
    # every finished file has its record, and no record claims a file that is not there
    assert sorted(r["output"] for r in records if r["status"] == "ok") == on_disk
    translated = int(re.search(r"translated (\d+)", lines[0])[1])
    assert translated == len(on_disk)


# --- 5. which device and precision -------------------------------------------------------------


@pytest.mark.slow
def test_one_line_says_which_device_and_precision_auto_picked(inproc, tiny_style, tmp_path):
    src = _img(tmp_path / "a.png")
    r = inproc(
        "translate", str(src), "-o", str(tmp_path / "o"), "-s", str(tiny_style), "--compile", "off"
    )
    assert r.code == 0, r.err
    picked = [line for line in r.err.splitlines() if line.startswith("posterforge: device")]
    assert len(picked) == 1
    assert re.fullmatch(
        r"posterforge: device \S+ \((.+, )?picked by --device auto\), precision fp32, "
        r"batch size \d+",
        picked[0],
    ), picked[0]
    r = inproc("translate", str(src), "-o", str(tmp_path / "q"), "-s", str(tiny_style), "-q", *FAST)
    assert r.code == 0 and r.err == ""  # --quiet: not even that line


# --- 6. GIF ------------------------------------------------------------------------------------


def test_gif_decodes_first_frame_palette_and_transparency(tmp_path):
    anim = decode(_anim_gif(tmp_path / "anim.gif"))
    assert anim.frames == 3 and anim.size == (16, 12) and anim.alpha is None
    assert (anim.rgb == 0).all()  # the first frame
    pal = decode(_img(tmp_path / "pal.gif", 10, 8, mode="P"))
    assert pal.frames == 1 and pal.rgb.shape == (8, 10, 3)
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.save(tmp_path / "t.gif", transparency=0)
    t = decode(tmp_path / "t.gif")
    assert t.alpha is not None and t.alpha[0, 0] == 0 and t.alpha[1, 1] == 255


def test_gif_is_walked_and_written_as_png_unless_asked(tmp_path):
    from posterforge.images import output_format

    _anim_gif(tmp_path / "in" / "a.gif", frames=1)  # a still GIF (an animated one is a video)
    [job] = discover([tmp_path / "in"])
    assert job.rel == PurePosixPath("a.gif")
    assert output_path(job, tmp_path / "o") == tmp_path / "o" / "a.png"
    assert output_path(job, tmp_path / "o", "gif") == tmp_path / "o" / "a.gif"
    assert output_format("x.GIF") == "png" and output_format(".jpeg") == "jpg"
    with pytest.raises(PosterforgeError, match=r"suffix '\.dat' names no image format"):
        output_path(Job(Path("x.dat"), PurePosixPath("x.dat")), tmp_path / "o")


@pytest.mark.slow
def test_cli_translates_gifs_an_animated_one_as_a_video(inproc, tiny_style, tmp_path):
    """Issue 23: an animated GIF was its first frame with a note; now its frames make a video."""
    _anim_gif(tmp_path / "in" / "anim.gif")
    _img(tmp_path / "in" / "pal.gif", 10, 8, mode="P")
    sheet = tmp_path / "sheet.gif"
    r = inproc(
        "translate",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "out"),
        "-s",
        str(tiny_style),
        "--contact-sheet",
        str(sheet),
        *FAST,
    )
    assert r.code == 0, r.err
    assert sorted(r.out.split()) == [str(tmp_path / "out" / n) for n in ("anim.mkv", "pal.png")]
    assert Image.open(tmp_path / "out" / "pal.png").format == "PNG"
    assert "only the first is translated" not in r.err, r.err
    import av

    with av.open(str(tmp_path / "out" / "anim.mkv")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3
    assert Image.open(sheet).format == "GIF"  # a GIF contact sheet is written, no traceback
    r = inproc(
        "translate",
        str(tmp_path / "in" / "pal.gif"),
        "-o",
        str(tmp_path / "g"),
        "-s",
        str(tiny_style),
        "-q",
        "--format",
        "gif",
        *FAST,
    )
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "g" / "pal.gif").format == "GIF"


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("sheet.xyz", "suffix '.xyz' names no image format"),
        ("folder", "no suffix"),
        ("dir.png", "is a folder"),
    ],
)
def test_bad_contact_sheet_is_one_line_before_work(inproc, tiny_style, tmp_path, name, needle):
    src = _img(tmp_path / "a.png")
    if name == "dir.png":
        (tmp_path / name).mkdir()
    r = inproc(
        "translate",
        str(src),
        "-o",
        str(tmp_path / "o"),
        "-s",
        str(tiny_style),
        "--contact-sheet",
        str(tmp_path / name),
    )
    _one_line_error(r, "--contact-sheet", needle)
    assert not (tmp_path / "o").exists()


def test_a_gif_and_a_png_of_one_name_collide_before_work(inproc, tiny_style, tmp_path):
    _anim_gif(tmp_path / "in" / "a.gif", frames=1)
    _img(tmp_path / "in" / "a.png")
    r = inproc("translate", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-s", str(tiny_style))
    _one_line_error(r, "a.gif", "a.png", "would both write")


# --- 7. one-line errors before the model loads -------------------------------------------------


def test_out_that_is_a_file_is_refused_before_work(inproc, tiny_style, tmp_path):
    src = _img(tmp_path / "a.png")
    (tmp_path / "afile.txt").write_text("keep me")
    r = inproc("translate", str(src), "-o", str(tmp_path / "afile.txt"), "-s", str(tiny_style))
    _one_line_error(r, f"--out {tmp_path / 'afile.txt'}: is a file, not a folder")
    r = inproc(
        "translate", str(src), "-o", str(tmp_path / "afile.txt" / "sub"), "-s", str(tiny_style)
    )
    _one_line_error(r, f"{tmp_path / 'afile.txt'} is a file, not a folder")
    assert (tmp_path / "afile.txt").read_text() == "keep me"


def test_missing_input_is_a_usage_error(inproc, tiny_style, tmp_path):
    _img(tmp_path / "a.png")
    r = inproc(
        "translate",
        str(tmp_path / "a.png"),
        str(tmp_path / "nope.png"),
        "-o",
        str(tmp_path / "o"),
        "-s",
        str(tiny_style),
    )
    _one_line_error(r, f"{tmp_path / 'nope.png'}: no such file or folder")
    assert not (tmp_path / "o").exists()


def test_size_is_bounded_and_checked_against_memory(inproc, tiny_style, tmp_path):
    src = _img(tmp_path / "a.png")
    base = ("translate", str(src), "-o", str(tmp_path / "o"), "-s", str(tiny_style))
    r = inproc(*base, "--size", "100000")
    _one_line_error(r, "invalid size '100000'", f"at most {MAX_SIDE} pixels per side")
    r = inproc(*base, "--size", f"{MAX_SIDE}x{MAX_SIDE}", "--batch-size", "1000000")
    _one_line_error(r, f"--size {MAX_SIDE}x{MAX_SIDE}", "GiB", "memory available")
    with pytest.raises(PosterforgeError, match=r"at least 3\.0 GiB, more than the 0\.5 GiB"):
        Size.parse("16384").check_memory(1, available=2**29)
    Size.parse("256x128").check_memory(8, available=2**30)  # fits: no error
    with pytest.raises(PosterforgeError, match="at most"):
        Size.parse(f"{MAX_SIDE + 1}x10")


def test_no_images_found_exits_non_zero_and_says_why(inproc, tiny_style, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    r = inproc(
        "translate", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "-s", str(tiny_style)
    )
    _one_line_error(r, "no images found in the inputs", "ends in .bmp .gif .jpeg")
    # the only images are the outputs of an earlier run, inside --out
    _img(tmp_path / "frames" / "styled" / "a.png")
    r = inproc(
        "translate",
        str(tmp_path / "frames"),
        "-o",
        str(tmp_path / "frames" / "styled"),
        "-s",
        str(tiny_style),
    )
    _one_line_error(r, "no images found", "the only 1 image(s) are inside --out")
    r = inproc("translate", "-", "-o", str(tmp_path / "o"), "-s", str(tiny_style), stdin="")
    _one_line_error(r, "no paths were read from stdin")


@pytest.mark.slow
def test_an_empty_shard_is_not_an_error(inproc, tiny_style, tmp_path):
    _img(tmp_path / "in" / "a.png")
    results = [
        inproc(
            "translate",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "o"),
            "-s",
            str(tiny_style),
            "--shard",
            f"{k}/2",
            *FAST,
        )
        for k in (1, 2)
    ]
    assert [r.code for r in results] == [0, 0], [r.err for r in results]
    assert sum("holds none of the inputs" in r.err for r in results) == 1


# --- 8. quality and metadata -------------------------------------------------------------------


@functools.cache
def _srgb() -> bytes:
    """An sRGB profile (made once: its header holds the time it was made)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _photo(path: Path, orientation: int = 6, dpi=(300, 150), **save) -> Path:
    """A JPEG 24 wide, 16 high as stored, with an sRGB profile, EXIF and DPI."""
    arr = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "Canon"
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, exif=exif.tobytes(), icc_profile=_srgb(), dpi=dpi, **save)
    return path


def test_decode_keeps_metadata_with_orientation_reset(tmp_path):
    from posterforge.images import Metadata

    d = decode(_photo(tmp_path / "p.jpg"))
    assert d.size == (16, 24)  # turned upright
    assert d.metadata.icc_profile == _srgb()
    exif = Image.Exif()
    exif.load(d.metadata.exif)
    assert exif[0x0112] == 1 and exif[0x010F] == "Canon"
    assert d.metadata.dpi == (150.0, 300.0)  # x and y swap with the 90-degree turn
    cmyk = bytearray(_srgb())
    cmyk[16:20] = b"CMYK"  # a profile for another colour space than the RGB pixels
    Image.new("RGB", (4, 4)).save(tmp_path / "c.jpg", icc_profile=bytes(cmyk))
    assert decode(tmp_path / "c.jpg").metadata.icc_profile is None
    plain = decode(_img(tmp_path / "plain.png"))
    assert plain.metadata == Metadata()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_encode_writes_the_metadata_each_format_holds(tmp_path, name):
    from posterforge.images import Metadata

    meta = Metadata(icc_profile=_srgb(), exif=Image.Exif().tobytes(), dpi=(300.0, 300.0))
    tags = Image.Exif()
    tags[0x010F] = "Canon"
    tags[0x0112] = 1
    meta = Metadata(icc_profile=meta.icc_profile, exif=tags.tobytes(), dpi=meta.dpi)
    rgb = np.zeros((8, 8, 3), np.uint8)
    path = tmp_path / f"x{FORMATS[name].suffix}"
    encode_atomic(rgb, path, metadata=meta)
    im = Image.open(path)
    holds = FORMATS[name].metadata
    assert (im.info.get("icc_profile") == _srgb()) == ("icc_profile" in holds)
    assert (im.getexif().get(0x010F) == "Canon") == ("exif" in holds)
    if "dpi" in holds:
        assert [round(v) for v in im.info["dpi"]] == [300, 300]


def test_translate_carries_metadata_by_default_and_not_when_told(tiny_style, tmp_path):
    src = _photo(tmp_path / "in" / "p.jpg")
    [rec] = api(tiny_style, [src], tmp_path / "keep")
    out = Image.open(rec.output)
    assert out.size == (16, 24)
    assert out.info.get("icc_profile") == _srgb()
    assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "Canon"
    assert out.info["dpi"] == (150, 300)
    [rec] = api(tiny_style, [src], tmp_path / "png", fmt="png")
    out = Image.open(rec.output)
    assert out.info.get("icc_profile") == _srgb() and out.getexif()[0x010F] == "Canon"
    [rec] = api(tiny_style, [src], tmp_path / "strip", metadata=False)
    out = Image.open(rec.output)
    assert "icc_profile" not in out.info and 0x010F not in out.getexif()


def test_quality_applies_to_jpeg_and_webp(tiny_style, tmp_path):
    src = _img(tmp_path / "in" / "a.png", 64, 64)
    sizes = {}
    for fmt in ("jpg", "webp"):
        for q in (20, 95):
            [rec] = api(tiny_style, [src], tmp_path / f"{fmt}{q}", fmt=fmt, quality=q)
            sizes[fmt, q] = Path(rec.output).stat().st_size
        assert sizes[fmt, 20] < sizes[fmt, 95], sizes
    with pytest.raises(PosterforgeError, match="invalid quality"):
        api(tiny_style, [src], tmp_path / "bad", quality=0)


@pytest.mark.slow
def test_cli_quality_is_checked_before_work(inproc, tiny_style, tmp_path):
    src = _img(tmp_path / "a.png")
    r = inproc(
        "translate", str(src), "-o", str(tmp_path / "o"), "-s", str(tiny_style), "--quality", "101"
    )
    _one_line_error(r, "invalid --quality 101: use 1 to 100")
    r = inproc(
        "translate",
        str(src),
        "-o",
        str(tmp_path / "o"),
        "-s",
        str(tiny_style),
        "-q",
        "-f",
        "jpg",
        "--quality",
        "40",
        "--no-metadata",
        *FAST,
    )
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "o" / "a.jpg").format == "JPEG"
