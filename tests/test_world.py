"""Properties of the synthetic world (pipeline.tools.world), checked on scale ``tiny`` in SQLite files."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.tools import world
M5_CALENDAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "m5" / "calendar.parquet"
TABLES = ("calendar", "items", "stores", "sell_prices", "sales")


def _read(path: Path, sql: str, dates: tuple[str, ...] = ()) -> pd.DataFrame:
    with sqlite3.connect(path) as con:
        frame = pd.read_sql_query(sql, con)
    for col in dates:
        frame[col] = pd.to_datetime(frame[col], format="ISO8601")
    return frame


def _dump(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows in insertion order: equal dumps mean identical contents."""
    with sqlite3.connect(path) as con:
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in TABLES}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny world generated once: (path, summary, progress calls)."""
    path = tmp_path_factory.mktemp("world") / "tiny.sqlite"
    calls: list[tuple[float, str]] = []
    summary = world.generate_world(f"sqlite:///{path}", scale="tiny", seed=42, progress=lambda f, m: calls.append((f, m)))
    return path, summary, calls


@pytest.fixture(scope="module")
def sales(tiny):
    """All sales rows joined with item and calendar attributes; ``original`` marks the 23:00 rows."""
    path = tiny[0]
    frame = _read(path, "SELECT rowid AS rid, * FROM sales", dates=("date", "recorded_at"))
    frame = frame.merge(_read(path, "SELECT * FROM items"), on="item_id")
    cal = _read(path, "SELECT date, wday, wm_yr_wk, snap_CA, snap_TX, snap_WI FROM calendar", dates=("date",))
    frame = frame.merge(cal, on="date")
    frame["state_id"] = frame["store_id"].str[:2]
    frame["original"] = frame["recorded_at"] == frame["date"] + pd.Timedelta(hours=23)
    return frame


@pytest.fixture(scope="module")
def originals(sales):
    return sales[sales["original"]]


@pytest.fixture(scope="module")
def prices(tiny):
    return _read(tiny[0], "SELECT rowid AS rid, * FROM sell_prices", dates=("recorded_at",))


# ---------------------------------------------------------------------------------------------
# calendar
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calendar():
    return world.build_calendar()


def test_calendar_shape_and_columns(calendar):
    assert len(calendar) == 1969
    assert list(calendar.columns) == [c.name for c in world.db.calendar.columns]
    dates = pd.DatetimeIndex(calendar["date"])
    assert dates[0].date() == world.CALENDAR_START and dates[-1].date() == world.CALENDAR_END
    assert (dates[1:] - dates[:-1] == pd.Timedelta(days=1)).all()
    assert (dates.year == calendar["year"]).all() and (dates.month == calendar["month"]).all()
    assert (calendar["weekday"] == dates.day_name()).all()
    assert (calendar.loc[calendar["weekday"] == "Saturday", "wday"] == 1).all()
    assert (calendar.loc[calendar["weekday"] == "Friday", "wday"] == 7).all()


def test_walmart_weeks_start_on_saturday(calendar):
    wk = calendar["wm_yr_wk"].to_numpy()
    change = np.r_[True, wk[1:] != wk[:-1]]
    assert (calendar.loc[change, "wday"] == 1).all() and (calendar.loc[calendar["wday"] == 1].index == np.flatnonzero(change)).all()
    nxt, prev = wk[change][1:], wk[change][:-1]
    new_year = (nxt // 100 == prev // 100 + 1) & (nxt % 100 == 1) & (prev % 100 >= 52)
    assert ((nxt == prev + 1) | new_year).all()
    first = calendar.set_index(pd.DatetimeIndex(calendar["date"]).date)["wm_yr_wk"]
    for day, week in [("2011-01-29", 11101), ("2012-01-28", 11201), ("2013-01-26", 11301),
                      ("2014-02-01", 11401), ("2014-01-25", 11353), ("2016-06-19", 11621)]:
        assert first[dt.date.fromisoformat(day)] == week


def test_snap_days_by_day_of_month(calendar):
    dom = pd.DatetimeIndex(calendar["date"]).day
    expected = {"CA": set(range(1, 11)), "TX": {1, 3, 5, 6, 7, 9, 11, 12, 13, 15}, "WI": {2, 3, 5, 6, 8, 9, 11, 12, 14, 15}}
    for state, days in expected.items():
        assert (calendar[f"snap_{state}"].to_numpy() == np.isin(dom, list(days))).all()


def test_events(calendar):
    dates = pd.DatetimeIndex(calendar["date"])
    christmas = calendar[(dates.month == 12) & (dates.day == 25)]
    assert len(christmas) == 5 and (christmas["event_name_1"] == "Christmas").all()
    assert (christmas["event_type_1"] == "National").all()
    names = set(calendar["event_name_1"].dropna()) | set(calendar["event_name_2"].dropna())
    assert {"SuperBowl", "Thanksgiving", "Easter", "Ramadan starts", "Mother's day", "NBAFinalsEnd", "LentStart"} <= names
    types = set(calendar["event_type_1"].dropna()) | set(calendar["event_type_2"].dropna())
    assert types == {"National", "Sporting", "Cultural", "Religious"}
    # a second event only where there is a first, each name with its type
    assert calendar.loc[calendar["event_name_1"].isna(), "event_name_2"].isna().all()
    for k in (1, 2):
        assert (calendar[f"event_name_{k}"].isna() == calendar[f"event_type_{k}"].isna()).all()
    assert calendar["event_name_2"].notna().sum() >= 3
    thanksgiving = dates[calendar["event_name_1"] == "Thanksgiving"]
    assert (thanksgiving.day_of_week == 3).all() and (thanksgiving.day >= 22).all() and (thanksgiving.day <= 28).all()


def test_easter_dates(calendar):
    """Easter (dateutil's Western computus) and Orthodox Easter fall on the published dates of every year."""
    def on(name):
        rows = calendar[(calendar["event_name_1"] == name) | (calendar["event_name_2"] == name)]
        return [d.date().isoformat() for d in pd.DatetimeIndex(rows["date"])]

    assert on("Easter") == ["2011-04-24", "2012-04-08", "2013-03-31", "2014-04-20", "2015-04-05", "2016-03-27"]
    assert on("OrthodoxEaster") == ["2011-04-24", "2012-04-15", "2013-05-05", "2014-04-20", "2015-04-12", "2016-05-01"]
    assert on("LentStart") == ["2011-03-09", "2012-02-22", "2013-02-13", "2014-03-05", "2015-02-18", "2016-02-10"]


@pytest.mark.skipif(not M5_CALENDAR.exists(), reason="no M5 calendar to compare with")
def test_calendar_matches_m5(calendar):
    m5 = pd.read_parquet(M5_CALENDAR)
    for col in ("wm_yr_wk", "weekday", "wday", "month", "year", "snap_CA", "snap_TX", "snap_WI"):
        assert (calendar[col].astype(str).to_numpy() == m5[col].astype(str).to_numpy()).all(), col

    def events(frame):
        out = set()
        for k in (1, 2):
            rows = frame[frame[f"event_name_{k}"].notna()]
            out |= set(zip(pd.to_datetime(rows["date"]).dt.date, rows[f"event_name_{k}"].astype(str), rows[f"event_type_{k}"].astype(str)))
        return out

    assert events(calendar) == events(m5)  # the order of two same-day events may differ


# ---------------------------------------------------------------------------------------------
# entities and the dense grid
# ---------------------------------------------------------------------------------------------


def test_scales():
    assert world.SCALES["tiny"].n_series == 140
    assert world.SCALES["full"].n_items == 3049 and world.SCALES["full"].n_series == 30490
    assert 80 <= world.SCALES["demo"].n_items <= 100
    assert world.SCALES["demo"].history_start == world.CALENDAR_START == dt.date(2011, 1, 29)


def test_items_and_stores(tiny):
    path, summary, _ = tiny
    items = _read(path, "SELECT * FROM items")
    assert len(items) == 14 and items["item_id"].is_unique
    assert items.groupby("dept_id").size().to_dict() == {d: 2 for d in world.DEPARTMENTS}
    assert (items["item_id"].str.rsplit("_", n=1).str[0] == items["dept_id"]).all()
    assert (items["dept_id"].str.rsplit("_", n=1).str[0] == items["cat_id"]).all()
    assert items["item_id"].str.fullmatch(r"[A-Z]+_\d_\d{3}").all()
    stores = _read(path, "SELECT * FROM stores")
    assert sorted(stores["store_id"]) == sorted(world.STORES)
    assert stores.groupby("state_id").size().to_dict() == {"CA": 4, "TX": 3, "WI": 3}
    assert summary["rows"]["items"] == 14 and summary["rows"]["stores"] == 10 and summary["rows"]["calendar"] == 1969
    assert summary["series"] == 140
    assert summary["first_date"] == dt.date(2014, 6, 1) and summary["last_date"] == world.CALENDAR_END


def test_dense_grid_one_original_row_per_key(tiny, sales, originals):
    _, summary, _ = tiny
    n_days = (world.CALENDAR_END - dt.date(2014, 6, 1)).days + 1
    assert len(originals) == 140 * n_days
    assert not originals.duplicated(["store_id", "item_id", "date"]).any()
    assert originals["date"].min().date() == dt.date(2014, 6, 1) and originals["date"].max().date() == world.CALENDAR_END
    assert summary["rows"]["sales"] == len(sales)
    assert summary["corrections"] == len(sales) - len(originals)


def test_progress_reported(tiny):
    fractions = [f for f, _ in tiny[2]]
    assert len(fractions) >= 3 and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert all(isinstance(m, str) and m for _, m in tiny[2])


def test_sales_inserted_by_store_date_item(sales):
    """Within a store, insertion order (rowid) follows date, then item; a correction follows its original."""
    for _, rows in sales.groupby("store_id"):
        ordered = rows.sort_values("rid")
        key = ordered[["date", "item_id", "recorded_at"]]
        assert key.equals(key.sort_values(["date", "item_id", "recorded_at"]))


# ---------------------------------------------------------------------------------------------
# demand realism
# ---------------------------------------------------------------------------------------------


def test_intermittent_share_of_zeros(originals):
    share = (originals["units"] == 0).mean()
    assert 0.35 <= share <= 0.7
    means = originals.groupby(["store_id", "item_id"])["units"].mean()
    assert means.min() < 0.5 and means.max() > 3  # slow movers and fast movers


def test_foods_faster_than_hobbies(originals):
    per_series = originals.groupby(["cat_id", "store_id", "item_id"])["units"].mean()
    assert per_series["FOODS"].median() > per_series["HOBBIES"].median()


def test_weekend_peak(originals):
    weekend = originals.loc[originals["wday"].isin([1, 2]), "units"].mean()
    midweek = originals.loc[originals["wday"].isin([4, 5, 6]), "units"].mean()
    assert weekend > 1.1 * midweek


def test_snap_uplift_for_foods(originals):
    foods = originals[originals["cat_id"] == "FOODS"]
    for state, rows in foods.groupby("state_id"):
        snap = rows[f"snap_{state}"] == 1
        assert rows.loc[snap, "units"].mean() > rows.loc[~snap, "units"].mean(), state


def test_stores_closed_on_christmas(sales):
    christmas = sales[(sales["date"].dt.month == 12) & (sales["date"].dt.day == 25)]
    assert len(christmas) > 0 and christmas["units"].sum() == 0  # corrections included


def test_over_dispersion(originals):
    rows = originals[(originals["date"].dt.month != 12) | (originals["date"].dt.day != 25)]
    stats = rows.groupby(["store_id", "item_id"])["units"].agg(["mean", "var"])
    fast = stats[stats["mean"] > 2]
    assert len(fast) >= 5
    ratio = fast["var"] / fast["mean"]
    assert ratio.median() > 1.5 and (ratio > 1).mean() > 0.9


def test_late_launches_have_leading_zeros_and_no_prices(originals, prices):
    first_week = prices.groupby(["store_id", "item_id"])["wm_yr_wk"].min().rename("first_week")
    weeks = originals.merge(first_week.reset_index(), on=["store_id", "item_id"])
    before = weeks[weeks["wm_yr_wk"] < weeks["first_week"]]
    assert before["units"].sum() == 0  # nothing sells before it has a price
    late = first_week[first_week > originals["wm_yr_wk"].min()]
    assert 0.05 * 140 <= len(late) <= 0.6 * 140  # a share of items launches after history_start
    assert len(before) > 0
    after = weeks[weeks["wm_yr_wk"] >= weeks["first_week"]]
    assert after.groupby(["store_id", "item_id"])["units"].sum().gt(0).all()  # and they do sell later


def test_corrections(sales, originals):
    keys = ["store_id", "item_id", "date"]
    per_key = sales.groupby(keys).size()
    assert 0.001 <= (per_key > 1).mean() <= 0.01
    later = sales[~sales["original"]].merge(originals[keys + ["units", "recorded_at"]], on=keys, suffixes=("", "_orig"))
    assert len(later) == len(sales) - len(originals)
    assert (later["recorded_at"] > later["recorded_at_orig"]).all()
    delay = later["recorded_at"] - later["date"]
    assert (delay >= pd.Timedelta(days=1)).all() and (delay < pd.Timedelta(days=6)).all()
    assert (later["recorded_at"] < pd.Timestamp(world.CALENDAR_END) + pd.Timedelta(days=1)).all()
    assert (later["units"] != later["units_orig"]).all()
    assert (sales["units"] >= 0).all()


# ---------------------------------------------------------------------------------------------
# prices
# ---------------------------------------------------------------------------------------------


def test_price_rows(prices, tiny):
    path = tiny[0]
    assert not prices.duplicated(["store_id", "item_id", "wm_yr_wk"]).any()
    assert prices["sell_price"].between(0.01, 31).all()
    cents = (prices["sell_price"] * 100).round().astype(int) % 100
    assert cents.isin([97, 98]).mean() > 0.3  # M5-like endings
    cal = _read(path, "SELECT date, wm_yr_wk, wday FROM calendar WHERE wday = 1", dates=("date",))
    saturday = prices.merge(cal, on="wm_yr_wk", how="left")
    assert (saturday["recorded_at"] == saturday["date"]).all()  # recorded at the start of its week
    # no gaps: from its first week on, a series has a price every week up to the end
    weeks = sorted(cal["wm_yr_wk"])
    rank = {w: i for i, w in enumerate(weeks)}
    r = prices["wm_yr_wk"].map(rank)
    span = r.groupby([prices["store_id"], prices["item_id"]]).agg(["min", "max", "size"])
    assert (span["max"] - span["min"] + 1 == span["size"]).all() and (span["max"] == len(weeks) - 1).all()
    # an item's regular price is similar across stores
    spread = prices.groupby(["item_id", "wm_yr_wk"])["sell_price"].agg(lambda p: p.max() / p.min())
    assert spread.median() < 1.15


def test_promotions_drop_and_recover(prices):
    wide = prices.pivot_table(index=["store_id", "item_id"], columns="wm_yr_wk", values="sell_price").to_numpy()
    recovered = 0
    for gap in (1, 2, 3):  # a drop lasting `gap` weeks, then back to the pre-promotion price
        before, during, after = wide[:, :-gap - 1], wide[:, 1:-gap], wide[:, gap + 1:]
        low = np.ones_like(during, dtype=bool)
        for g in range(gap):
            low &= wide[:, 1 + g: wide.shape[1] - gap + g] < before
        recovered += np.nansum(low & (after == before) & (during < before))
    assert recovered >= 20


# ---------------------------------------------------------------------------------------------
# determinism and safety
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_contents_other_seed_other_sales(tiny, tmp_path):
    path = tiny[0]
    again, other = tmp_path / "again.sqlite", tmp_path / "other.sqlite"
    world.generate_world(f"sqlite:///{again}", scale="tiny", seed=42)
    world.generate_world(f"sqlite:///{other}", scale="tiny", seed=7)
    reference = _dump(path)
    assert _dump(again) == reference
    different = _dump(other)
    assert different["sales"] != reference["sales"] and different["calendar"] == reference["calendar"]


def test_base_dynamics_is_the_default_world(tiny, tmp_path):
    """``dynamics="base"`` is the world generated without the argument, byte for byte; its summary says so."""
    base = tmp_path / "base.sqlite"
    summary = world.generate_world(f"sqlite:///{base}", scale="tiny", seed=42, dynamics="base")
    assert _dump(base) == _dump(tiny[0])
    assert summary["dynamics"] == tiny[1]["dynamics"] == {"name": "base"}


def test_refuses_a_database_with_sales(tiny, tmp_path):
    copy = tmp_path / "copy.sqlite"
    shutil.copy(tiny[0], copy)
    before = _dump(copy)
    with pytest.raises(ValueError, match="already holds sales"):
        world.generate_world(f"sqlite:///{copy}", scale="tiny", seed=1)
    assert _dump(copy) == before


def test_unknown_scale(tmp_path):
    with pytest.raises(ValueError, match="unknown scale"):
        world.generate_world(f"sqlite:///{tmp_path / 'x.sqlite'}", scale="huge")


def test_cli(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert world.main(["--scale", "tiny", "--url", url, "--seed", "3"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["rows"]["items"] == 14 and "%" in out.err
    assert world.main(["--scale", "tiny", "--url", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "already holds sales" in err[-1]


# ---------------------------------------------------------------------------------------------
# the world's writes: db.ingest (ADBC) stores what db.bulk_insert stores, one call all or nothing
# ---------------------------------------------------------------------------------------------


def _frames() -> dict[str, pd.DataFrame]:
    """Rows of every kind the world writes: categoricals, NULL text, dates, timestamps with microseconds, floats."""
    calendar = world.build_calendar().iloc[:40].reset_index(drop=True)
    prices = pd.DataFrame({
        "store_id": pd.Categorical(["CA_1", "TX_2", "CA_1"], categories=["CA_1", "TX_2"]),
        "item_id": pd.Categorical(["FOODS_1_001", "FOODS_1_001", "HOBBIES_1_002"]),
        "wm_yr_wk": np.array([11101, 11101, 11613], dtype=np.int64),
        "sell_price": [0.1 + 0.2, 2.98, 1e-7],
        "recorded_at": pd.to_datetime(["2011-01-29", "2011-01-29 00:00:00.000001", "2016-06-18 23:59:59"], format="ISO8601").astype("datetime64[us]"),
    })
    sales = pd.DataFrame({
        "store_id": pd.Categorical(["WI_3", "CA_1"]), "item_id": ["FOODS_3_827", "FOODS_1_001"],
        "date": pd.to_datetime(["2016-06-19", "2011-01-29"]).astype("datetime64[s]"),
        "units": np.array([0, 2_147_483_647], dtype=np.int64),
        "recorded_at": pd.to_datetime(["2016-06-19 23:00:00", "2011-02-01 07:13:00"]).astype("datetime64[s]"),
    })
    return {"calendar": calendar, "sell_prices": prices, "sales": sales}


def _stored(url: str) -> dict[str, list[tuple]]:
    """Each table's rows in insertion order, every value with the type the database stored it as."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for name in ("calendar", "sell_prices", "sales"):
            cols = [c.name for c in world.db.metadata.tables[name].columns]
            if engine.dialect.name == "sqlite":
                sql = f'SELECT {", ".join(f"{c!r}, typeof({c!r})".replace(chr(39), chr(34)) for c in cols)} FROM "{name}" ORDER BY rowid'
            else:
                sql = f'SELECT {", ".join(f"{c!r}::text, pg_typeof({c!r})::text".replace(chr(39), chr(34)) for c in cols)} FROM "{name}" ORDER BY ctid'
            out[name] = [tuple(r) for r in conn.exec_driver_sql(sql)]
    engine.dispose()
    return out


def _write_both(url_a: str, url_b: str) -> None:
    import sqlalchemy as sa

    for url, write in ((url_a, world.db.bulk_insert), (url_b, world.db.ingest)):
        engine = sa.create_engine(url)
        world.db.create_schema(engine)
        for name, frame in _frames().items():
            assert write(engine, world.db.metadata.tables[name], frame) == len(frame)
        engine.dispose()


def test_ingest_stores_what_bulk_insert_stores_sqlite(tmp_path):
    a, b = f"sqlite:///{tmp_path / 'a.sqlite'}", f"sqlite:///{tmp_path / 'b.sqlite'}"
    _write_both(a, b)
    stored = _stored(b)
    assert stored == _stored(a)
    assert stored["sell_prices"][1][8:] == ("2011-01-29 00:00:00.000001", "text")  # SQLAlchemy's spelling, as text
    assert stored["sales"][1][6:8] == (2_147_483_647, "integer") and stored["calendar"][0][12:14] == (None, "null")


@pytest.mark.postgres
def test_ingest_stores_what_bulk_insert_stores_postgresql():
    from tests.conftest import fresh_postgres

    with fresh_postgres("ingest_a") as a, fresh_postgres("ingest_b") as b:
        _write_both(a, b)
        stored = _stored(b)
        assert stored == _stored(a)
        assert stored["sales"][1][6:8] == ("2147483647", "integer")
        assert stored["sell_prices"][0][6:8] == ("0.30000000000000004", "double precision")


def test_ingest_refused_call_writes_nothing(tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    world.db.create_schema(engine)
    items = pd.DataFrame({"item_id": ["FOODS_1_001", "FOODS_1_002"], "dept_id": "FOODS_1", "cat_id": "FOODS"})
    world.db.ingest(engine, world.db.items, items.iloc[:1])
    with pytest.raises(world.db.DatabaseError, match="cannot write 2 rows into table items"):
        world.db.ingest(engine, world.db.items, items)  # FOODS_1_001 again: the primary key refuses the call
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT item_id FROM items").fetchall() == [("FOODS_1_001",)]
    engine.dispose()
