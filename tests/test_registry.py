from __future__ import annotations

import pytest

from posterforge import Translator
from posterforge.errors import PosterforgeError, UnknownNameError
from posterforge.registry import Registry, subclass_of


class Alpha(Translator):
    name = "alpha-style"
    aliases = ("alpha", "a")


class Beta(Translator):
    name = "beta"


def make() -> Registry[Translator]:
    reg: Registry[Translator] = Registry("translator", subclass_of(Translator))
    reg.add(Alpha, "p1")
    reg.add(Beta, "p2")
    return reg


def test_lookup_by_name_and_alias():
    reg = make()
    assert reg.get("alpha-style") is Alpha
    assert reg.get("alpha") is Alpha
    assert reg.get("a") is Alpha
    assert reg.entry("beta").plugin == "p2"
    assert reg.names() == ["alpha-style", "beta"]
    assert [e.name for e in reg] == ["alpha-style", "beta"]
    assert len(reg) == 2


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown translator 'alpah': did you mean 'alpha'"):
        make().get("alpah")


def test_unknown_name_lists_known_when_nothing_is_close():
    with pytest.raises(UnknownNameError) as e:
        make().get("zzz")
    assert "known: a, alpha, alpha-style, beta" in str(e.value)


def test_alias_clash_is_refused():
    reg = make()

    class Gamma(Translator):
        name = "gamma"
        aliases = ("beta",)

    with pytest.raises(PosterforgeError, match="'beta' from plugin 'p3' is taken by plugin 'p2'"):
        reg.add(Gamma, "p3")
    assert "gamma" not in reg


def test_class_without_name_is_refused():
    class Nameless(Translator):
        pass

    with pytest.raises(PosterforgeError, match="has no name"):
        make().add(Nameless)
