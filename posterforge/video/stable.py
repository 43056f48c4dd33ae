"""What a stabilised video (``translate --stabilize``, :mod:`posterforge.stabilize`) adds to the
pipeline: the scene cuts where the shared statistics restart, and their state kept beside the
segments so that a resumed run goes on from exactly where the finished segments stopped.

- Scene cuts are found on the decode thread by the detector of ``frames --scenes``
  (:class:`~posterforge.video.picks.ShotPicker`), fed every frame, the frames a resumed run skips
  included, so a resumed run finds the same cuts. A model batch ends before a cut (as it does
  before a segment's start), and the state is reset before the batch that starts the shot.
- Before the batch that starts a segment, the model thread takes the state (two fp32 vectors per
  instance norm); it travels with that frame to the encode thread, which writes it beside the
  segment before (``seg-000003.state``: the state after segment 3, before segment 4's first
  frame) and lists it with that segment in the manifest. A resumed run restores the state of the
  last finished segment: the same state, the same batches, the same bytes.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from posterforge.engine import Engine
    from posterforge.video.segments import Parts


class StateLost(Exception):
    """The finished segments of a stabilised video have no readable state to go on from."""


class SceneCuts:
    """Feed every frame in order; says whether each starts a shot (the first frame does)."""

    def __init__(self, time_base: Fraction):
        from posterforge.video.picks import ShotPicker

        self.time_base = time_base
        self.picker: ShotPicker[None] = ShotPicker()

    def __call__(self, pts: int, frame: Any) -> bool:
        from posterforge.video.picks import THUMB

        thumb = frame.reformat(
            width=THUMB[0], height=THUMB[1], format="rgb24", interpolation="AREA"
        ).to_ndarray()
        before = len(self.picker.cuts)
        self.picker.feed(float(pts * self.time_base), thumb, None)
        return len(self.picker.cuts) > before


def stabilized(engine: Engine) -> bool:
    return getattr(engine, "stabilize", None) is not None


def snapshot(engine: Engine) -> dict[str, torch.Tensor]:
    from posterforge.stabilize import norm_state

    return norm_state(engine.module)


def reset(engine: Engine) -> None:
    from posterforge.stabilize import reset as reset_norms

    reset_norms(engine.module)


def state_name(segment_file: str) -> str:
    return Path(segment_file).with_suffix(".state").name


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from posterforge.stabilize import state_bytes as to_bytes

    return to_bytes(state)


def restore(engine: Engine, parts: Parts) -> None:
    """Set the engine's shared statistics to those after the last finished segment."""
    from posterforge.stabilize import load_state, set_norm_state

    last = parts.segments[-1] if parts.segments else None
    if last is None or not last.state:
        raise StateLost("the finished segments hold no stabilisation state")
    try:
        set_norm_state(engine.module, load_state(parts.dir / last.state), engine.device)
    except ValueError as e:
        raise StateLost(f"the stabilisation state is unreadable ({e})") from None
