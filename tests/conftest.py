from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from posterforge import plugins

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_PLUGINS = Path(__file__).parent / "fixtures" / "plugins"
FIXTURES = ("pf-hello", "pf-broken", "pf-moods", "pf-exit", "pf-clash")


@pytest.fixture(autouse=True)
def pf_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own empty weight store and a fresh plugin host."""
    home = tmp_path_factory.mktemp("pfhome")
    monkeypatch.setenv("POSTERFORGE_HOME", str(home))
    monkeypatch.delenv("POSTERFORGE_LOAD_PLUGINS", raising=False)
    plugins.reset()
    # --precision auto as on a CPU without native bf16 (fp32), whatever this machine has: the
    # suite's bytes and lines are the same everywhere; tests of auto give the flags they need
    monkeypatch.setattr("posterforge.backends.precision.NATIVE_FLAGS", ())
    yield home
    plugins.reset()


@pytest.fixture(scope="session")
def test_plugins_dir(tmp_path_factory) -> Path:
    """Really install the fixture plugin distributions (pip, entry points and all) into a folder
    that tests put on the path: the venv itself stays untouched."""
    target = tmp_path_factory.mktemp("site")
    pip_install_into(target, *(FIXTURE_PLUGINS / d for d in FIXTURES))
    return target


def pip_install_into(target: Path, *specs: Path | str) -> None:
    """A real ``pip install`` (dist-info, entry points) into ``target``, not into the venv."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "--target", str(target), *map(str, specs)], check=True)


@pytest.fixture
def with_test_plugins(test_plugins_dir, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(test_plugins_dir))
    plugins.reset()
    return test_plugins_dir


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    extra_path: Path | None = None,
    stdin: str | None = None,
    timeout: float = 300,
) -> Result:
    """Run the real console entry point in a subprocess (as a user would)."""
    full_env = {**os.environ, **(env or {})}
    if extra_path is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(extra_path), full_env.get("PYTHONPATH", "")) if p
        )
    proc = subprocess.run(
        [sys.executable, "-m", "posterforge", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        timeout=timeout,
        cwd=ROOT,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


def run_torchrun(*args: str, procs: int = 2, nodes: int = 1, timeout: float = 300) -> Result:
    """``torchrun ... -m posterforge ARGS`` as a user types it, with one thread per process.

    ``nodes`` > 1 starts that many torchrun launchers at once, as on separate machines, joined
    by torchrun's c10d rendezvous on a local port (the documented multi-node command line);
    their outputs are joined in order. The exit status is the worst launcher's."""
    import socket
    import uuid

    if nodes == 1:
        launch = [["--standalone"]]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        rdzv = ["--nnodes", str(nodes), "--rdzv-backend", "c10d", "--rdzv-endpoint",
                f"127.0.0.1:{port}", "--rdzv-id", uuid.uuid4().hex[:12]]  # fmt: skip
        # the first launcher hosts the rendezvous store, the others join it
        launch = [[*rdzv, "--rdzv-conf", f"is_host={int(n == 0)}"] for n in range(nodes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    tail = ["--nproc-per-node", str(procs), "-m", "posterforge", *args]
    texts = []
    with contextlib.ExitStack() as stack:
        # files, not pipes: a launcher blocked on a full pipe would stall the others' rendezvous
        def temp():
            return stack.enter_context(tempfile.TemporaryFile("w+"))

        files = [(temp(), temp()) for _ in launch]
        started = [
            subprocess.Popen([*cmd, *how, *tail], stdout=o, stderr=e, text=True, cwd=ROOT, env=env)
            for how, (o, e) in zip(launch, files, strict=True)
        ]
        try:
            codes = [p.wait(timeout=timeout) for p in started]
        finally:
            for p in started:
                p.kill()
        for out, err in files:
            out.seek(0), err.seek(0)
            texts.append((out.read(), err.read()))
    return Result(max(codes, key=abs), "".join(o for o, _ in texts), "".join(e for _, e in texts))


def run_inprocess(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | bytes | None = None,
    cwd: Path | None = None,
    extra_path: Path | None = None,
) -> Result:
    """The console entry point run in this process (``posterforge.cli.main``): what
    :func:`run_cli` checks, for the cases where a new process is not what is being tested.
    Environment, working folder, streams, the plugin host and the commands plugins add are
    restored after. ``stdin`` as bytes is read as a real stdin is (a text stream over a binary
    buffer, for NUL-separated names). Warnings go to stderr under a fresh interpreter's filters,
    as a user would see them (pytest would otherwise collect them). ``extra_path`` is put first
    on ``sys.path`` (as :func:`run_cli` puts it on PYTHONPATH: the distributions installed there
    are found by their entry points); the path and the modules imported from it are restored
    after."""
    import io
    import warnings

    from posterforge import cli as cli_module

    app = cli_module.app
    saved_env = dict(os.environ)
    saved = (list(app.registered_commands), list(app.registered_groups))
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env or {})
    saved_path = list(sys.path)
    if extra_path is not None:
        import importlib

        sys.path.insert(0, str(extra_path))
        importlib.invalidate_caches()
    plugins.reset()
    real_stdin = sys.stdin
    if isinstance(stdin, bytes):
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    else:
        sys.stdin = io.StringIO(stdin or "")
    try:
        with (
            contextlib.chdir(cwd if cwd is not None else os.getcwd()),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            _fresh_warning_filters()
            try:
                cli_module.main(list(args))
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.stdin = real_stdin
        if extra_path is not None:
            sys.path[:] = saved_path
            forget_modules_under(Path(extra_path))
        os.environ.clear()
        os.environ.update(saved_env)
        app.registered_commands[:], app.registered_groups[:] = saved
        plugins.reset()
    return Result(code, out.getvalue(), err.getvalue())


def forget_modules_under(folder: Path) -> None:
    """Drop from ``sys.modules`` what was imported from ``folder`` (a test's plugin site)."""
    root = str(folder.resolve())
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None) or ""
        if where and os.path.realpath(where).startswith(root + os.sep):
            del sys.modules[name]


def _fresh_warning_filters() -> None:
    """The filters of ``python -m posterforge`` (no -W), warnings printed to ``sys.stderr``."""
    import warnings

    warnings.resetwarnings()
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        stream = file if file is not None else sys.stderr
        stream.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show


@pytest.fixture
def inproc():
    return run_inprocess


@pytest.fixture
def small_genre_generator(tmp_path) -> Path:
    """A small genre cGAN with the shipped genre vocabulary (random but fixed weights), for the
    backend and export paths (no batch-norm calibration: only its arithmetic is compared)."""
    import torch

    from posterforge import presets
    from posterforge.plugins import get_host
    from posterforge.weights import make_header, save_weights
    from posterforge_genre_cgan.config import GenreConfig
    from posterforge_genre_cgan.network import GenreGenerator

    torch.manual_seed(0)
    names = list(presets.labels("genres", get_host()).names)
    net = GenreGenerator(GenreConfig(z_dim=16, ngf=4, image_size=(64, 128)), len(names))
    config = {"z_dim": 16, "ngf": 4, "image_size": [64, 128]}
    path = tmp_path / "gen.safetensors"
    save_weights(path, net.state_dict(), make_header("generator", "genre-cgan", config,
                                                     labels=names))  # fmt: skip
    return path


@pytest.fixture(scope="session")
def tiny_style(tmp_path_factory) -> Path:
    """A small CycleGAN translator in our weight format (random but fixed weights): fast enough
    to run the whole pipeline in tests."""
    import torch

    from posterforge.weights import make_header, save_weights
    from posterforge_cyclegan.config import ResnetConfig
    from posterforge_cyclegan.network import ResnetGenerator

    torch.manual_seed(0)
    net = ResnetGenerator(ResnetConfig(ngf=4, n_blocks=1, affine=True))
    path = tmp_path_factory.mktemp("styles") / "tiny.safetensors"
    header = make_header("translator", "cyclegan-resnet", net.config.to_dict())
    save_weights(path, net.state_dict(), header)
    return path
