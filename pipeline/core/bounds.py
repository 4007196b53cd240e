"""The values the pipeline takes in exactly, and the bounds past which it refuses them.

Units are whole, non-negative counts. The snapshot holds them as int32, the
feature engine as float32 and LightGBM's labels are float32, which hold every
integer up to 2**24 exactly: a larger count would be silently rounded, so it is
refused (the busiest M5 series sells hundreds a day). Prices are positive,
finite and at most ``MAX_SELL_PRICE`` a unit (M5's dearest item is about $108):
anything else is a data-entry error, not a price.
"""
from __future__ import annotations

MAX_UNITS = 1 << 24  # 16,777,216: the largest count float32 features and labels hold exactly
MAX_SELL_PRICE = 100_000.0
