"""posterforge.inputs: discovery order and filters, output mapping, collisions, sharding."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import pytest

from posterforge.errors import PosterforgeError
from posterforge.inputs import (
    Collision,
    Job,
    discover,
    in_shard,
    output_path,
    parse_shard,
    unique_outputs,
)


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")  # discovery never reads contents


def _rels(jobs: Iterable[Job]) -> list[str]:
    return [j.rel.as_posix() for j in jobs]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    _touch(
        root,
        "b.png",
        "a.JPG",
        "c.Tiff",
        "notes.txt",
        "noext",
        ".hidden.png",
        ".b.png.0123abcd.tmp",  # a temp file left by a killed encode_atomic
        "sub/z.webp",
        "sub/deeper/y.jpeg",
        "sub/.cache/x.png",
        "Sub2/w.BMP",
        ".git/objects/v.png",
    )
    return root


def test_single_file(tmp_path: Path) -> None:
    _touch(tmp_path, "dir/photo.JPG", "dir/readme.txt")
    jobs = list(discover([tmp_path / "dir/photo.JPG", str(tmp_path / "dir/readme.txt")]))
    assert jobs == [
        Job(tmp_path / "dir/photo.JPG", PurePosixPath("photo.JPG")),
        # an explicitly named file is taken whatever its suffix; decode judges it
        Job(tmp_path / "dir/readme.txt", PurePosixPath("readme.txt")),
    ]


def test_directory_is_walked_sorted_and_filtered(tree: Path) -> None:
    jobs = list(discover([tree]))
    assert _rels(jobs) == [
        "a.JPG",
        "b.png",
        "c.Tiff",
        "Sub2/w.BMP",
        "sub/z.webp",
        "sub/deeper/y.jpeg",
    ]
    assert all(j.src == tree / j.rel for j in jobs)
    assert list(discover([str(tree)])) == jobs  # str and Path inputs agree, and runs repeat


def test_discover_is_lazy(tree: Path) -> None:
    it = discover([tree, tree / "missing"])
    assert next(it).rel == PurePosixPath("a.JPG")


def test_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _touch(outside, "o.png")
    root = tmp_path / "in"
    _touch(root, "real.png")
    (root / "linked.png").symlink_to(outside / "o.png")
    (root / "dangling.png").symlink_to(tmp_path / "gone.png")
    (root / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    assert _rels(discover([root])) == ["dangling.png", "linked.png", "real.png"]
    # a symlinked directory named explicitly is walked
    assert _rels(discover([root / "linkdir"])) == ["o.png"]


def test_missing_input_still_yields_a_job(tmp_path: Path) -> None:
    jobs = list(discover([tmp_path / "nowhere" / "ghost.png"]))
    assert jobs == [Job(tmp_path / "nowhere" / "ghost.png", PurePosixPath("ghost.png"))]


def test_stdin_list(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree.parent)
    listing = io.StringIO(
        "in/sub/z.webp\n"  # relative: mirrored
        "\n"
        f"{tree / 'b.png'}\n"  # absolute: file name only
        "in/sub/../b.png\r\n"  # '..': file name only
        "./in/Sub2\n"  # a directory: walked, rel relative to it
        "   \n"
        "in/missing/q.png"  # no trailing newline, does not exist
    )
    jobs = list(discover(["in/c.Tiff", "-"], stdin=listing))
    assert _rels(jobs) == ["c.Tiff", "in/sub/z.webp", "b.png", "b.png", "w.BMP", "in/missing/q.png"]
    assert jobs[1].src == Path("in/sub/z.webp")
    assert jobs[2].src == tree / "b.png"
    assert jobs[3].src == Path("in/sub/../b.png")


def test_only_the_literal_dash_reads_stdin(tmp_path: Path) -> None:
    jobs = list(discover([Path("-")], stdin=io.StringIO("x.png\n")))
    assert jobs == [Job(Path("-"), PurePosixPath("-"))]


# --- output paths -------------------------------------------------------------------------------


def test_output_path(tmp_path: Path) -> None:
    job = Job(Path("src/a/b.photo.jpeg"), PurePosixPath("a/b.photo.jpeg"))
    out = tmp_path / "out"
    assert output_path(job, out) == out / "a" / "b.photo.jpeg"
    assert output_path(job, out, "png") == out / "a" / "b.photo.png"
    assert output_path(job, out, "jpeg") == out / "a" / "b.photo.jpg"
    assert output_path(job, str(out), "tiff") == out / "a" / "b.photo.tiff"
    assert output_path(Job(Path("n"), PurePosixPath("noext")), out, "webp") == out / "noext.webp"
    with pytest.raises(ValueError, match="unknown image format"):
        output_path(job, out, "xcf")


@pytest.mark.parametrize("rel", ["../x.png", "a/../../x.png", "a/..", "/etc/x.png", ".", ""])
def test_output_path_cannot_escape(tmp_path: Path, rel: str) -> None:
    job = Job(Path("whatever.png"), PurePosixPath(rel))
    with pytest.raises(PosterforgeError, match="escape"):
        output_path(job, tmp_path / "out")


def test_unique_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    jobs = [
        Job(Path("x/a.png"), PurePosixPath("a.png")),
        Job(Path("x/a.jpg"), PurePosixPath("a.jpg")),
        Job(Path("x/A.png"), PurePosixPath("A.png")),  # exact strings: not a collision
    ]
    assert [o for _, o in unique_outputs(jobs, out)] == [
        out / "a.png",
        out / "a.jpg",
        out / "A.png",
    ]
    it = unique_outputs(jobs, out, "png")
    assert next(it) == (jobs[0], out / "a.png")  # lazy: the first pair comes before the clash
    with pytest.raises(Collision) as info:
        next(it)
    assert str(info.value) == f"x/a.png and x/a.jpg would both write {out / 'a.png'}"
    assert isinstance(info.value, PosterforgeError)


def test_same_file_twice_collides(tmp_path: Path) -> None:
    _touch(tmp_path, "p.png")
    with pytest.raises(Collision):
        list(unique_outputs(discover([tmp_path / "p.png", tmp_path / "p.png"]), tmp_path / "o"))


# --- shards -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"), [("1/1", (1, 1)), ("3/4", (3, 4)), (" 2 / 10 ", (2, 10))]
)
def test_parse_shard(text: str, want: tuple[int, int]) -> None:
    assert parse_shard(text) == want


@pytest.mark.parametrize(
    "text", ["0/4", "5/4", "1/0", "0/0", "1", "a/b", "1/2/3", "-1/2", "", "1.0/2"]
)
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="K/N"):
        parse_shard(text)


def _jobs(n: int) -> list[Job]:
    return [
        Job(Path(f"d{i % 7}/img{i}.png"), PurePosixPath(f"d{i % 7}/img{i}.png")) for i in range(n)
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_shards_partition_and_are_stable(n: int) -> None:
    jobs = _jobs(200)
    owners = [[k for k in range(1, n + 1) if in_shard(j, k, n)] for j in jobs]
    assert all(len(o) == 1 for o in owners)  # every job in exactly one shard
    again = [[k for k in range(1, n + 1) if in_shard(j, k, n)] for j in jobs]
    assert owners == again
    if n > 1:
        sizes = [sum(o == [k] for o in owners) for k in range(1, n + 1)]
        assert min(sizes) > 200 / n / 2  # roughly balanced, not all in one shard


@pytest.mark.parametrize(("rel", "k"), [("a/b.png", 6), ("poster.jpg", 4), ("x/y/z.tif", 4)])
def test_shard_is_pinned(rel: str, k: int) -> None:
    # hashlib, not hash(): a job's shard must not change between runs, machines or versions
    job = Job(Path("anything"), PurePosixPath(rel))
    assert [i for i in range(1, 8) if in_shard(job, i, 7)] == [k]


def test_converted_clashes_share_a_shard() -> None:
    for i in range(50):
        a = Job(Path(f"p{i}.png"), PurePosixPath(f"s/p{i}.png"))
        b = Job(Path(f"p{i}.jpg"), PurePosixPath(f"s/p{i}.jpg"))
        assert [in_shard(a, k, 5) for k in range(1, 6)] == [in_shard(b, k, 5) for k in range(1, 6)]


def test_in_shard_rejects_bad_k() -> None:
    with pytest.raises(ValueError):
        in_shard(_jobs(1)[0], 0, 3)
    with pytest.raises(ValueError):
        in_shard(_jobs(1)[0], 4, 3)


def test_hidden_dirs_are_pruned_not_just_filtered(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    visited: list[str] = []
    real_walk = os.walk

    def spy(top: Path, **kw: object) -> Iterator[tuple[str, list[str], list[str]]]:
        for dirpath, dirnames, filenames in real_walk(top, **kw):
            visited.append(os.path.relpath(dirpath, top))
            yield dirpath, dirnames, filenames

    monkeypatch.setattr(os, "walk", spy)
    list(discover([tree]))
    assert visited == [".", "Sub2", "sub", "sub/deeper"]


def test_unreadable_subdirectory_is_logged_and_skipped(
    tree: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_scandir = os.scandir

    def scandir(path: str) -> object:  # chmod cannot stop root, so fake the EACCES
        if os.path.basename(path) == "sub":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING, logger="posterforge.inputs"):
        assert _rels(discover([tree])) == ["a.JPG", "b.png", "c.Tiff", "Sub2/w.BMP"]
    assert "skipping unreadable directory" in caplog.text and "sub" in caplog.text
