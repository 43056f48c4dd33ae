"""What compiling a model needs around it, and what to say when it fails: inductor's cache in
the posterforge home, the C++ builder's noise silenced while it runs, and a failure's cause in
words a user can act on (a full disk, no C compiler)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager


def compile_cache_dir() -> str:
    from posterforge.store import home

    return str(home() / "compile-cache")


def compile_cause(e: BaseException) -> str:
    """What made compiling fail, as a user can act on it: a full disk (the compile cache is in
    the posterforge home) or a missing C compiler, else the error's first line."""
    import errno as errnos

    seen: BaseException | None = e
    while seen is not None:  # the OSError is often wrapped by inductor
        if isinstance(seen, OSError) and seen.errno == errnos.ENOSPC:
            return f"no space left on the disk of the compile cache ({compile_cache_dir()})"
        seen = seen.__cause__ or seen.__context__
    text = str(e)
    if "No space left on device" in text:
        return f"no space left on the disk of the compile cache ({compile_cache_dir()})"
    if "compiler" in text.lower() or "cc1" in text or "gcc" in text:
        return "no working C compiler on this machine"
    return text.strip().splitlines()[0][:200] if text.strip() else type(e).__name__


@contextmanager
def compiling() -> Iterator[None]:
    """While compiling: inductor's cache in the posterforge home (unless the user set one), and
    the C++ builder's "No CUDA runtime is found" (noise on a CPU-only machine) silenced. Both
    are put back afterwards: the process keeps its own settings."""
    env, logger = "TORCHINDUCTOR_CACHE_DIR", logging.getLogger("torch.utils.cpp_extension")
    had, level = os.environ.get(env), logger.level
    if had is None:
        os.environ[env] = compile_cache_dir()
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        if had is None:
            os.environ.pop(env, None)
