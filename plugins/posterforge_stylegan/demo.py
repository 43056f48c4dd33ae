"""Ship a StyleGAN run as the ``posters-stylegan`` demo weights (``make demo-stylegan``).

    python -m posterforge_stylegan.demo ship RUN_DIR [--step N]

stores the model of the run's checkpoint (the newest, or ``--step``) in the plugin's
``weights/`` folder with its sha256, a description and the data it learnt (the synthetic demo
posters of :mod:`posterforge_genre_cgan.demo_data`, not real films).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from posterforge_stylegan import DEMO_FILE

TRAINED_ON = (
    "synthetic demo posters, not real films: 150 per genre drawn by "
    "`python -m posterforge_genre_cgan.demo_data make OUT --per-genre 150 --seed 0`"
)


def ship(run_dir: Path, step: int | None = None) -> Path:
    from posterforge.plugin import Store, export_run, ship_weights

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        exported = export_run(run_dir, "shipped", step=step, store=store)
        return ship_weights(
            exported,
            DEMO_FILE,
            description="Demo StyleGAN poster generator trained on synthetic posters (not real "
            "films)",
            licence="MIT",
            provenance={"trained_on": TRAINED_ON, "command": "make demo-stylegan"},
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("ship", help="ship a run's checkpoint as the posters-stylegan weights")
    cmd.add_argument("run_dir", type=Path)
    cmd.add_argument("--step", type=int, default=None)
    args = parser.parse_args(argv)
    print(ship(args.run_dir, args.step))


if __name__ == "__main__":
    main()
