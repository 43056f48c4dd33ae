"""``posterforge weights list|info|import|export|path|rm|rename``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posterforge.cli.jobs import Opt, job_command
from posterforge.cli.output import print_json, print_table
from posterforge.jobs.weights import WeightsExportJob

app = typer.Typer(
    help="Manage the weight store (list, info, import foreign checkpoints, export to ONNX, locate, "
    "rm, rename).",
    no_args_is_help=True,
)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the weight files in the store."""
    from posterforge.store import Store

    store = Store()
    items = [
        {
            "name": e.name,
            "kind": e.header.get("kind"),
            "arch": e.header.get("arch"),
            "size_mb": round(e.size / 1e6, 1),
            "licence": e.header.get("licence", ""),
            "path": str(e.path),
            "problem": e.problem,
        }
        for e in store.entries()
    ]
    if as_json:
        print_json(items)
        return
    print_table(
        f"Weights in {store.weights_dir}",
        ("name", "kind", "arch", "MB", "licence"),
        [
            (
                i["name"],
                i["kind"] or f"unusable: {i['problem']}",
                i["arch"],
                i["size_mb"],
                i["licence"],
            )
            for i in items
        ],
    )


@app.command("info")
def info(spec: Annotated[str, typer.Argument(help="A weight name or file.")]) -> None:
    """Print everything a weight file's header holds (kind, arch, config, labels, licence,
    provenance: steps, data counts, --init-from, ...) as JSON."""
    from posterforge.api import weights_path
    from posterforge.weights import read_header, tensor_shapes

    path = weights_path(spec)
    shapes = tensor_shapes(path)
    count = sum(_numel(s) for s in shapes.values())
    print_json({"path": str(path), "tensors": len(shapes), "parameters": count,
                **read_header(path)})  # fmt: skip


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@app.command("rm")
def rm(name: Annotated[str, typer.Argument(help="A name in the store.")]) -> None:
    """Delete weights from the store (a plugin's shipped weights come back on next use)."""
    from posterforge.errors import PosterforgeError
    from posterforge.plugins import get_host
    from posterforge.store import Store

    store, host = Store(), get_host()
    if not store.has(name) and name in host.weight_sources:
        owner = host.weight_sources.entry(name).plugin
        raise PosterforgeError(
            f"{name!r} comes with plugin {owner!r} and has no copy in the store: nothing to remove"
        )
    typer.echo(f"removed {store.remove(name)}")


@app.command("rename")
def rename(
    old: Annotated[str, typer.Argument(help="A name in the store.")],
    new: Annotated[str, typer.Argument(help="The new name.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace weights of the new name.")
    ] = False,
) -> None:
    """Rename weights in the store (a style trained as --name x becomes --style NEW)."""
    from posterforge.catalog import check_free_name
    from posterforge.plugins import get_host
    from posterforge.store import Store

    store = Store()
    check_free_name(new, get_host(), store, overwrite=overwrite)
    typer.echo(str(store.rename(old, new, overwrite=overwrite)))


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A .pth/.pt state dict to convert.")],
    name: Annotated[str, typer.Option("--name", help="Name in the store, e.g. a style name.")],
    fmt: Annotated[
        str, typer.Option("--format", help="Checkpoint layout: auto, or an importer's name.")
    ] = "auto",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing weights.")
    ] = False,
) -> None:
    """Import a foreign checkpoint into our format (read with weights_only=True)."""
    from posterforge.api import import_weights

    path = import_weights(file, name, fmt=fmt, overwrite=overwrite)
    typer.echo(str(path))


@app.command("path")
def path(spec: Annotated[str, typer.Argument(help="A weight name or file.")]) -> None:
    """Print the file that a weight name resolves to (importing a plugin source if needed)."""
    from posterforge.api import weights_path

    typer.echo(str(weights_path(spec)))


def _export(job: WeightsExportJob) -> None:
    """Write a translator or generator as a standard ONNX file, checked against torch:
    [bold]posterforge weights export vintage --format onnx --size 256x256 --out vintage.onnx[/].

    The file holds our metadata (model, sha256, input layout and range, size or dynamic axes,
    labels); the batch axis is always dynamic. Prints the file on stdout and how ONNX Runtime
    matched torch on stderr.
    """
    import sys

    from posterforge.onnx_export import export_onnx

    done = export_onnx(job)
    print(f"posterforge: {done.summary()}", file=sys.stderr)
    typer.echo(str(done.path))


EXPORT_OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "model": Opt(str, typer.Argument(metavar="NAME")),
    "fmt": Opt(str, typer.Option("--format", "-f")),
    "size": Opt(str | None, typer.Option(metavar="WxH")),
    "dynamic": Opt(bool, typer.Option("--dynamic")),
    "out": Opt(Path, typer.Option("--out", "-o", metavar="FILE.onnx")),
    "overwrite": Opt(bool, typer.Option("--overwrite")),
}
app.command("export")(job_command(WeightsExportJob, EXPORT_OPTIONS, _export))
