"""``posterforge warmup``: a thin layer over :mod:`posterforge.warmup`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from posterforge.errors import PosterforgeError


def warmup(
    style: Annotated[
        str | None, typer.Option("--style", "-s", help="A style (name or .safetensors file).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="A generator (name or .safetensors file).")
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(help="WxH: the frames' size when they reach the translator (after --size)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", "-b", min=1, help="As the runs will use (their default)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[
        str, typer.Option(help="auto (bf16 where native and close to fp32), fp32, fp16 or bf16.")
    ] = "auto",
    backend: Annotated[
        str, typer.Option(help="torch, auto (calibrate first) or openvino, as the runs will use.")
    ] = "torch",
) -> None:
    """Compile a model ahead of time for one frame size: [bold]posterforge warmup --style
    vintage --size 256x256[/].

    Later runs of that model, size, batch size, device and precision compile from the cache, and
    [bold]--compile auto[/] compiles them from a few hundred frames on (a thousand otherwise).
    """
    from posterforge.backends import BACKENDS
    from posterforge.jobs.common import one_of
    from posterforge.warmup import eager_note, warmup_generator, warmup_style

    one_of(backend, BACKENDS, "backend")
    if (style is None) == (model is None):
        raise PosterforgeError("name what to compile: --style S --size WxH, or --model M")
    if style is not None:
        if size is None:
            raise PosterforgeError("--style needs --size WxH: the frames' size")
        if (note := eager_note(size)) is not None:  # said before the minutes of compiling
            print(f"posterforge: note: {note}", file=sys.stderr)
        done = warmup_style(style, size, batch_size=batch_size, device=device, precision=precision,
                            backend=backend)  # fmt: skip
        what = f"{style} at {size}"
    else:
        if size is not None:
            raise PosterforgeError("--size is for --style: a generator's size is its own")
        done = warmup_generator(model, batch_size=batch_size or 64, device=device,  # type: ignore[arg-type]
                                precision=precision, backend=backend)  # fmt: skip
        what = str(model)
    shape = "x".join(map(str, done.shape))
    if done.precision:
        print(f"posterforge: precision {done.precision}", file=sys.stderr)
    if done.backend.startswith("backend openvino"):
        print(f"{what} (batch shape {shape}): {done.backend}; compiled by OpenVINO, in its cache",
              file=sys.stderr)  # fmt: skip
        return
    how = "already in the cache" if done.cached else "now in the cache"
    tail = f" ({done.backend})" if done.backend else ""
    print(f"compiled {what} (batch shape {shape}) in {done.seconds:.1f} s; {how}{tail}",
          file=sys.stderr)  # fmt: skip
