"""Our weight format, the store, safe import of foreign checkpoints, and resolution order."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from posterforge import catalog, plugins
from posterforge.errors import PosterforgeError, UnknownNameError, WeightsError
from posterforge.store import Store
from posterforge.weights import (
    WeightSource,
    load_foreign_state_dict,
    load_weights,
    make_header,
    read_header,
    save_weights,
    sha256_file,
)


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 5, generator=g)
    return {
        "conv.weight": torch.randn(8, 3, 3, 3, generator=g),
        "half": base.half(),
        "bf16": base.bfloat16(),
        "steps": torch.arange(7, dtype=torch.int64),
        "view": base.t(),  # non-contiguous: must be stored as is
    }


def test_round_trip_keeps_config_and_exact_tensors(tmp_path):
    header = make_header(
        "generator",
        "genre-cgan",
        {"z_dim": 100, "nested": {"a": [1, 2]}},
        labels=["horror", "comedy"],
        licence="MIT",
        provenance={"steps": 3},
    )
    tensors = _tensors()
    digest = save_weights(tmp_path / "w.safetensors", tensors, header)
    assert digest == sha256_file(tmp_path / "w.safetensors")
    loaded = load_weights(tmp_path / "w.safetensors")
    assert loaded.header == header
    assert (loaded.arch, loaded.labels, loaded.config["nested"]) == (
        "genre-cgan",
        ["horror", "comedy"],
        {"a": [1, 2]},
    )
    assert loaded.tensors.keys() == tensors.keys()
    for k, v in tensors.items():
        assert loaded.tensors[k].dtype == v.dtype
        assert torch.equal(loaded.tensors[k], v), k
    assert read_header(tmp_path / "w.safetensors") == header


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    import safetensors.torch

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        save_weights(tmp_path / "w.safetensors", _tensors(), make_header("translator", "x", {}))
    assert list(tmp_path.iterdir()) == []


def test_header_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match=r"bad\.safetensors: not a safetensors weight file"):
        read_header(bad)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(WeightsError, match="without a posterforge header"):
        read_header(tmp_path / "plain.safetensors")
    with pytest.raises(WeightsError, match="weight file not found"):
        read_header(tmp_path / "missing.safetensors")


def test_store_put_list_verify(pf_home):
    store = Store()
    assert store.root == pf_home and store.names() == []
    path = store.put("mine", _tensors(), make_header("translator", "cyclegan-resnet", {}))
    assert path == pf_home / "weights" / "mine.safetensors"
    assert store.names() == ["mine"] and store.has("mine")
    assert store.verified_path("mine") == path
    with pytest.raises(PosterforgeError, match="exist already; pass --overwrite"):
        store.put("mine", _tensors(), make_header("translator", "cyclegan-resnet", {}))
    store.put("mine", _tensors(), make_header("translator", "x", {}), overwrite=True)
    assert store.entries()[0].header["arch"] == "x"


def test_store_detects_a_damaged_file(pf_home):
    store = Store()
    path = store.put("mine", _tensors(), make_header("translator", "x", {}))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        store.verified_path("mine")


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "x" * 65, "a..b"])
def test_store_names_cannot_escape(name):
    with pytest.raises(PosterforgeError, match="invalid weight name"):
        Store().path_for(name)


def test_home_falls_back_to_xdg_cache(monkeypatch, tmp_path):
    from posterforge.store import home

    monkeypatch.delenv("POSTERFORGE_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert home() == tmp_path / "posterforge"


class _Evil:
    """Pickles to a call of os.system: a classic malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"model.1.weight": torch.zeros(1), "payload": _Evil(marker)}, evil)
    with pytest.raises(WeightsError, match=r"evil\.pth: refused: the checkpoint holds Python"):
        load_foreign_state_dict(evil)
    assert not marker.exists()


def test_import_refuses_evil_pickle_through_the_cli(inproc, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save(_Evil(marker), evil)
    r = inproc("weights", "import", str(evil), "--name", "evil")
    assert r.code == 2
    assert r.err.count("\n") == 1 and "refused" in r.err
    assert not marker.exists()


def test_foreign_state_dict_unwraps_and_strips_module_prefix(tmp_path):
    p = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"module.a": torch.ones(2)}, "epoch": 3}, p)
    assert list(load_foreign_state_dict(p)) == ["a"]
    torch.save([1, 2], p)
    with pytest.raises(WeightsError, match="not a state dict of tensors"):
        load_foreign_state_dict(p)


# --- resolution order -----------------------------------------------------------------------------


def _write(path: Path, arch: str = "cyclegan-resnet") -> Path:
    save_weights(path, {"x": torch.zeros(1)}, make_header("translator", arch, {"tag": str(path)}))
    return path


def test_resolution_order_path_then_store_then_source(tmp_path, pf_home):
    host, store = plugins.get_host(), Store()
    explicit = _write(tmp_path / "vintage.safetensors")
    assert catalog.resolve_weights(str(explicit), host, store) == explicit
    # A plugin-declared source is used only when the store lacks the name...
    calls = []
    src_file = tmp_path / "src.pth"
    torch.save({"k": torch.zeros(1)}, src_file)

    def locate():
        calls.append(1)
        return src_file

    from posterforge.weights import Importer

    host.importers.add(
        Importer(
            "fake",
            "",
            lambda sd: "k" in sd,
            lambda sd: ({"x": sd["k"]}, make_header("translator", "cyclegan-resnet", {})),
        ),
        "test",
    )
    host.weight_sources.add(
        WeightSource(
            "fromsrc", "d", locate, "fake", licence="MIT", provenance={"package": "somepkg"}
        ),
        "test",
    )
    path = catalog.resolve_weights("fromsrc", host, store)
    assert path == store.path_for("fromsrc") and calls == [1]
    header = read_header(path)
    assert header["provenance"] == {
        "package": "somepkg",  # what the source declares, plus how it was imported
        "importer": "fake",
        "imported_from": "src.pth",
        "source_sha256": sha256_file(src_file),
    }
    assert header["licence"] == "MIT"
    # ... and once imported, the store answers without asking the source again.
    assert catalog.resolve_weights("fromsrc", host, store) == path and calls == [1]
    with pytest.raises(UnknownNameError, match="did you mean 'fromsrc'"):
        catalog.resolve_weights("fromsrx", host, store)


def test_source_with_wrong_sha256_is_refused(tmp_path):
    host, store = plugins.get_host(), Store()
    src = tmp_path / "src.pth"
    torch.save({"k": torch.zeros(1)}, src)
    host.weight_sources.add(WeightSource("s", "", lambda: src, "vintagify", sha256="0" * 64), "t")
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        catalog.resolve_weights("s", host, store)
    assert not store.has("s")


def test_missing_style_weights_say_how_to_get_them():
    with pytest.raises(WeightsError, match=r"style .yourname. has no weights yet; train it"):
        catalog.resolve_style("yourname", plugins.get_host(), Store())


def test_unknown_style_suggests(pf_home):
    with pytest.raises(UnknownNameError, match="unknown style 'vintge': did you mean 'vintage'"):
        catalog.resolve_style("vintge", plugins.get_host(), Store())


def test_style_from_a_weight_file_names_its_translator(tmp_path):
    path = _write(tmp_path / "mine.safetensors")
    resolved = catalog.resolve_style(str(path), plugins.get_host(), Store())
    assert (resolved.name, resolved.translator.name, resolved.weights) == (
        "mine",
        "cyclegan-resnet",
        path,
    )
    _write(tmp_path / "other.safetensors", arch="no-such-arch")
    with pytest.raises(UnknownNameError, match="unknown translator 'no-such-arch'"):
        catalog.resolve_style(str(tmp_path / "other.safetensors"), plugins.get_host(), Store())


def test_weights_cli_list_and_path(inproc, tmp_path, pf_home):
    Store().put("mine", {"x": torch.zeros(1)}, make_header("translator", "cyclegan-resnet", {}))
    r = inproc("weights", "list", "--json")
    assert r.code == 0
    [item] = json.loads(r.out)
    assert (item["name"], item["arch"]) == ("mine", "cyclegan-resnet")
    r = inproc("weights", "path", "mine")
    assert (r.code, r.out.strip()) == (0, str(pf_home / "weights" / "mine.safetensors"))
    r = inproc("weights", "path", "nothing")
    assert r.code == 2 and r.err.startswith("posterforge: error: unknown weights 'nothing'")


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    from posterforge.atomic import atomic_write

    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_write(target, "w") as f:
        f.write("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_junk_file_in_the_store_is_listed_and_the_listings_go_on(inproc, pf_home):
    (pf_home / "weights").mkdir(parents=True, exist_ok=True)
    (pf_home / "weights" / "broken.safetensors").write_text("junk\n")
    r = inproc("weights", "list", "--json")
    assert r.code == 0, r.err
    [entry] = [e for e in json.loads(r.out) if e["name"] == "broken"]
    assert entry["kind"] is None and "not a safetensors weight file" in entry["problem"]
    for command in ("styles", "generators"):
        r = inproc(command, "--json")
        assert r.code == 0 and "broken" not in r.out, (command, r.err)


def test_info_rm_rename_and_the_names_plugins_ship(inproc, tiny_style, pf_home):
    r = inproc("weights", "import", str(tiny_style), "--name", "posters-demo")
    assert r.code == 2 and "plugin 'genre-cgan' ships; choose another name" in r.err
    store = Store()
    store.put("mine", load_weights(tiny_style).tensors, load_weights(tiny_style).header)
    assert oct(store.path_for("mine").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    r = inproc("weights", "info", "mine")
    info = json.loads(r.out)
    assert r.code == 0 and info["arch"] == "cyclegan-resnet" and info["parameters"] > 0
    r = inproc("weights", "rename", "mine", "vintage")
    assert r.code == 2 and "ships" in r.err
    r = inproc("weights", "rename", "mine", "theirs")
    assert r.code == 0 and store.has("theirs") and not store.has("mine")
    assert store.verified_path("theirs")  # the checksum moved with it
    r = inproc("weights", "rm", "theirs")
    assert r.code == 0 and not store.has("theirs")
    assert not store.path_for("theirs").with_suffix(".sha256").exists()
    r = inproc("weights", "rm", "theirs")
    assert r.code == 2 and "no weights named 'theirs'" in r.err


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_name_with_a_file_suffix_is_refused(inproc, tiny_style):
    """It would be listed but could never be used by name (a name ending in .safetensors is
    read as a path)."""
    r = inproc("weights", "import", str(tiny_style), "--name", "okstyle.safetensors")
    assert r.code == 2 and "leave out the suffix ('okstyle')" in r.err


@pytest.mark.slow
def test_importing_our_own_format_stores_it_and_a_pickled_module_is_explained(
    inproc, tiny_style, tmp_path
):
    r = inproc("weights", "import", str(tiny_style), "--name", "copy")
    assert r.code == 0 and Store().has("copy"), r.err
    module = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), module)
    r = inproc("weights", "import", str(module), "--name", "m")
    assert r.code == 2 and r.err.count("\n") == 1 and "\x1b" not in r.err, r.err
    assert "(torch.nn.modules.linear.Linear); save the model's state_dict()" in r.err
