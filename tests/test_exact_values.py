"""A property of the whole intake: any value in a Kaggle M5 cell either arrives exactly, through
import -> snapshot -> CheckSnapshot -> features, or stops the chain with a message that names where
it is (the import names the file, line and column; the snapshot and its checks name the row).

Hypothesis draws one units cell and one price cell (integers of every size and sign, floats,
NaN, infinities, blanks, text, unicode digits); a tiny M5 folder is written around them and
imported into a fresh SQLite file.
"""
from __future__ import annotations

import csv
import datetime as dt
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.snapshot import read_snapshot
from pipeline.core import bounds
from pipeline.data import db
from pipeline.stages import extract, quality
from pipeline.core import features
from pipeline.tools import m5import
from pipeline.data import storage
from pipeline.tools import world
from pipeline.core.errors import DataError

FIRST = dt.date(2016, 1, 1)
DAYS = 60
RUN_DATE = FIRST + dt.timedelta(days=DAYS - 1)
CELL_DAY = 40  # the d_ column (1-based) that holds the drawn units
SERIES = [("FOODS_1_001", "FOODS_1", "FOODS", "CA_1", "CA"), ("FOODS_1_002", "FOODS_1", "FOODS", "CA_1", "CA"),
          ("FOODS_1_001", "FOODS_1", "FOODS", "TX_1", "TX")]
PRICE_WEEK_ROW = 1  # the sell_prices line (0-based, after the header) that holds the drawn price

cells = st.one_of(
    st.integers(0, 2**40).map(str),
    st.integers(0, bounds.MAX_UNITS).map(str),
    st.integers(-2**40, -1).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "abc", "1e3", "0x10", " 7", "7 ", "+7", "007", "\u0663", "7.0", "2.5", "NaN", "NULL"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=4),
)


def _calendar() -> pd.DataFrame:
    cal = world.build_calendar()
    cal = cal[(cal["date"] >= pd.Timestamp(FIRST)) & (cal["date"] < pd.Timestamp(FIRST) + pd.Timedelta(days=DAYS + 28))]
    cal = cal.reset_index(drop=True)
    cal.insert(6, "d", [f"d_{k + 1}" for k in range(len(cal))])
    cal["date"] = cal["date"].dt.strftime("%Y-%m-%d")
    return cal[list(m5import.CALENDAR_COLUMNS)]


CALENDAR = _calendar()


def write_m5(folder: Path, units_cell: str, price_cell: str) -> None:
    CALENDAR.to_csv(folder / "calendar.csv", index=False)
    with open(folder / "sales_train_evaluation.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"]
                     + [f"d_{k + 1}" for k in range(DAYS)])
        for s, (item, dept, cat, store, state) in enumerate(SERIES):
            units = [str((k + s) % 4) for k in range(DAYS)]
            if s == 0:
                units[CELL_DAY - 1] = units_cell
            out.writerow([f"{item}_{store}_evaluation", item, dept, cat, store, state, *units])
    weeks = sorted(set(CALENDAR["wm_yr_wk"]))
    with open(folder / "sell_prices.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["store_id", "item_id", "wm_yr_wk", "sell_price"])
        for item, _, _, store, _ in SERIES:
            for k, week in enumerate(weeks):
                drawn = (item, store) == (SERIES[0][0], SERIES[0][3]) and k == PRICE_WEEK_ROW
                out.writerow([store, item, week, price_cell if drawn else "2.5"])


def counts(engine) -> dict[str, int]:
    names = sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar() for t in db.SOURCE_TABLES if t in names}


def names_its_place(message: str, file: str, column: str | None = None) -> bool:
    return file in message and re.search(r"\bline \d+", message) is not None and (column is None or column in message)


def run_intake(units_cell: str, price_cell: str):
    """Import, snapshot, its checks and features of the drawn cells; returns ("import"|"snapshot"|"quality",
    message) where the chain stops, or the values."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_m5(folder, units_cell, price_cell)
        engine = sa.create_engine(f"sqlite:///{folder / 'm5.sqlite'}")
        try:
            try:
                m5import.import_m5(engine, folder)
            except DataError as exc:
                assert not any(counts(engine).values()), "a refused import left rows behind"
                return "import", str(exc)
            try:
                out = folder / "snapshot"
                with storage.atomic_dir(out) as tmp_out:
                    extract.extract_snapshot(engine, RUN_DATE, tmp_out)
            except DataError as exc:
                return "snapshot", str(exc)
            try:  # CheckSnapshot: the one judge of what a snapshot can hold but no forecast should use
                quality.run_checks(out, RUN_DATE).raise_if_failed()
            except DataError as exc:
                return "quality", str(exc)
            snap = {name: read_snapshot(out, name) for name in ("sales", "prices", "calendar", "items", "stores")}
            item, _, _, store, _ = SERIES[0]
            cell_date = pd.Timestamp(FIRST + dt.timedelta(days=CELL_DAY - 1))
            sales = snap["sales"]
            stored_units = sales[(sales.item_id == item) & (sales.store_id == store) & (sales.date == cell_date)]["units"]
            week = sorted(set(CALENDAR["wm_yr_wk"]))[PRICE_WEEK_ROW]
            prices = snap["prices"]
            stored_price = prices[(prices.item_id == item) & (prices.store_id == store)
                                  & (prices.wm_yr_wk == week)]["sell_price"]
            one = sales[(sales.store_id == store)].reset_index(drop=True)
            frame = features.build_features(
                one, prices[prices.store_id == store].reset_index(drop=True), snap["calendar"], snap["items"],
                snap["stores"], features.item_mean_prices(prices, features.series_keys(sales),
                                                          features.weeks_of(snap["calendar"])),
                pd.DatetimeIndex([cell_date]), RUN_DATE, with_target=True)
            label = frame[(frame.item_id == item)][features.TARGET]
            return int(stored_units.iloc[0]), float(stored_price.iloc[0]), float(label.iloc[0])
        finally:
            engine.dispose()


def _units(cell: str) -> int | None:
    """The value a units cell means, if it is a whole non-negative number written in ASCII digits."""
    return int(cell) if re.fullmatch(r"[0-9]+", cell) else None


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units_cell=cells)
def test_units_arrive_exactly_or_stop_the_chain_naming_the_cell(units_cell):
    result = run_intake(units_cell, "2.5")
    value = _units(units_cell)
    if value is not None and value <= bounds.MAX_UNITS:  # every count the pipeline can hold must get through
        assert not isinstance(result[0], str), result
    if isinstance(result[0], str):
        stage, message = result
        if stage == "import":
            assert names_its_place(message, "sales_train_evaluation.csv", f"d_{CELL_DAY}"), message
        else:
            for part in ("FOODS_1_001", "CA_1", str(FIRST + dt.timedelta(days=CELL_DAY - 1))):
                assert part in message, message
        return
    stored, _, label = result
    assert value is not None, f"{units_cell!r} was accepted as {stored}"
    assert stored == value and label == value  # exactly, in the snapshot and as the training label


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(price_cell=cells)
def test_prices_arrive_exactly_or_stop_the_chain_naming_the_cell(price_cell):
    result = run_intake("3", price_cell)
    if isinstance(result[0], str):
        stage, message = result
        if stage == "import":
            assert names_its_place(message, "sell_prices.csv", "sell_price"), message
        else:
            assert "FOODS_1_001" in message and "CA_1" in message, message
        return
    _, stored, _ = result
    expected = float(price_cell)  # what the cell says, read as Python reads a decimal
    assert np.isfinite(expected) and 0 < expected <= bounds.MAX_SELL_PRICE, f"{price_cell!r} was accepted"
    assert stored == expected


@pytest.mark.parametrize("cell, expected", [("65541", 65541), ("70000", 70000), (str(bounds.MAX_UNITS), bounds.MAX_UNITS)])
def test_the_issues_examples_arrive_exactly(cell, expected):
    stored, _, label = run_intake(cell, "2.5")
    assert stored == expected == label


@pytest.mark.parametrize("cell", ["1000000000", str(bounds.MAX_UNITS + 1)])
def test_counts_the_float32_label_cannot_hold_stop_at_the_snapshot(cell):
    stage, message = run_intake(cell, "2.5")
    assert stage == "snapshot" and "whole numbers up to 16,777,216" in message and "FOODS_1_001" in message, message
