"""The training data stream: deterministic order, shards, resume, bad files; and augmentation."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from posterforge.errors import PosterforgeError
from posterforge.images import encode_atomic
from posterforge.training.augment import make_augment
from posterforge.training.data import ImageFolderStream, load_image


def write_images(folder: Path, n: int = 10) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rgb = np.full((16 + 2 * i, 16, 3), 20 * i, dtype=np.uint8)  # one flat grey per image
        rgb[0, 0] = (i, 255 - i, 7)
        paths.append(folder / f"img{i:02d}.png")
        encode_atomic(rgb, paths[-1])
    return paths


def ids(batch: torch.Tensor) -> list[int]:
    """Which image each item of a batch is (its grey level is 20 * index)."""
    return [round(float(x[1, 4, 4]) * 255 / 20) for x in batch]


def take(stream: ImageFolderStream, n: int) -> list[torch.Tensor]:
    return [next(stream) for _ in range(n)]


def test_batches_shape_range_and_determinism(tmp_path):
    write_images(tmp_path)
    a = take(ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=5, workers=2), 7)
    b = take(ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=5, workers=1), 7)
    c = take(ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=6, workers=1), 7)
    assert a[0].shape == (3, 3, 8, 8) and a[0].dtype == torch.float32
    assert all(float(x.min()) >= 0.0 and float(x.max()) <= 1.0 for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    # every epoch is a permutation: the first 10 items are all 10 images
    first = [i for batch in a for i in ids(batch)][:10]
    assert sorted(first) == list(range(10))


def test_load_image_resizes_shorter_side_and_centre_crops(tmp_path):
    rgb = np.zeros((20, 40, 3), dtype=np.uint8)
    rgb[:, 10:30] = 255  # a white band in the middle of a wide image
    encode_atomic(rgb, tmp_path / "wide.png")
    x = load_image(tmp_path / "wide.png", 10)
    assert x.shape == (3, 10, 10)
    assert float(x[:, :, 1:-1].min()) > 0.99  # the crop holds the white middle (edges antialiased)
    assert float(x.min()) > 0.5


def test_posters_of_any_shape_are_fitted_by_crop_or_pad(tmp_path):
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)  # wider than a 1:2 poster
    rgb[:, :, 0] = np.linspace(0, 255, 40, dtype=np.uint8)  # red grows left to right
    rgb[:, :, 2] = 200
    encode_atomic(rgb, tmp_path / "wide.png")
    crop = load_image(tmp_path / "wide.png", (16, 32), fit="crop")  # (W, H)
    pad = load_image(tmp_path / "wide.png", (16, 32), fit="pad")
    assert crop.shape == pad.shape == (3, 32, 16)
    # crop: the height fills the poster, so only a middle strip of the width is left
    assert 0.3 < float(crop[0].mean()) < 0.7 and float(crop[0].max() - crop[0].min()) < 0.6
    # pad: the whole width is kept (red spans 0..1), and the rows above and below repeat edges
    assert float(pad[0].max() - pad[0].min()) > 0.8
    torch.testing.assert_close(pad[:, 0], pad[:, 12])
    with pytest.raises(ValueError, match="fit must be"):
        load_image(tmp_path / "wide.png", 8, fit="stretch")


def test_two_ranks_get_disjoint_shards_covering_the_epoch(tmp_path):
    write_images(tmp_path)
    r0 = ImageFolderStream(tmp_path, 1, 8, seed=3, rank=0, world_size=2, workers=1)
    r1 = ImageFolderStream(tmp_path, 1, 8, seed=3, rank=1, world_size=2, workers=1)
    got0 = [i for b in take(r0, 5) for i in ids(b)]
    got1 = [i for b in take(r1, 5) for i in ids(b)]
    assert not set(got0) & set(got1)
    assert sorted(got0 + got1) == list(range(10))
    assert r0.state_dict() == r1.state_dict() == {"epoch": 1, "position": 0}
    # the next epoch is a different permutation, still split the same way
    nxt0 = [i for b in take(r0, 5) for i in ids(b)]
    nxt1 = [i for b in take(r1, 5) for i in ids(b)]
    assert sorted(nxt0 + nxt1) == list(range(10))
    assert (nxt0, nxt1) != (got0, got1)


def test_resume_mid_epoch_yields_the_same_batches(tmp_path):
    write_images(tmp_path)
    a = ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=1, workers=2)
    take(a, 2)
    state = a.state_dict()
    assert state == {"epoch": 0, "position": 6}
    expected = take(a, 5)  # crosses into epoch 1
    b = ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=1, workers=2)
    take(b, 4)  # prefetched state must be dropped on load
    b.load_state_dict(state)
    got = take(b, 5)
    assert all(torch.equal(x, y) for x, y in zip(expected, got, strict=True))
    a.close()
    b.close()


def test_bad_files_are_skipped_with_one_warning_each(tmp_path, caplog):
    """One logged line each, never a raw UserWarning with its source line (issue 23)."""
    write_images(tmp_path, n=4)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image at all\n")
    s = ImageFolderStream(tmp_path, batch_size=2, load_size=8, seed=0, workers=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = take(s, 8)  # four epochs' worth of good images
    assert all(b.shape == (2, 3, 8, 8) for b in batches)
    assert sorted(i for b in batches[:2] for i in ids(b)) == [0, 1, 2, 3]
    assert not caught
    messages = [r.getMessage() for r in caplog.records if "skipping unreadable" in r.getMessage()]
    assert len(messages) == 2 and all(m.startswith("posterforge: warning: ") for m in messages)
    assert any("empty.png" in m for m in messages)
    assert any("notes.png" in m and "not an image" in m for m in messages)


def test_no_readable_images_is_a_clear_error(tmp_path):
    with pytest.raises(PosterforgeError, match="no images"):
        ImageFolderStream(tmp_path, 2, 8)
    (tmp_path / "bad.png").write_text("nope")
    (tmp_path / "worse.jpg").write_bytes(b"")
    s = ImageFolderStream(tmp_path, 2, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(PosterforgeError, match="no readable images"):
            next(s)


def test_augment_is_batched_and_follows_the_global_rng():
    x = torch.rand(4, 3, 16, 16)
    aug = make_augment(8, color_jitter=True)
    torch.manual_seed(0)
    a = aug(x)
    torch.manual_seed(0)
    b = aug(x)
    assert a.shape == (4, 3, 8, 8)
    assert torch.equal(a, b)
    assert not torch.equal(aug(x), a)


def test_diffaugment_is_differentiable_and_draws_per_sample():
    from posterforge.training.augment import make_diffaugment

    assert make_diffaugment("") is None
    with pytest.raises(ValueError, match="unknown augmentation rotate"):
        make_diffaugment("translation,rotate")
    aug = make_diffaugment("translation,cutout,color")
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 16).repeat(4, 1, 1, 1).requires_grad_(True)
    y = aug(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # the generator learns through it
    assert not torch.allclose(y[0], y[1])  # the same image, augmented differently per sample


# -- labels files from real sources: quotes, columns, templates, encodings, vocabularies ----------

MOVIEGENRE_HEADER = "imdbId,Imdb Link,Title,IMDB Score,Genre,Poster\n"


def _labels_env(folder: Path, names: list[str]) -> Path:
    """``names`` as tiny 8x16 posters in ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        encode_atomic(np.full((16, 8, 3), 10 * i, dtype=np.uint8), folder / name)
    return folder


def _genres():
    from posterforge import presets
    from posterforge.plugins import get_host

    return presets.labels("genres", get_host())


def test_an_unclosed_quote_is_reported_at_its_line_and_the_later_rows_are_kept(tmp_path):
    from posterforge.training.labelled import read_labelled

    data = _labels_env(tmp_path, ["a.png", "b.png", "c.png", "d.png", "e.png"])
    (data / "labels.csv").write_text(
        "path,genres\n"
        "a.png,horror\n"  # 2
        'b.png,"comedy\n'  # 3: the quote never closes
        "c.png,drama\n"  # 4: read all the same
        "gone.png,war\n"  # 5: no image
        'd.png,"romcom|thriller"\n'  # 6: one unknown genre, one known
        "\n"
        "e.png,romcom\n"  # 8: no known genre
    )
    got = read_labelled(data, _genres(), data / "labels.csv")
    assert [it.path.name for it in got.items] == ["a.png", "c.png", "d.png"]
    assert got.problems == [
        "labels.csv:3: unclosed quote: a quoted field starts on this line and does not end on it",
        "labels.csv:5: no such file 'gone.png'",
        "labels.csv:6: unknown genre 'romcom'",
        "labels.csv:8: unknown genre 'romcom' (row skipped)",
    ]
    assert got.summary_line() == (
        "labels.csv: 6 rows read, 3 used, 3 dropped (1 with an unclosed quote, 1 with no image, "
        "1 with no known genre; first at lines 3, 5, 8)"
    )
    assert got.unknown_line() == (
        "labels.csv: genres not in the vocabulary, ignored: romcom (2) "
        "(--labels-from-data keeps them)"
    )


def test_a_nearly_empty_set_is_refused_unless_min_usable_allows_it(tmp_path, capsys):
    from posterforge.training.labelled import LabelledRecipe, labelled_stream

    data = _labels_env(tmp_path, ["a.png"])
    rows = ["path,genres", "a.png,horror"] + [f"x{i}.png,drama" for i in range(10)]
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    inputs = {"data": data, "labels": data / "labels.csv"}
    with pytest.raises(PosterforgeError) as e:
        labelled_stream(inputs, LabelledRecipe(), _genres(), 1, (8, 16))
    assert str(e.value) == (
        "labels.csv: only 1 of 11 rows are usable (9.1%, under --min-usable 0.1; 10 dropped: "
        "10 with no image): check the columns, --path-template and --encoding against the rows "
        "reported above, or pass --min-usable 0 to train on the 1 left"
    )
    stream = labelled_stream(inputs, LabelledRecipe(min_usable=0), _genres(), 1, (8, 16))
    summary = stream.summary()
    assert (summary["rows_read"], summary["rows_dropped"], summary["images_used"]) == (11, 10, 1)
    assert summary["label_counts"]["horror"] == 1 and summary["label_counts"]["war"] == 0
    assert stream.recipe_updates() == {}
    stream.close()
    assert "11 rows read, 1 used, 10 dropped (10 with no image; first at lines 3, 4, 5)" in (
        capsys.readouterr().err
    )


def test_moviegenre_csv_reads_as_it_is_with_a_path_template_and_its_encoding(tmp_path):
    """The public MovieGenre.csv: latin-1, its own header, genres like Animation|Comedy, posters
    saved as <imdbId>.jpg."""
    from posterforge.training.labelled import read_labelled
    from posterforge.training.labels_file import LabelsFormat

    data = _labels_env(tmp_path / "posters", ["114709.jpg", "113497.jpg", "113228.jpg"])
    text = MOVIEGENRE_HEADER + (
        "114709,http://www.imdb.com/title/tt114709,Toy Story (1995),8.3,Animation|Adventure|Comedy,"
        "https://images-na.ssl-images-amazon.com/images/M/a.jpg\n"
        '113497,http://www.imdb.com/title/tt113497,"Amélie, la fabuleuse",6.9,Comedy|Romance,u\n'
        "113228,http://www.imdb.com/title/tt113228,Détour (1945),7.3,Film-Noir|Crime,u\n"
        "999999,http://www.imdb.com/title/tt999999,Sans affiche,6.0,Drama,u\n"
    )
    labels = tmp_path / "MovieGenre.csv"
    labels.write_bytes(text.encode("latin-1"))
    genres = _genres()

    with pytest.raises(PosterforgeError) as e:  # utf-8 by default: the file and the line
        read_labelled(data, genres, labels)
    assert str(e.value) == (
        f"{labels}:3: not utf-8 text (byte 0xe9): pass the file's encoding with --encoding, "
        "e.g. --encoding latin-1"
    )
    with pytest.raises(PosterforgeError) as e:  # Poster holds URLs, not files: no path column
        read_labelled(data, genres, labels, LabelsFormat(encoding="latin-1"))
    assert "no path column (columns: imdbId, Imdb Link, Title, IMDB Score, Genre, Poster)" in str(
        e.value
    )
    with pytest.raises(PosterforgeError) as e:
        read_labelled(data, genres, labels, LabelsFormat("", "", "{imdb}.jpg", "latin-1"))
    assert str(e.value) == (
        "--path-template '{imdb}.jpg': no column 'imdb' in MovieGenre.csv "
        "(columns: imdbId, Imdb Link, Title, IMDB Score, Genre, Poster)"
    )

    fmt = LabelsFormat(path_template="{IMDBID}.jpg", label_column="GENRE", encoding="latin-1")
    got = read_labelled(data, genres, labels, fmt)
    names = [[genres.names[i] for i in it.labels] for it in got.items]
    assert [it.path.name for it in got.items] == ["114709.jpg", "113497.jpg", "113228.jpg"]
    assert names == [["adventure", "animation", "comedy"], ["comedy", "romance"], ["crime"]]
    assert got.problems == [
        "MovieGenre.csv:4: unknown genre 'Film-Noir'",
        "MovieGenre.csv:5: no such file '999999.jpg'",
    ]
    assert read_labelled(data, genres, labels, LabelsFormat(
        path_template="{imdbId}.jpg", encoding="latin-1")).items == got.items  # fmt: skip


def test_columns_by_name_in_any_case_and_paths_that_leave_the_data_folder(tmp_path):
    from posterforge.training.labelled import read_labelled
    from posterforge.training.labels_file import LabelsFormat

    data = _labels_env(tmp_path / "data", ["a.png", "b.png"])
    (tmp_path / "secret.png").write_bytes((data / "a.png").read_bytes())
    labels = tmp_path / "l.csv"
    labels.write_text(
        'File,Kind,Tags\na.png,x,Horror\nb.png,../secret,"Comedy, Drama"\na.png,a,War\n'
    )
    fmt = LabelsFormat(path_column="file", label_column="TAGS")
    got = read_labelled(data, _genres(), labels, fmt)
    genres = _genres()
    assert [(it.path.name, [genres.names[i] for i in it.labels]) for it in got.items] == [
        ("a.png", ["horror"]),
        ("b.png", ["comedy", "drama"]),  # commas inside one field separate labels too
    ]  # line 4 names a.png again: dropped, so that it is not trained twice
    assert got.problems == ["l.csv:4: 'a.png' is the file of line 2"]
    assert got.drop_reasons() == ["1 naming a file an earlier row names (dropped: trained once)"]
    with pytest.raises(PosterforgeError) as e:
        read_labelled(data, genres, labels, LabelsFormat(label_column="Genres"))
    assert (
        str(e.value) == f"{labels}: no column 'Genres' (--label-column); columns: File, Kind, Tags"
    )

    got = read_labelled(data, genres, labels, LabelsFormat("", "tags", "{kind}.png"))
    assert [it.path.name for it in got.items] == ["a.png"]
    assert got.problems == [
        "l.csv:2: no such file 'x.png'",
        "l.csv:3: path '../secret.png' is outside the data folder",
    ]
    assert got.dropped == [(2, "no_image"), (3, "outside")]
    for template in ("../{kind}.png", "/abs/{kind}.png", "x.png"):
        with pytest.raises(ValueError, match="--path-template"):
            LabelsFormat(path_template=template)
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        LabelsFormat(encoding="klingon")


def test_labels_from_data_keep_every_genre_most_common_first(tmp_path):
    from posterforge.training.labelled import read_labelled
    from posterforge.training.labels_file import LabelsFormat

    _labels_env(tmp_path, ["1.jpg", "2.jpg", "3.jpg", "4.jpg"])
    (tmp_path / "m.csv").write_text(
        MOVIEGENRE_HEADER
        + "1,l,A,1,Film-Noir|Musical,p\n2,l,B,1,film noir|Short,p\n3,l,C,1,Sci-Fi|Musical,p\n"
        + "4,l,D,1,Reality-TV|Short|Film-Noir,p\n5,l,E,1,News,p\n"  # 5: no image, no label
    )
    fmt = LabelsFormat(path_template="{imdbId}.jpg")
    got = read_labelled(tmp_path, _genres(), tmp_path / "m.csv", fmt, from_data=True)
    # by count (film-noir 3, music 2, short 2), then by name; the preset's spelling and aliases
    assert got.labels.names == ("film-noir", "music", "short", "reality-tv", "sci-fi")
    assert got.labels.noun == "genre" and got.labels.find("Musical") == 1
    assert got.counts() == [3, 2, 2, 1, 1]
    assert got.problems == ["m.csv:6: no such file '5.jpg'"] and not got.unknown

    (tmp_path / "folders" / "Film-Noir").mkdir(parents=True)
    (tmp_path / "folders" / "Horror").mkdir()
    _labels_env(tmp_path / "folders" / "Horror", ["h1.png", "h2.png"])
    _labels_env(tmp_path / "folders" / "Film-Noir", ["n.png"])
    got = read_labelled(tmp_path / "folders", _genres(), from_data=True)
    assert got.labels.names == ("horror", "film-noir") and got.counts() == [2, 1]


def test_a_model_refuses_a_label_it_had_no_training_images_of():
    from posterforge.labels import labels_from_header

    header = {
        "labels": ["horror", "war", "drama"],
        "vocabulary": {"noun": "genre", "aliases": {"combat": "war"}},
        "provenance": {"data": {"label_counts": {"horror": 4, "war": 0, "drama": 2}}},
    }
    labels = labels_from_header(header)
    assert labels.counts == {"horror": 4, "war": 0, "drama": 2}
    assert labels.vector("horror+drama") == [1.0, 0.0, 1.0]
    assert labels.vector("horror+war:0") == [1.0, 0.0, 0.0]  # weight 0: not asked for
    with pytest.raises(PosterforgeError) as e:
        labels.caption("Combat")
    assert str(e.value) == (
        "genre 'war' had no training images, so this model never learnt it: name one it was "
        "trained on (horror, drama)"
    )
    for odd in ({"horror": "4"}, ["horror"], {"horror": -1}, {"horror": True}):
        header["provenance"]["data"]["label_counts"] = odd
        assert labels_from_header(header).counts is None  # a hand-made header: no check
    assert labels_from_header({"labels": ["a"]}).counts is None


def test_a_recipe_reads_its_labels_preset_from_the_context_it_is_given(tmp_path):
    """The vocabulary comes from the run's plugins, not from the process's: a preset that only
    the given context's host ships is found there, and not in the default context."""
    from posterforge.context import Context, default_context
    from posterforge.errors import PosterforgeError
    from posterforge.hookspecs import hookimpl
    from posterforge.plugins import PluginHost
    from posterforge.store import Store
    from posterforge.training.labelled import LabelledRecipe

    (tmp_path / "presets" / "labels").mkdir(parents=True)
    (tmp_path / "presets" / "labels" / "moods.toml").write_text(
        'noun = "mood"\nnames = ["calm", "tense"]\n'
    )

    class Moods:
        @hookimpl
        def register_presets(self, register):
            register(tmp_path / "presets")

    host = PluginHost()  # no entry points: only the plugin given
    host.add(Moods(), "moods")
    recipe = LabelledRecipe(labels="moods")
    assert list(recipe.vocabulary(Context(host, Store(tmp_path / "home"))).names) == [
        "calm", "tense",
    ]  # fmt: skip
    with pytest.raises(PosterforgeError, match="moods"):
        recipe.vocabulary(default_context())


def test_a_movie_genre_set_reports_duplicates_and_broken_posters(tmp_path, capsys):
    """The same poster twice is trained once, a truncated JPEG is never counted as used, and
    every problem (more than are printed) is in the stream's data report, for RUN/."""
    from posterforge.training.labelled import LabelledRecipe, labelled_stream

    from .movie_genre import movie_genre_csv

    labels = movie_genre_csv(tmp_path / "posters")
    recipe = LabelledRecipe(
        labels="genres", labels_from_data=True, encoding="latin-1",
        path_template="{imdbId}.jpg", label_column="Genre", balance="none",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw UserWarning on the way
        stream = labelled_stream({"data": labels.parent, "labels": labels}, recipe,
                                 _genres(), 4, (8, 16))  # fmt: skip
    summary, text = stream.summary(), stream.data_report()
    stream.close()
    assert summary["images_used"] == 29 and summary["rows_read"] == 54
    assert summary["label_counts"] == {"calm": 29, "tense": 10}
    err = capsys.readouterr().err
    assert "MovieGenre.csv:3: 1001.jpg: does not decode (image file is truncated" in err
    assert "MovieGenre.csv:32: '1002.jpg' is the file of line 4" in err
    assert "more (all in the run folder's data-report.txt)" in err
    assert "1 naming a file an earlier row names" in err and "1 with an image that" in err
    assert "MovieGenre.csv:55: unclosed quote" in text and text.count("no such file") == 22


@pytest.mark.slow
def test_a_run_keeps_the_full_problem_list_in_its_folder(tmp_path, inproc):
    """train generator on the MovieGenre imitation: the printed list stops at 20 and names
    RUN/data-report.txt, which holds every problem (the late unclosed quote included)."""
    from .movie_genre import movie_genre_csv

    labels = movie_genre_csv(tmp_path / "posters")
    run = tmp_path / "run"
    tiny = ["ngf=8", "ndf=8", "batch_size=4", "train.checkpoint_every=1"]
    r = inproc(
        "train", "generator", "--arch", "genre-cgan", "--data", str(labels.parent),
        "--labels", str(labels), "--encoding", "latin-1", "--path-template", "{imdbId}.jpg",
        "--label-column", "Genre", "--labels-from-data", "--name", "moviegenre", "--out",
        str(run), "--max-steps", "1", "--device", "cpu",
        *[x for item in tiny for x in ("--set", item)],
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "more (all in the run folder's data-report.txt)" in r.err
    assert f"all of them: {run}/data-report.txt" in r.err and "UserWarning" not in r.err
    full = (run / "data-report.txt").read_text()
    assert "MovieGenre.csv:55: unclosed quote" in full and "is the file of line 4" in full
    summary = json.loads((run / "request.json").read_text())["data_summary"]
    assert summary["images_found"] == 29 and summary["rows_dropped"] == 25  # dup, broken, 22, quote
