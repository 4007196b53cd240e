"""The demand model's constants (why these values: they reproduce M5's orders of magnitude) and its random streams."""
from __future__ import annotations

import numpy as np

# median daily units of an item in an average store at TREND_ORIGIN, tuned so that the median
# series in 2016 sells about what M5's does (FOODS ~1, HOBBIES_2 ~0.2) and ~55 % of item-days are 0
DEPT_RATE = {"FOODS_1": 1.2, "FOODS_2": 1.1, "FOODS_3": 1.5, "HOBBIES_1": 0.5,
              "HOBBIES_2": 0.3, "HOUSEHOLD_1": 1.1, "HOUSEHOLD_2": 0.4}
RATE_SIGMA = 1.05  # log-normal spread of item rates: many slow movers, a few fast ones
# median regular price in dollars per department (M5 CA_1: FOODS ~2-3, HOBBIES_1 ~7, HOUSEHOLD ~5)
DEPT_PRICE = {"FOODS_1": 2.9, "FOODS_2": 3.3, "FOODS_3": 2.4, "HOBBIES_1": 6.5,
               "HOBBIES_2": 2.2, "HOUSEHOLD_1": 4.2, "HOUSEHOLD_2": 5.8}
# relative store volumes, after M5's 2016 store totals
STORE_SIZE = {"CA_1": 1.09, "CA_2": 1.08, "CA_3": 1.42, "CA_4": 0.64, "TX_1": 0.79,
               "TX_2": 0.94, "TX_3": 0.95, "WI_1": 0.92, "WI_2": 1.25, "WI_3": 0.93}
# weekday profile per category, wday 1=Saturday .. 7=Friday (M5: weekends ~+30 %, Tue-Thu lowest)
WEEKLY = {
    "FOODS": (1.30, 1.34, 1.00, 0.89, 0.86, 0.86, 0.97),
    "HOBBIES": (1.25, 1.22, 0.98, 0.91, 0.90, 0.90, 1.00),
    "HOUSEHOLD": (1.33, 1.31, 0.99, 0.88, 0.86, 0.86, 0.95),
}
# yearly seasonality per category: (amplitude on log scale, day of year of the peak)
YEARLY = {"FOODS": (0.04, 200), "HOBBIES": (0.12, 340), "HOUSEHOLD": (0.08, 190)}
GROWTH = {"FOODS": 0.03, "HOBBIES": 0.04, "HOUSEHOLD": 0.08}  # per year, log scale
# SNAP uplift range per category on the store's state's SNAP days (multiplier 1 + u)
SNAP_UPLIFT = {"FOODS": (0.08, 0.35), "HOBBIES": (0.0, 0.0), "HOUSEHOLD": (0.0, 0.05)}
# event effects: name -> ((day offset, (FOODS, HOBBIES, HOUSEHOLD) multipliers), ...)
EVENT_EFFECTS = {
    "SuperBowl": ((-1, (1.18, 1.0, 1.03)), (0, (1.10, 0.95, 0.97))),
    "ValentinesDay": ((-1, (1.05, 1.15, 1.0)), (0, (1.03, 1.10, 1.0))),
    "Easter": ((-2, (1.08, 1.10, 1.03)), (-1, (1.15, 1.12, 1.05)), (0, (0.80, 0.75, 0.75))),
    "Mother's day": ((-1, (1.06, 1.10, 1.05)),),
    "MemorialDay": ((-2, (1.10, 1.0, 1.05)), (-1, (1.12, 1.0, 1.05))),
    "IndependenceDay": ((-2, (1.10, 1.05, 1.05)), (-1, (1.18, 1.08, 1.08)), (0, (0.85, 0.85, 0.85))),
    "LaborDay": ((-2, (1.08, 1.0, 1.04)), (-1, (1.10, 1.0, 1.04))),
    "Halloween": tuple((o, (1.06, 1.25, 1.04)) for o in range(-6, 0)) + ((0, (1.05, 1.10, 1.0)),),
    "Thanksgiving": ((-3, (1.15, 1.0, 1.05)), (-2, (1.25, 1.0, 1.05)), (-1, (1.30, 1.0, 1.05)),
                     (0, (0.55, 0.60, 0.60)), (1, (1.0, 1.35, 1.25))),
    "Christmas": tuple((o, (1.06, 1.22, 1.08)) for o in range(-10, -2))
                 + ((-2, (1.15, 1.20, 1.05)), (-1, (1.10, 0.95, 0.85)), (1, (0.95, 1.10, 1.05))),
    "NewYear": ((-1, (1.15, 1.0, 1.0)), (0, (0.80, 0.70, 0.75))),
    "Ramadan starts": ((0, (1.04, 1.0, 1.0)),),
    "Cinco De Mayo": ((0, (1.06, 1.0, 1.0)),),
}
# endings of regular prices and their weights (M5: .98 and .97 dominate, then .88/.48/.47/.50)
PRICE_ENDINGS = np.array([0.98, 0.97, 0.88, 0.48, 0.47, 0.50, 0.00, 0.94, 0.68, 0.28, 0.78])
PRICE_ENDING_WEIGHTS = np.array([0.24, 0.23, 0.09, 0.09, 0.06, 0.06, 0.05, 0.05, 0.05, 0.04, 0.04])
PROMO_ENDINGS = np.array([0.00, 0.50, 0.88, 0.97, 0.48, 0.98])

LATE_LAUNCH_SHARE = 0.25  # items first sold after history_start (leading zeros, no prices before)
CORRECTION_SHARE = 0.003  # sales rows later corrected by an appended row
ROWS_PER_WRITE = 500_000  # rows per write: bounds the memory of one chunk (its frame and its Arrow copy)

# stream tags for SeedSequence([seed, tag, index]); fixed forever, or old seeds change meaning
ITEM_STREAM, STATE_STREAM, STORE_STREAM = 0, 1, 2
DYNAMICS_STREAM = 3  # the dynamics' effects (pipeline.tools.world.effects): SeedSequence([seed, 3, effect])
# reference day of the trends, so a series' level does not depend on the scale's start
TREND_ORIGIN = np.datetime64("2014-01-01")


def stream_rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))

