"""The ``report`` and ``runs`` jobs: which run folders to read, checked once when the job is made
(a folder that is not a run, an existing report without ``overwrite``: one line each)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import about, at_least


@dataclass(frozen=True)
class ReportJob:
    """Write one self-contained HTML page (``out``) about the training runs ``runs``: their loss
    and metric curves overlaid, each run's sample grids as a timeline, recipe, provenance,
    time per step and best checkpoint. The page needs no network."""

    runs: tuple[Path, ...] = about("Run folders (the --out of train).", ())
    out: Path = about("The HTML file to write.", Path("report.html"))
    overwrite: bool = about("Replace --out when it exists.", False)
    frames: int = about(
        "At most this many sample grids per run in its timeline (evenly spaced, the last always).",
        40,
    )

    def __post_init__(self) -> None:
        from posterforge.training.runinfo import is_run

        runs = (self.runs,) if isinstance(self.runs, str | Path) else self.runs
        object.__setattr__(self, "runs", tuple(Path(r) for r in runs))
        object.__setattr__(self, "out", Path(self.out))
        if not self.runs:
            raise PosterforgeError("name at least one run folder")
        for run in self.runs:
            if not run.is_dir():
                raise PosterforgeError(f"{run}: no such folder")
            if not is_run(run):
                raise PosterforgeError(
                    f"{run}: not a run folder (it holds no config.json or request.json of a "
                    "training)"
                )
        at_least(self.frames, 1, "frames")
        if self.out.is_dir():
            raise PosterforgeError(f"--out {self.out}: a folder; name the HTML file to write")
        if self.out.exists() and not self.overwrite:
            raise PosterforgeError(f"--out {self.out} exists: pass --overwrite to replace it")


@dataclass(frozen=True)
class RunsJob:
    """List the training runs under ``folder`` (itself, when it is a run; up to three levels
    down): name, family, step of max, status, best metric and last checkpoint."""

    folder: Path = about("Where the run folders are.", Path("."))

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))
        if not self.folder.is_dir():
            raise PosterforgeError(f"{self.folder}: no such folder")
