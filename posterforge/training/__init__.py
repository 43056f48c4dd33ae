"""Training: the generic harness (``harness``), data streams (``data``), augmentation
(``augment``), DDP set-up (``distributed``) and the contract families implement (``task``)."""
