"""Plugin discovery through real entry points, failure isolation, and POSTERFORGE_LOAD_PLUGINS."""

from __future__ import annotations

import json

import pytest

from posterforge import Generator, Translator, hookimpl, plugins
from posterforge.errors import PosterforgeError


def test_first_party_plugin_is_discovered_like_any_other():
    host = plugins.get_host()
    assert "cyclegan" in host.plugins
    assert host.plugins["cyclegan"].errors == []
    assert "cyclegan-resnet" in host.translators
    assert {"reference", "vintagify"} <= set(host.importers.names())


def test_loading_is_idempotent():
    assert plugins.get_host() is plugins.get_host()


def test_installed_third_party_plugin_is_discovered(with_test_plugins):
    host = plugins.get_host()
    info = host.plugins["hello"]
    assert info.version == "1.2.3"
    assert info.hooks == ["register_commands", "register_translators"]
    assert host.translators.get("invert").name == "hello-invert"


def test_broken_plugin_is_reported_and_the_rest_work(with_test_plugins):
    host = plugins.get_host()
    assert host.plugins["broken"].errors == [
        "load failed: RuntimeError: pf-broken fails on import on purpose"
    ]
    assert "hello-invert" in host.translators
    assert "cyclegan-resnet" in host.translators


def test_cli_lists_plugins_with_errors_and_exits_zero(inproc, test_plugins_dir):
    r = inproc("plugins", "--json", extra_path=test_plugins_dir)
    assert r.code == 0, r.err
    by_name = {p["name"]: p for p in json.loads(r.out)}
    assert by_name["hello"]["version"] == "1.2.3"
    assert by_name["broken"]["errors"][0].startswith("load failed: RuntimeError")
    assert by_name["cyclegan"]["errors"] == []


def test_plugin_command_appears_in_help_and_runs(inproc, test_plugins_dir):
    r = inproc("--help", extra_path=test_plugins_dir)
    assert r.code == 0 and "hello" in r.out
    r = inproc("hello", "--name", "you", extra_path=test_plugins_dir)
    assert (r.code, r.out.strip()) == (0, "hello you from pf-hello")


def test_weightless_plugin_translator_is_listed_as_a_style(inproc, test_plugins_dir):
    r = inproc("styles", "--json", extra_path=test_plugins_dir)
    styles = {s["name"]: s for s in json.loads(r.out)}
    assert styles["hello-invert"]["status"] == "no weights needed"
    assert styles["hello-invert"]["origin"] == "plugin:hello"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", set()), ("hello", {"hello"}), ("hello, cyclegan", {"hello", "cyclegan"})],
)
def test_load_plugins_env_restricts(with_test_plugins, monkeypatch, value, expected):
    monkeypatch.setenv("POSTERFORGE_LOAD_PLUGINS", value)
    plugins.reset()
    assert set(plugins.get_host().plugins) == expected


def test_load_plugins_env_in_the_cli(inproc, test_plugins_dir):
    r = inproc(
        "plugins", "--json", env={"POSTERFORGE_LOAD_PLUGINS": ""}, extra_path=test_plugins_dir
    )
    assert (r.code, json.loads(r.out)) == (0, [])


class _Fake(Translator):
    name = "fake"
    needs_weights = False


class _FakePlugin:
    @hookimpl
    def register_translators(self, register):
        register(_Fake)


class _RaisingPlugin:
    @hookimpl
    def register_translators(self, register):
        raise ValueError("boom")


def test_the_evaluation_features_come_from_the_cyclegan_plugin():
    host = plugins.get_host()
    assert host.plugins["cyclegan"].registered["extractors"] == ["vintagify-encoder-v1"]
    assert host.extractors.entry("vintagify-encoder-v1").plugin == "cyclegan"
    assert host.extractors.first().name == "vintagify-encoder-v1"  # the default of eval


def test_register_and_unregister_a_plugin_in_process():
    host = plugins.get_host()
    try:
        host.add(_FakePlugin(), "fake-plugin")
        assert host.translators.entry("fake").plugin == "fake-plugin"
    finally:
        host.remove("fake-plugin")
    assert "fake" not in host.translators
    assert "cyclegan-resnet" in host.translators


class _Poster(Generator):
    name = "fake-poster-gan"
    aliases = ("fpg",)


class _GeneratorPlugin:
    @hookimpl
    def register_generators(self, register):
        register(_Poster)


def test_generators_are_registered_and_listed(cli):
    host = plugins.get_host()
    try:
        host.add(_GeneratorPlugin(), "gen-plugin")
        assert host.generators.get("fpg") is _Poster
        assert host.plugins["gen-plugin"].hooks == ["register_generators"]
    finally:
        host.remove("gen-plugin")
    assert "fake-poster-gan" not in host.generators


def test_a_raising_hook_is_isolated_to_its_plugin():
    host = plugins.get_host()
    try:
        host.add(_RaisingPlugin(), "raiser")
        assert host.plugins["raiser"].errors == ["register_translators failed: ValueError: boom"]
        assert "cyclegan-resnet" in host.translators
    finally:
        host.remove("raiser")


def test_two_plugins_cannot_take_the_same_name():
    host = plugins.get_host()

    class Other(_FakePlugin):
        pass

    try:
        host.add(_FakePlugin(), "first")
        host.add(Other(), "second")  # registers the same class object: harmless
        assert host.plugins["second"].errors == []

        class Clash(Translator):
            name = "fake"

        class ClashPlugin:
            @hookimpl
            def register_translators(self, register):
                register(Clash)

        host.add(ClashPlugin(), "third")
        assert "taken by plugin 'first'" in host.plugins["third"].errors[0]
    finally:
        for name in ("first", "second", "third"):
            if name in host.plugins:
                host.remove(name)


def test_registry_rejects_non_translators():
    host = plugins.get_host()
    with pytest.raises(PosterforgeError, match="not a subclass of Translator"):
        host.translators.add(int, "x")  # type: ignore[arg-type]
