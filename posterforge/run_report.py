"""``posterforge report``: one self-contained HTML page about one or more training runs.

The page carries everything inline: its CSS and a small script (``templates/report/``) that draws
the curves as SVG and the sample timelines from a JSON block, and the sample grids as ``data:``
URIs (at most ``frames`` per run, at most ``FRAME_WIDTH`` pixels wide). It loads nothing from
the network. Recipe, provenance, timing and the best checkpoint are plain HTML.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import write_text_atomic

if TYPE_CHECKING:
    from posterforge.jobs.report import ReportJob
    from posterforge.training.runinfo import RunInfo

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
FRAME_WIDTH = 640  # a wider sample grid is scaled down (and stored as JPEG)
RAW_BYTES = 300_000  # a PNG up to this size and width goes in as it is
LIST_ITEMS = 12  # longer lists in the recipe and provenance are cut (with a count)
CURVE_POINTS = 2000  # a longer curve is thinned to about this many points (the last kept)


def write_report(job: ReportJob) -> Path:
    """Read the job's runs and write its page (atomically); returns ``job.out``."""
    from posterforge.training.runinfo import read_run

    infos = [read_run(r) for r in job.runs]
    text = render(infos, job.frames)
    job.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(job.out, text)
    return job.out


def labels(infos: list[RunInfo]) -> list[str]:
    """Each run's name, or its path where two runs share a name."""
    names = [i.name for i in infos]
    return [i.name if names.count(i.name) == 1 else str(i.path) for i in infos]


def pick(n: int, most: int) -> list[int]:
    """``most`` indices of ``n`` items, evenly spaced, the first and the last among them."""
    if n <= most:
        return list(range(n))
    if most == 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def frame_uri(path: Path) -> str | None:
    """A sample grid as a ``data:`` URI, scaled to at most ``FRAME_WIDTH`` wide; None when the
    file cannot be read as an image."""
    from PIL import Image

    try:
        raw = path.read_bytes()
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            if im.width <= FRAME_WIDTH and len(raw) <= RAW_BYTES and im.format == "PNG":
                return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")
            rgb = im.convert("RGB")
            if rgb.width > FRAME_WIDTH:
                height = max(1, round(rgb.height * FRAME_WIDTH / rgb.width))
                rgb = rgb.resize((FRAME_WIDTH, height), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            rgb.save(buf, "JPEG", quality=85)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thin(points: list[Any], most: int = CURVE_POINTS) -> list[Any]:
    """Every k-th point of a long curve, so that about ``most`` are left, the last among them."""
    if len(points) <= most:
        return points
    k = -(-len(points) // most)
    kept = points[::k]
    return kept if kept[-1] is points[-1] else [*kept, points[-1]]


def run_data(info: RunInfo, label: str, colour: str, frames: int) -> dict[str, Any]:
    """What the page's script draws for one run."""
    from posterforge.training.runinfo import step_times

    losses: dict[str, list[list[float]]] = {}
    for line in info.log:
        for k, v in line.items():
            if k not in ("step", "time") and isinstance(v, int | float):
                losses.setdefault(k, []).append([line["step"], v])
    metrics: dict[str, list[list[float]]] = {}
    for m in info.metrics:
        for k, v in m.get("values", {}).items():
            if isinstance(v, int | float):
                metrics.setdefault(k, []).append([m["step"], v])
    losses = {k: thin(v) for k, v in losses.items()}
    timing = {
        "seconds per step (training)": [[s, t] for s, t in step_times(info)],
        "seconds per metric pass": [[m["step"], m.get("seconds", 0.0)] for m in info.metrics],
    }
    shown = [info.samples[i] for i in pick(len(info.samples), frames)]
    framed = [{"step": s, "src": uri} for s, p in shown if (uri := frame_uri(p)) is not None]
    return {
        "label": label,
        "color": colour,
        "losses": losses,
        "metrics": metrics,
        "timing": {k: thin(v) for k, v in timing.items() if v},
        "frames": framed,
    }


def _trim(value: Any) -> Any:
    """``value`` with long lists cut to ``LIST_ITEMS`` and a count of the rest."""
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    if isinstance(value, list):
        kept = [_trim(v) for v in value[:LIST_ITEMS]]
        if len(value) > LIST_ITEMS:
            kept.append(f"... {len(value) - LIST_ITEMS} more")
        return kept
    return value


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def _num(value: float | None, unit: str, digits: int = 3) -> str:
    return "not measured" if value is None else f"{value:.{digits}g} {unit}"


def _run_section(info: RunInfo, index: int, label: str, colour: str) -> str:
    from posterforge.training.runinfo import timing

    t = timing(info)
    step = f"{info.step} of {info.max_steps}" if info.max_steps is not None else str(info.step)
    best = info.best
    if best:
        where = _e(best["file"]) if best.get("file") else "not kept (no checkpoints/best.pt)"
        best_text = f"{_e(info.best_text())}<br>{where}"
    else:
        best_text = '<span class="none">none tracked (train.best_by)</span>'
    last = info.last_checkpoint
    pairs = [
        ("path", _e(info.path)),
        ("family", _e(f"{info.family or '?'} ({info.kind or '?'})")),
        ("status", f'<span class="status-{_e(info.status)}">{_e(info.status)}</span>'),
        ("step", _e(step)),
        ("best checkpoint", best_text),
        ("last checkpoint", _e(last) if last else '<span class="none">none</span>'),
        ("time per step", _e(_num(t["seconds_per_step"], "s") + " (median, metric passes apart)")),
        ("throughput", _e(_num(t["steps_per_second"], "steps/s")
                          + (f", {t['images_per_second']:.3g} images/s"
                             if t["images_per_second"] else ""))),
        ("metric passes", _e(f"{t['metric_passes']}, {t['metric_seconds_total']:.3g} s in all"
                             + (f", {t['metric_seconds_each']:.3g} s each (median)"
                                if t["metric_seconds_each"] is not None else ""))),
    ]  # fmt: skip
    request = {k: v for k, v in info.request.items() if k != "recipe"}
    recipe = info.request.get("recipe") or {"train": info.config}
    blocks = [
        ("recipe", recipe),
        ("request (inputs, seed, data)", request),
        ("exported model's provenance", info.provenance),
    ]
    details = "".join(
        f"<details><summary>{_e(title)}</summary><pre>"
        f"{_e(json.dumps(_trim(value), indent=2, sort_keys=True))}</pre></details>"
        for title, value in blocks
        if value
    )
    return (
        f'<section class="run" id="run-{index}"><h3><span class="swatch" '
        f'style="background:{colour}"></span>{_e(label)}</h3>'
        f"<table>{_rows(pairs)}</table>{details}"
        f'<h3>sample grids</h3><div class="timeline" data-run="{index}"></div></section>'
    )


def _asset(name: str) -> str:
    return (resources.files("posterforge") / "templates" / "report" / name).read_text("utf-8")


def _script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` can end it early)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(data: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinity, which JSON has not, as null (the script skips them)."""

    def fix(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return fix(data)


def render(infos: list[RunInfo], frames: int) -> str:
    """The page's HTML for these runs."""
    names = labels(infos)
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(infos))]
    data = {
        "runs": [run_data(i, n, c, frames) for i, n, c in zip(infos, names, colours, strict=True)]
    }
    title = "posterforge report: " + ", ".join(names)
    legend = "".join(
        f'<li><a href="#run-{k}"><span class="swatch" style="background:{c}"></span>{_e(n)}</a>'
        f" ({_e(i.status)}, step {i.step})</li>"
        for k, (i, n, c) in enumerate(zip(infos, names, colours, strict=True))
    )
    runs = "".join(
        _run_section(i, k, n, c)
        for k, (i, n, c) in enumerate(zip(infos, names, colours, strict=True))
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<script>window.addEventListener("error", function (e) {{
  document.documentElement.setAttribute("data-js-error", String(e.message)); }});</script>
<style>{_asset("report.css")}</style></head>
<body><h1>{_e(title)}</h1><ul class="legend">{legend}</ul>
<h2>metrics (held-out images)</h2><div class="charts" data-group="metrics"></div>
<h2>losses</h2><div class="charts" data-group="losses"></div>
<h2>time</h2><div class="charts" data-group="timing"></div>
<h2>runs</h2><div class="runs">{runs}</div>
<script type="application/json" id="report-data">{_script_json(_finite(data))}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""
