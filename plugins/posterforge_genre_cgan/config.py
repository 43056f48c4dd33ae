"""The genre cGAN generator's config: what its weight header's ``config`` holds, with the values
each field allows (torch-free: ``check`` reads it before torch loads). The label count is not
in it: the header's label names give it."""

from __future__ import annotations

from dataclasses import dataclass

from posterforge.plugin import NetConfig, between, size_between

WIDTH, HEIGHT = 64, 128  # the only poster size the network draws


@dataclass(frozen=True, kw_only=True)
class GenreConfig(NetConfig):
    """:class:`~posterforge_genre_cgan.network.GenreGenerator`'s shape, besides its labels."""

    z_dim: int = between(1, 4096)  # noise channels (100 in the reference work)
    ngf: int = between(1, 1024)  # channels of the last layers; x8 at the 4x2 start
    image_size: tuple[int, int] = size_between(4, 4096, (WIDTH, HEIGHT))  # (W, H), stated

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size != (WIDTH, HEIGHT):
            w, h = self.image_size
            raise ValueError(f"a genre-cgan draws {WIDTH}x{HEIGHT} posters, not {w}x{h}")
