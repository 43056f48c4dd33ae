"""Which path an engine runs each shape on: what was asked (``--backend``), what can run here, and
for ``auto`` the cached calibration (:mod:`posterforge.backends.calibration`).

Decided per run key (entry and shapes) on its first call, or ahead of it by
:meth:`Choice.decide` for the shapes a job announced, so the outputs record can name the path
before any image is written. Every failure of a path falls back to torch with one note line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from posterforge.backends import OPENVINO, PLAIN, TORCH, BackendFailed, size_class

if TYPE_CHECKING:
    from posterforge.backends.openvino import OpenVINOPath
    from posterforge.engine import Engine

log = logging.getLogger(__name__)

# A model this small runs in milliseconds a frame on any path: timing it would choose on noise,
# so "auto" keeps it on torch without calibrating (the test models are this small).
CALIBRATE_MIN_PARAMS = 1_000_000


@dataclass
class Decision:
    path: str
    how: str  # "asked", "calibrated YYYY-MM-DD", "only torch here", or why a path fell back
    why: str = ""  # a calibration's timings in one line (calibration.explain), else empty


@dataclass
class Choice:
    engine: Engine
    decisions: dict[tuple, Decision] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # said once each
    _openvino: dict[str, OpenVINOPath] = field(default_factory=dict)
    _openvino_failed: str | None = None

    # -- what runs ------------------------------------------------------------------------------
    def path(self, key: tuple, args: tuple[torch.Tensor | None, ...]) -> str:
        if key not in self.decisions:
            self.decisions[key] = self._decide(key, args)
        return self.decisions[key].path

    def function(self, path: str, entry: str) -> Callable[..., torch.Tensor]:
        """The callable of a non-torch path (torch paths are the engine's, for its compile
        policy)."""
        assert path == OPENVINO
        return self._openvino_for(entry)

    def failed(self, key: tuple, error: BackendFailed) -> None:
        """A path failed on its first real call: this key, and OpenVINO for the engine, go to
        torch (a decision made before the failure would write other bytes: none were written)."""
        self._openvino_broken(str(error))
        self.decisions[key] = Decision(TORCH, str(error))

    def decide(self, keys: list[tuple], example: Callable[[tuple], tuple]) -> None:
        """Decide ahead for ``keys`` (calibrating where needed) with inputs from ``example``."""
        for key in keys:
            if key not in self.decisions:
                self.path(key, example(key))

    # -- what the record and the device line say -------------------------------------------------
    def record(self) -> str | None:
        """The paths decided, for the outputs record: None when torch alone (the bytes every
        earlier version wrote, so their outputs stay valid)."""
        paths = sorted({d.path for d in self.decisions.values()})
        return None if paths in ([], [TORCH]) else "+".join(paths)

    def calibrations(self) -> list[str]:
        """Why each calibrated path was taken, one line per shape class: its timings."""
        return list(dict.fromkeys(d.why for d in self.decisions.values() if d.why))

    def plain_torch(self) -> bool:
        """Torch asked and torch run: nothing to say beyond what the device line always said."""
        return self.engine.backend == TORCH and self.record() is None

    def line(self) -> str:
        """``backend openvino (calibrated 2026-12-02)``, ``backend torch (asked)``, ..."""
        seen = {(d.path, d.how): None for d in self.decisions.values()}
        if not seen:
            asked = self.engine.backend
            return f"backend {asked} ({'asked' if asked == TORCH else 'chosen on first use'})"
        return "backend " + ", ".join(f"{p} ({_short(how)})" for p, how in seen)

    # -- deciding ---------------------------------------------------------------------------------
    def _decide(self, key: tuple, args: tuple[torch.Tensor | None, ...]) -> Decision:
        engine, asked = self.engine, self.engine.backend
        if asked == TORCH:
            return Decision(TORCH, "asked")
        if engine.device.type != "cpu":
            return Decision(TORCH, "only torch on " + engine.device.type)
        if asked == OPENVINO:
            return self._try(OPENVINO, key, args, "asked")
        if _parameters(engine.plain) < CALIBRATE_MIN_PARAMS:
            return Decision(TORCH, "a small model: not calibrated")
        return self._calibrated(key, args)

    def _try(self, path: str, key: tuple, args: tuple, how: str) -> Decision:
        """``path`` for ``key`` when it can run here (OpenVINO converted and compiled now, so a
        failure is a note, never the job's failure), else torch, saying why."""
        if path == PLAIN and self.engine.plain is self.engine.module:
            return Decision(TORCH, f"{how} for {PLAIN}, the same module here")
        if path != OPENVINO:
            return Decision(path, how)
        if (why := self._openvino_unfit()) is not None:
            self._openvino_broken(why)
            return Decision(TORCH, why)
        try:
            self._run(self._openvino_for(key[0]), args)
        except BackendFailed as e:
            self._openvino_broken(str(e))
            return Decision(TORCH, str(e))
        return Decision(OPENVINO, how)

    def _calibrated(self, key: tuple, args: tuple) -> Decision:
        from posterforge.backends import calibration

        engine = self.engine
        entry_key = calibration.entry_key(
            engine.arch or engine.model_id, self._shape_class(key), engine.precision,
            engine.device.type,
        )  # fmt: skip
        kept = calibration.lookup(entry_key)
        if kept is None:
            candidates = self._candidates(key, args)
            if len(candidates) == 1:  # nothing to choose between: nothing to keep
                return Decision(TORCH, "only torch here")
            log.warning(
                "posterforge: calibrating %s on this machine (once): %s",
                " ".join(str(s) for s in key[1:] if s is not None),
                ", ".join(candidates),
            )
            times = calibration.fastest(
                {name: (lambda fn=fn: self._run(fn, args)) for name, fn in candidates.items()}
            )
            path = calibration.winner(calibration.medians(times))
            kept = calibration.remember(entry_key, path, times)
        gain = calibration.speedup(kept)
        how = f"calibrated {kept.get('date', '?')}" + (f", {gain}" if gain else "")
        decision = self._try(kept["path"], key, args, how)
        if decision.path == kept["path"]:  # not a fallback: the timings are why
            decision.why = f"{self._shape_class(key)}: {calibration.explain(kept)}"
        return decision

    def _candidates(
        self, key: tuple, args: tuple[torch.Tensor | None, ...]
    ) -> dict[str, Callable[..., torch.Tensor]]:
        """The paths this engine could run ``key`` on here, each a callable on ``args``."""
        engine, entry = self.engine, key[0]
        out = {TORCH: engine.eager(TORCH, entry)}
        if engine.plain is not engine.module:
            out[PLAIN] = engine.eager(PLAIN, entry)
        if self._try(OPENVINO, key, args, "").path == OPENVINO:
            out[OPENVINO] = self._openvino_for(entry)
        return out

    def _shape_class(self, key: tuple) -> str:
        shape = key[1]
        if key[0] == "forward":
            pixels = int(shape[-1]) * int(shape[-2])
        else:
            w, h = self.engine.module.image_size
            pixels = int(w) * int(h)
        return f"{key[0]}-b{shape[0]}-{size_class(pixels)}"

    def _run(self, fn: Callable[..., torch.Tensor], args: tuple) -> torch.Tensor:
        with torch.inference_mode(), self.engine._autocast():
            return fn(*args)

    # -- OpenVINO ---------------------------------------------------------------------------------
    def _openvino_unfit(self) -> str | None:
        engine = self.engine
        if self._openvino_failed is not None:
            return self._openvino_failed
        if not engine.exportable:
            return "openvino: this model family does not export"
        if engine.precision not in ("fp32", "bf16"):
            return f"openvino here runs fp32 and bf16, not {engine.precision}"
        from posterforge.backends.openvino import unavailable

        return unavailable()

    def _openvino_for(self, entry: str) -> OpenVINOPath:
        if entry not in self._openvino:
            from posterforge.backends.openvino import OpenVINOPath

            engine = self.engine
            self._openvino[entry] = OpenVINOPath(
                engine.plain, entry, engine.precision, engine.model_id, side=engine.example_side
            )
        return self._openvino[entry]

    def _openvino_broken(self, why: str) -> None:
        if self._openvino_failed is None:
            self._openvino_failed = why
            self._openvino.clear()
            log.warning("posterforge: note: %s; running on torch", why)


def _short(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
