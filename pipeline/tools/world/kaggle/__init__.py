"""A generated world as the Kaggle M5 files, for the importer (``make import-m5``) and peers that read those files.

``export_kaggle(out_dir, scale, seed, dynamics)`` draws the world that
:func:`pipeline.tools.world.generate_world` writes for the same arguments and writes into the new
folder ``out_dir``, in the layout and id formats of the M5 competition (``d_1`` = 2011-01-29):

* ``calendar.csv``: the whole calendar, d_1..d_1969 (2011-01-29..2016-06-19), empty where no event;
* ``sell_prices.csv``: ``store_id,item_id,wm_yr_wk,sell_price``, every priced week of every series
  through 2016-06-19 (as M5's), the generated prices exactly (shortest decimal that reads back as
  the same double);
* ``sales_train_validation.csv`` (d_1..d_1913, ids ``{item}_{store}_validation``) and
  ``sales_train_evaluation.csv`` (d_1..d_1941, ids ``..._evaluation``): one line per series, stores in
  order CA_1..WI_3 and items in M5's order (HOBBIES, HOUSEHOLD, FOODS, then item_id);
* ``sales_test_evaluation.csv``: the same lines for d_1942..d_1969, the truth M5 released after the
  competition (the importer does not read it);
* ``world.json``: scale, seed, the set of dynamics with its realised effects, and how many leading
  days are zeros because the scale's history starts after 2011-01-29 (tiny: from 2014-06-01).

Values: the Kaggle files hold one value per (series, day), with no revision history. The sales
files hold each day's units as they stood at the end of d_1941 (2016-05-22): the original row, or
its latest correction recorded before 2016-05-23 00:00 (the test file: every correction). Days
before the scale's first day hold 0 (an item not yet sold, as in M5). Imported with
``python -m pipeline.tools.m5import --dir DIR`` (:mod:`pipeline.tools.m5import`), every sales row is
recorded at 23:00 of its own day (the end of the day, as the world records its original rows), so
a corrected value looks as if known from that day on; every price row at 00:00 of the first day
of its Walmart week, exactly as the world records its prices.

Command line: ``python -m pipeline.tools.world.kaggle --scale S --seed N --dynamics D --out DIR``.
"""
from __future__ import annotations

from pipeline.tools.world.kaggle.cli import main
from pipeline.tools.world.kaggle.export import (
    AS_OF, EVALUATION_DAYS, SUMMARY_FILE, TEST_FILE, TRAIN_FILES, VALIDATION_DAYS, export_kaggle, final_units, m5_item_order,
)

__all__ = ["AS_OF", "EVALUATION_DAYS", "SUMMARY_FILE", "TEST_FILE", "TRAIN_FILES", "VALIDATION_DAYS", "export_kaggle",
           "final_units", "m5_item_order", "main"]
