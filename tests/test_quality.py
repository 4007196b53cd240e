"""Data-quality checks of a snapshot: a clean one passes, each anomaly fails exactly its check.

One real snapshot of the tiny world (2016-05-22) is extracted per module; the snapshots of the
other run dates are its rows dated up to that date (and prices up to that week), which is what
the extract of that date holds up to the few later corrections. Anomalies are injected into
copies of those frames, written with the snapshot's file layout and dtypes.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.data.snapshot import SNAPSHOT_FILES, read_snapshot
from pipeline.data import db
from pipeline.stages import extract
from pipeline.stages import quality
from pipeline.data import storage
from pipeline.core.errors import DataError
from tests.conftest import RUN_DATE

D = RUN_DATE.isoformat()  # 2016-05-22, a Sunday; its Walmart week is 11617
CLEAN_DATES = [RUN_DATE - dt.timedelta(days=k) for k in range(8)] + [
    dt.date(2015, 12, 25),  # Christmas: stores closed, not checked
    dt.date(2015, 12, 26),  # the day after
    dt.date(2016, 1, 1),  # New Year, one week after Christmas (Christmas is no reference day)
    dt.date(2016, 1, 2),
]


@pytest.fixture(scope="module")
def base(tiny_world_file, tmp_path_factory):
    """The frames of the real snapshot of RUN_DATE (read-only: tests copy them)."""
    engine = db.engine_for(f"sqlite:///{tiny_world_file}")
    out = tmp_path_factory.mktemp("quality") / D
    with storage.atomic_dir(out) as tmp:
        extract.extract_snapshot(engine, RUN_DATE, tmp)
    engine.dispose()
    return {name: read_snapshot(out, name) for name in SNAPSHOT_FILES}, out


def as_of(frames: dict, date: dt.date) -> dict:
    """Copies of ``frames`` cut to what the snapshot of ``date`` holds."""
    cal = frames["calendar"]
    week = cal.loc[cal["date"] == pd.Timestamp(date), "wm_yr_wk"].iloc[0]
    out = {k: v.copy() for k, v in frames.items()}
    out["sales"] = out["sales"][out["sales"]["date"] <= pd.Timestamp(date)].reset_index(drop=True)
    out["prices"] = out["prices"][out["prices"]["wm_yr_wk"] <= week].reset_index(drop=True)
    return out


def write(folder, frames: dict, date: dt.date | None = None):
    folder.mkdir(parents=True)
    for name, frame in frames.items():
        storage.write_parquet(frame, folder / f"{name}.parquet")
    if date is not None:
        storage.write_json(folder / "manifest.json", {"date": date.isoformat()})
    return folder


def check(tmp_path, frames, date=RUN_DATE, previous=None, **kwargs) -> quality.QualityReport:
    folder = write(tmp_path / f"snap-{len(list(tmp_path.iterdir()))}", frames, date)
    prev = None
    if previous is not None:
        prev = write(tmp_path / f"prev-{len(list(tmp_path.iterdir()))}", previous, date - dt.timedelta(days=1))
    return quality.run_checks(folder, date, previous_snapshot_dir=prev, **kwargs)


def failing(report) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


def expect_only(report, name, *phrases) -> quality.CheckResult:
    assert failing(report) == {name}, [c.message for c in report.checks if not c.passed]
    result = report.check(name)
    assert result.message.startswith(f"{name}: ") and result.count >= 1 and len(result.offending) >= 1
    for phrase in phrases:
        assert phrase in result.message, result.message
    assert not report.passed and [c.name for c in report.failed] == [name]
    return result


def row_of(sales, store, item, date):
    m = (sales["store_id"] == store) & (sales["item_id"] == item) & (sales["date"] == pd.Timestamp(date))
    assert m.sum() == 1
    return np.flatnonzero(m.to_numpy())[0]


def add_category(frame, column, value):
    frame[column] = frame[column].cat.add_categories([value])


# ----------------------------------------------------------------------------------------------
# clean data: no false alarm
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("date", CLEAN_DATES, ids=str)
def test_clean_snapshots_pass_every_check(base, tmp_path, date):
    frames, _ = base
    previous = as_of(frames, date - dt.timedelta(days=1))
    report = check(tmp_path, as_of(frames, date), date, previous=previous)
    assert report.passed and not report.failed, [c.message for c in report.checks if not c.passed]
    assert [c.name for c in report.checks] == list(quality.CHECKS)
    assert all(c.passed and not c.accepted and c.count == 0 for c in report.checks)
    if date == dt.date(2015, 12, 25):
        assert "not checked" in report.check("daily_total_outlier").message
    report.raise_if_failed()  # no error


def test_the_real_extracted_snapshot_passes(base):
    frames, folder = base
    report = quality.run_checks(folder, RUN_DATE)
    assert report.passed, [c.message for c in report.checks if not c.passed]
    assert report.snapshot_hash == storage.read_json(folder / "manifest.json")["content_hash"]["all"]
    assert "(Sunday)" in report.check("daily_total_outlier").message


def test_unsorted_rows_and_plain_string_ids_are_fine(base, tmp_path):
    frames, _ = base
    f = as_of(frames, RUN_DATE)
    f["sales"] = f["sales"].sample(frac=1.0, random_state=3).reset_index(drop=True)
    f["sales"]["item_id"] = f["sales"]["item_id"].astype(str)
    f["prices"] = f["prices"].sample(frac=1.0, random_state=4).reset_index(drop=True)
    assert check(tmp_path, f).passed


# ----------------------------------------------------------------------------------------------
# each anomaly alone fails exactly its check, naming the offending rows
# ----------------------------------------------------------------------------------------------


def test_negative_units(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    f["sales"].loc[row_of(f["sales"], "TX_1", "HOBBIES_1_001", "2016-05-20"), "units"] = -3
    result = expect_only(check(tmp_path, f), "negative_units", "1 sales row", "TX_1", "HOBBIES_1_001", "2016-05-20", "-3")
    assert result.offending.to_dict("records") == [
        {"store_id": "TX_1", "item_id": "HOBBIES_1_001", "date": "2016-05-20", "units": -3}]


def test_duplicate_sales_key(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    f["sales"] = pd.concat([s, s.iloc[[row_of(s, "CA_1", "HOBBIES_1_002", "2016-04-02")]]], ignore_index=True)
    result = expect_only(check(tmp_path, f), "duplicate_keys", "sales: 2 rows share 1 key", "CA_1", "HOBBIES_1_002",
                         "2016-04-02")
    assert result.count == 2 and set(result.offending["table"]) == {"sales"}


def test_duplicate_price_key(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    p = f["prices"]
    dup = p[(p["store_id"] == "WI_2") & (p["item_id"] == "FOODS_3_002") & (p["wm_yr_wk"] == 11610)].assign(sell_price=1.0)
    f["prices"] = pd.concat([p, dup], ignore_index=True).astype(p.dtypes.to_dict())
    expect_only(check(tmp_path, f), "duplicate_keys", "prices: 2 rows share 1 key", "WI_2", "FOODS_3_002", "11610")


def test_sales_dated_after_the_run_date(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    late = s.iloc[[row_of(s, "CA_2", "FOODS_1_002", D)] * 2].copy()
    late["date"] = pd.to_datetime(["2016-05-23", "2016-05-25"])
    f["sales"] = pd.concat([s, late], ignore_index=True)
    result = expect_only(check(tmp_path, f), "future_dates", "2 sales row(s) dated after the run date 2016-05-22",
                         "the latest 2016-05-25", "CA_2", "FOODS_1_002")
    assert list(result.offending["date"]) == ["2016-05-23", "2016-05-25"]


def regular_series(sales) -> pd.Series:
    """Days with >= 1 unit in the 28 days before the run date, per series, most first."""
    window = sales[(sales["date"] < pd.Timestamp(RUN_DATE)) & (sales["date"] >= pd.Timestamp(RUN_DATE) - pd.Timedelta(days=28))]
    return (window["units"] >= 1).groupby([window["store_id"], window["item_id"]], observed=True).sum().sort_values(
        ascending=False, kind="stable")


def test_a_regular_series_without_a_row_on_the_run_date(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    days = regular_series(f["sales"])
    (store, item), sold = days.index[0], int(days.iloc[0])
    assert sold >= 14
    f["sales"] = f["sales"].drop(index=row_of(f["sales"], store, item, D)).reset_index(drop=True)
    result = expect_only(check(tmp_path, f), "vanished_series", "1 series", store, item, f"sold on {sold} of 28 days",
                         "no sales row on 2016-05-22", "last row 2016-05-21")
    assert result.offending[["what", "store_id", "item_id"]].to_dict("records") == [
        {"what": "series", "store_id": store, "item_id": item}]


def test_an_irregular_series_without_a_row_is_not_an_alarm(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    days = regular_series(f["sales"])
    (store, item) = days.index[-1]
    assert days.iloc[-1] < 14
    f["sales"] = f["sales"].drop(index=row_of(f["sales"], store, item, D)).reset_index(drop=True)
    assert check(tmp_path, f).passed


def test_a_store_without_rows_on_the_run_date(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    f["sales"] = s[~((s["store_id"] == "WI_3") & (s["date"] == pd.Timestamp(RUN_DATE)))].reset_index(drop=True)
    result = expect_only(check(tmp_path, f), "vanished_series", "1 store(s) with no sales row on 2016-05-22: "
                         "WI_3 (rows on 28 of the previous 28 days, the last on 2016-05-21)")
    assert list(result.offending["what"]) == ["store"] and list(result.offending["store_id"]) == ["WI_3"]


def test_an_item_of_the_previous_snapshot_with_no_row_at_all(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    previous = as_of(base[0], RUN_DATE - dt.timedelta(days=1))
    s = f["sales"]
    f["sales"] = s[s["item_id"] != "HOBBIES_2_001"].reset_index(drop=True)
    expect_only(check(tmp_path, f, previous=previous), "vanished_series", "previous snapshot (2016-05-21)",
                "item HOBBIES_2_001")


def test_an_item_not_in_the_items_table(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    extra = s.iloc[[row_of(s, "CA_1", "FOODS_1_001", D)]].copy()
    add_category(extra, "item_id", "FOODS_9_999")
    extra["item_id"] = "FOODS_9_999"
    add_category(s, "item_id", "FOODS_9_999")
    f["sales"] = pd.concat([s, extra], ignore_index=True)
    result = expect_only(check(tmp_path, f), "new_from_nothing", "FOODS_9_999: item_id not in the items table",
                         "1 rows from 2016-05-22")
    assert list(result.offending["item_id"]) == ["FOODS_9_999"]


def series_rows(sales, store, item, first, last, units=1) -> pd.DataFrame:
    days = pd.date_range(first, last)
    return pd.DataFrame({
        "item_id": pd.Categorical([item] * len(days), categories=sales["item_id"].cat.categories),
        "store_id": pd.Categorical([store] * len(days), categories=sales["store_id"].cat.categories),
        "date": days.astype("datetime64[ns]"), "units": np.full(len(days), units, dtype=np.int16),
    })


def with_master(frames, item=None, store=None):
    if item is not None:
        frames["items"] = pd.concat([frames["items"], pd.DataFrame({"item_id": [item], "dept_id": ["FOODS_1"],
                                                                    "cat_id": ["FOODS"]})], ignore_index=True)
        add_category(frames["sales"], "item_id", item)
    if store is not None:
        frames["stores"] = pd.concat([frames["stores"], pd.DataFrame({"store_id": [store], "state_id": ["CA"]})],
                                     ignore_index=True)
        add_category(frames["sales"], "store_id", store)
    return frames


def test_a_store_absent_from_the_previous_snapshot(base, tmp_path):
    previous = as_of(base[0], RUN_DATE - dt.timedelta(days=1))
    f = with_master(as_of(base[0], RUN_DATE), store="CA_5")
    f["sales"] = pd.concat([f["sales"], series_rows(f["sales"], "CA_5", "FOODS_1_001", D, D)], ignore_index=True)
    assert check(tmp_path, f).passed  # in the stores table: only the previous snapshot tells
    expect_only(check(tmp_path, f, previous=previous), "new_from_nothing", "CA_5",
                "no row in the previous snapshot (2016-05-21)")


def test_item_history_that_appeared_retroactively(base, tmp_path):
    previous = as_of(base[0], RUN_DATE - dt.timedelta(days=1))
    f = with_master(as_of(base[0], RUN_DATE), item="FOODS_1_999")
    f["sales"] = pd.concat([f["sales"], series_rows(f["sales"], "CA_1", "FOODS_1_999", "2016-01-01", D)],
                           ignore_index=True)
    result = expect_only(check(tmp_path, f, previous=previous), "new_from_nothing", "FOODS_1_999", "retroactively",
                         "from 2016-01-01")
    assert result.offending.iloc[0]["rows"] == 143


def test_a_brand_new_item_is_a_launch_not_an_alarm(base, tmp_path):
    previous = as_of(base[0], RUN_DATE - dt.timedelta(days=1))
    f = with_master(as_of(base[0], RUN_DATE), item="FOODS_1_998")
    f["sales"] = pd.concat([f["sales"], series_rows(f["sales"], "CA_1", "FOODS_1_998", D, D, units=3)],
                           ignore_index=True)
    assert check(tmp_path, f, previous=previous).passed


@pytest.mark.parametrize("factor, phrase", [(0.05, "below"), (10, "above")])
def test_a_day_far_outside_its_usual_total(base, tmp_path, factor, phrase):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    on_day = s["date"] == pd.Timestamp(RUN_DATE)
    s.loc[on_day, "units"] = (s.loc[on_day, "units"] * factor).round().astype(np.int16)
    result = expect_only(check(tmp_path, f), "daily_total_outlier", "total units on 2016-05-22 (Sunday) are ",
                         "the same weekday's median over the previous 8 weeks is ", "(MAD ", "outside median ± 6·MAD",
                         phrase, "2016-05-15=")
    row = result.offending.iloc[0]
    assert row["date"] == D and row["total_units"] == s.loc[on_day, "units"].sum()
    # the thresholds are knobs
    relaxed = quality.run_checks(tmp_path / "snap-0", RUN_DATE,
                                 thresholds=quality.Thresholds(outlier_k=1000.0))
    assert relaxed.passed


def test_prices_not_positive(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    p = f["prices"]
    p.loc[(p["store_id"] == "TX_2") & (p["item_id"] == "HOUSEHOLD_1_002") & (p["wm_yr_wk"] == 11612), "sell_price"] = 0.0
    p.loc[(p["store_id"] == "CA_3") & (p["item_id"] == "FOODS_2_001") & (p["wm_yr_wk"] == 11510), "sell_price"] = -1.5
    result = expect_only(check(tmp_path, f), "price_not_positive", "2 price row(s)", "TX_2", "HOUSEHOLD_1_002",
                         "wm_yr_wk=11612 sell_price=0", "CA_3", "FOODS_2_001", "sell_price=-1.5")
    assert result.count == 2


def set_price(prices, store, item, week, factor):
    key = (prices["store_id"] == store) & (prices["item_id"] == item)
    before = prices.loc[key & (prices["wm_yr_wk"] < week)].sort_values("wm_yr_wk")["sell_price"].iloc[-1]
    prices.loc[key & (prices["wm_yr_wk"] == week), "sell_price"] = np.float32(round(before * factor, 2))
    return before


def test_a_price_jump_into_the_run_dates_week(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    before = set_price(f["prices"], "CA_4", "HOBBIES_1_002", 11617, 10)
    set_price(f["prices"], "TX_3", "FOODS_3_001", 11617, 1 / 6)
    result = expect_only(check(tmp_path, f), "price_jump", "2 item-store price change(s) by more than a factor 5",
                         "CA_4", "HOBBIES_1_002", f"{before:.2f} in week 11616", "week 11617", "TX_3", "FOODS_3_001")
    assert set(result.offending["to_week"]) == {11617}


def test_price_jump_window_and_factor_are_knobs(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    set_price(f["prices"], "CA_4", "HOBBIES_1_001", 11605, 10)  # an old jump (and back, the week after)
    set_price(f["prices"], "WI_1", "FOODS_2_002", 11617, 4.5)  # big, yet below a factor 5
    assert check(tmp_path, f).passed  # the old week is not checked again on every later date; 4.5 < 5
    every_week = quality.run_checks(tmp_path / "snap-0", RUN_DATE, thresholds=quality.Thresholds(price_jump_weeks=0))
    assert every_week.check("price_jump").count == 2 and "11605" in every_week.check("price_jump").message
    strict = quality.run_checks(tmp_path / "snap-0", RUN_DATE, thresholds=quality.Thresholds(price_jump_factor=4.0))
    assert strict.check("price_jump").count == 1 and "WI_1" in strict.check("price_jump").message


# ----------------------------------------------------------------------------------------------
# the override, the report, the error
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def low_day(base, tmp_path):
    """Snapshot folders of 2016-05-21 and 2016-05-22, each with its run date's sales cut to 5 %."""
    folders = {}
    for date in (RUN_DATE - dt.timedelta(days=1), RUN_DATE):
        f = as_of(base[0], date)
        on_day = f["sales"]["date"] == pd.Timestamp(date)
        f["sales"].loc[on_day, "units"] = (f["sales"].loc[on_day, "units"] // 20).astype(np.int16)
        folders[date] = write(tmp_path / f"low-{date}", f, date)
    return folders


def test_override_by_name_accepts_on_every_date(low_day):
    for date, folder in low_day.items():
        report = quality.run_checks(folder, date, accepted=["daily_total_outlier"])
        result = report.check("daily_total_outlier")
        assert report.passed and not report.failed and report.accepted == [result]
        assert not result.passed and result.accepted and "accepted by the operator" in result.message
        report.raise_if_failed()


def test_override_with_a_date_accepts_that_date_only(low_day):
    entry = f"daily_total_outlier:{D}"
    assert quality.run_checks(low_day[RUN_DATE], RUN_DATE, accepted=[entry]).passed
    other = quality.run_checks(low_day[RUN_DATE - dt.timedelta(days=1)], RUN_DATE - dt.timedelta(days=1), accepted=[entry])
    assert not other.passed and not other.check("daily_total_outlier").accepted
    # accepting another check does not help either
    assert not quality.run_checks(low_day[RUN_DATE], RUN_DATE, accepted=[f"price_jump:{D}"]).passed


def test_override_entries_are_validated_and_parsed():
    assert quality.parse_accepted(f" daily_total_outlier:{D},\n price_jump  vanished_series:2016-05-23 ") == (
        f"daily_total_outlier:{D}", "price_jump", "vanished_series:2016-05-23")
    assert quality.parse_accepted("") == () and quality.parse_accepted(None) == ()
    with pytest.raises(ValueError, match="'daily_total_outliers' is not a check"):
        quality.parse_accepted("daily_total_outliers")
    with pytest.raises(ValueError, match="not a date"):
        quality.parse_accepted("price_jump:22-05-2016")
    assert quality.is_accepted("price_jump", RUN_DATE, [f"price_jump:{D}"])
    assert not quality.is_accepted("price_jump", RUN_DATE, ["price_jump:2016-05-21", "negative_units"])


def test_a_failed_report_is_written_and_raised(low_day, tmp_path):
    report = quality.run_checks(low_day[RUN_DATE], RUN_DATE)
    paths = report.write(tmp_path / "report")
    assert [p.name for p in paths] == list(quality.REPORT_FILES)
    data = json.loads((tmp_path / "report" / "quality.json").read_text(encoding="utf-8"))
    assert data["run_date"] == D and data["passed"] is False and data["failed"] == ["daily_total_outlier"]
    assert [c["name"] for c in data["checks"]] == list(quality.CHECKS)
    failed = next(c for c in data["checks"] if c["name"] == "daily_total_outlier")
    assert failed["passed"] is False and failed["accepted"] is False and failed["count"] == 1
    assert failed["message"] == report.check("daily_total_outlier").message
    assert failed["offending"][0]["date"] == D and failed["offending"][0]["weekday"] == "Sunday"
    assert all(set(c) == {"name", "passed", "accepted", "message", "count", "offending"} for c in data["checks"])
    assert data["thresholds"]["outlier_k"] == 6.0 and data["thresholds"]["price_jump_factor"] == 5.0
    md = (tmp_path / "report" / "quality.md").read_text(encoding="utf-8")
    assert f"# Data quality of the snapshot of {D}: FAILED" in md
    assert "| daily_total_outlier | **FAILED** |" in md and report.check("daily_total_outlier").message in md
    assert f"accept = daily_total_outlier:{D}" in md
    # the same snapshot gives the same bytes
    assert quality.run_checks(low_day[RUN_DATE], RUN_DATE).to_json() == (tmp_path / "report" / "quality.json").read_text(encoding="utf-8")

    with pytest.raises(DataError) as info:
        report.raise_if_failed(report_path="data/quality/2016-05-22/failed/quality.md")
    message = str(info.value)
    assert message.startswith(f"data quality checks failed for the snapshot of {D} (1 of 9 checks)")
    assert report.check("daily_total_outlier").message in message
    assert "data/quality/2016-05-22/failed/quality.md" in message
    assert f"accept = daily_total_outlier:{D}" in message and "[quality]" in message


def test_an_accepted_failure_is_recorded_as_accepted(low_day, tmp_path):
    report = quality.run_checks(low_day[RUN_DATE], RUN_DATE, accepted=[f"daily_total_outlier:{D}"])
    report.write(tmp_path / "ok")
    data = json.loads((tmp_path / "ok" / "quality.json").read_text())
    assert data["passed"] is True and data["failed"] == [] and data["accepted"] == ["daily_total_outlier"]
    assert data["accept"] == [f"daily_total_outlier:{D}"]
    entry = next(c for c in data["checks"] if c["name"] == "daily_total_outlier")
    assert entry["passed"] is False and entry["accepted"] is True and entry["count"] == 1
    md = (tmp_path / "ok" / "quality.md").read_text()
    assert ": PASSED" in md and "| daily_total_outlier | failed, accepted |" in md


# ----------------------------------------------------------------------------------------------
# history_change: every row that became known since the previous snapshot (issue 14)
# ----------------------------------------------------------------------------------------------

PREV = RUN_DATE - dt.timedelta(days=1)
TWO_WEEKS_BACK = (RUN_DATE - dt.timedelta(days=14)).isoformat()  # 2016-05-08, a Sunday


def snapshots(base) -> tuple[dict, dict]:
    """Copies of the frames of the snapshots of RUN_DATE and of the day before."""
    return as_of(base[0], RUN_DATE), as_of(base[0], PREV)


def set_units(sales, store, item, date, units):
    """Set one row's units (the column keeps its dtype, whatever integer type it is); returns the old units."""
    i = row_of(sales, store, item, date)
    old = int(sales.at[i, "units"])
    sales["units"] = sales["units"].to_numpy().copy()
    sales.loc[i, "units"] = np.asarray(units).astype(sales["units"].dtype)
    return old


def busiest_series(sales) -> tuple[str, str]:
    (store, item), _ = next(iter(regular_series(sales).items()))
    return store, item


def quiet_series(sales, date, most=2) -> tuple[str, str]:
    """A series that sold at most ``most`` units a day in the 56 days up to ``date`` (and some unit)."""
    w = sales[(sales["date"] <= pd.Timestamp(date)) & (sales["date"] > pd.Timestamp(date) - pd.Timedelta(days=56))]
    g = w.groupby(["store_id", "item_id"], observed=True)["units"].agg(["max", "sum"])
    (store, item) = g[(g["max"] <= most) & (g["sum"] > 0)].index[0]
    return store, item


def history(report) -> quality.CheckResult:
    return report.check("history_change")


def test_the_issue_a_huge_late_correction_for_a_day_two_weeks_back(base, tmp_path):
    f, previous = snapshots(base)
    store, item = busiest_series(f["sales"])
    old = set_units(f["sales"], store, item, TWO_WEEKS_BACK, 30_000)
    assert check(tmp_path, f).passed  # without the previous snapshot nothing tells a correction apart
    report = check(tmp_path, f, previous=previous)
    result = expect_only(report, "history_change", f"store_id={store} item_id={item} date={TWO_WEEKS_BACK}: units {old} "
                         "-> 30,000, usual range ", "far outside their series' usual range",
                         "units up by more than max(10 x the 95th percentile of the series' 56 days before, "
                         "100 on a past day, 1,000 on the run date)",
                         f"{TWO_WEEKS_BACK} (Sunday): ", "same weekday's usual range",
                         f"accept = history_change:{D}", "previous snapshot (2016-05-21)")
    row = result.offending.iloc[0]
    assert (row["what"], row["store_id"], row["item_id"], row["date"], row["old_units"], row["new_units"]) == (
        "series_range", store, item, TWO_WEEKS_BACK, old, 30_000)
    low, high = map(int, row["usual_range"].split(".."))
    assert 0 <= low <= high and row["limit"] == max(10 * high, 100) < 30_000 - old
    assert f"usual range {low}..{high} (limit {int(row['limit']):,})" in result.message
    day = result.offending[result.offending["what"] == "day_total"].iloc[0]
    assert day["date"] == TWO_WEEKS_BACK and day["new_units"] - day["old_units"] == 30_000 - old
    assert result.count == 2
    with pytest.raises(DataError, match=f"accept = history_change:{D}"):
        report.raise_if_failed()


def test_normal_corrections_pass(base, tmp_path):
    f, previous = snapshots(base)
    s = f["sales"]
    past = (s["date"] < pd.Timestamp(RUN_DATE)) & (s["date"] >= pd.Timestamp(RUN_DATE) - pd.Timedelta(days=5))
    three = np.flatnonzero((past & (s["units"] == 3)).to_numpy())[0]
    set_units(s, s.at[three, "store_id"], s.at[three, "item_id"], s.at[three, "date"], 4)  # 3 -> 4
    store, item = quiet_series(s, "2016-05-19")  # usually sells 0-2: a correction to 3 is no alarm
    set_units(s, store, item, "2016-05-19", 3)
    s.loc[np.flatnonzero(past.to_numpy())[::37], "units"] = 0  # a few rows corrected down to 0
    report = check(tmp_path, f, previous=previous)
    assert report.passed, [c.message for c in report.failed]
    message = history(report).message
    assert "none is far outside its series' usual range" in message and "no key of the previous snapshot is missing" in message
    assert "140 of the run date and " in message and " changed, 0 new)" in message


def test_a_quiet_series_corrected_beyond_the_floor(base, tmp_path):
    f, previous = snapshots(base)
    store, item = quiet_series(f["sales"], "2016-05-19")
    old = set_units(f["sales"], store, item, "2016-05-19", 150)  # 0-2 a day: the floor of 100 units decides
    report = check(tmp_path, f, previous=previous)
    result = history(report)
    assert not result.passed
    assert result.offending.iloc[0][["what", "store_id", "old_units", "new_units", "limit"]].tolist() == [
        "series_range", store, old, 150, 100.0]
    low, high = map(int, result.offending.iloc[0]["usual_range"].split(".."))
    assert 0 <= low <= high <= 2 and f"units {old} -> 150, usual range {low}..{high} (limit 100)" in result.message
    # the thresholds are knobs
    folder = sorted(tmp_path.glob("snap-*"))[-1]
    prev = sorted(tmp_path.glob("prev-*"))[-1]
    higher = quality.Thresholds(history_min_units=200, outlier_min_relative=100.0)
    assert quality.run_checks(folder, RUN_DATE, previous_snapshot_dir=prev, thresholds=higher).passed


def test_a_huge_value_on_the_run_date_itself(base, tmp_path):
    f, previous = snapshots(base)
    store, item = busiest_series(f["sales"])
    set_units(f["sales"], store, item, D, 30_000)
    report = check(tmp_path, f, previous=previous)
    result = history(report)
    assert not result.passed and "history_change" in {c.name for c in report.failed}
    row = result.offending.iloc[0]
    assert (row["what"], row["store_id"], row["item_id"], row["date"], row["old_units"], row["new_units"]) == (
        "series_range", store, item, D, None, 30_000)
    assert row["limit"] == 1000  # the run date's floor: its rows are the whole day, one per series
    assert f"date={D}: units (new row) -> 30,000" in result.message


def test_the_run_dates_rows_have_a_higher_floor(base, tmp_path):
    f, previous = snapshots(base)
    store, item = quiet_series(f["sales"], D)
    set_units(f["sales"], store, item, D, 900)  # a bulk purchase on a quiet series: its day's total tells
    report = check(tmp_path, f, previous=previous)
    assert history(report).passed and "daily_total_outlier" in failing(report)
    set_units(f["sales"], store, item, D, 1001)
    assert history(check(tmp_path, f, previous=previous)).offending.iloc[0]["new_units"] == 1001


def test_a_high_value_corrected_a_little_is_no_alarm(base, tmp_path):
    """A value already far above the series' range (accepted once) that gets a small correction."""
    f, previous = snapshots(base)
    store, item = quiet_series(f["sales"], "2016-05-10")
    for frames in (f, previous):
        set_units(frames["sales"], store, item, "2016-05-10", 124)
    set_units(f["sales"], store, item, "2016-05-10", 127)
    assert check(tmp_path, f, previous=previous).passed


def test_history_change_can_be_accepted(base, tmp_path):
    f, previous = snapshots(base)
    set_units(f["sales"], *busiest_series(f["sales"]), TWO_WEEKS_BACK, 30_000)
    for accepted, passes in (([f"history_change:{D}"], True), (["history_change"], True),
                             (["history_change:2016-05-21"], False), ([f"daily_total_outlier:{D}"], False)):
        report = check(tmp_path, f, previous=previous, accepted=accepted)
        assert report.passed == passes, accepted
        assert history(report).accepted == passes and not history(report).passed
    assert quality.parse_accepted(f"history_change:{D}") == (f"history_change:{D}",)


def test_without_a_previous_snapshot_history_is_not_compared(base, tmp_path):
    f, previous = snapshots(base)
    report = check(tmp_path, f)
    assert report.passed and history(report).passed
    assert history(report).message.startswith("history_change: not checked: no previous snapshot to compare with")
    # a previous snapshot given without its sales rows (check_frames called directly)
    ids = quality.PreviousSnapshot(PREV, frozenset(previous["sales"]["store_id"].astype(str)),
                                   frozenset(previous["sales"]["item_id"].astype(str)))
    result = quality.check_frames(f, RUN_DATE, ids).check("history_change")
    assert result.passed and "not checked: the previous snapshot's sales rows were not given" in result.message


def test_deleted_history(base, tmp_path):
    f, previous = snapshots(base)
    s = f["sales"]
    store, item = busiest_series(s)
    gone = [row_of(s, store, item, "2016-05-10"), row_of(s, "WI_2", "FOODS_3_002", "2016-02-01")]
    old = [int(s.at[i, "units"]) for i in gone]
    f["sales"] = s.drop(index=gone).reset_index(drop=True)
    result = expect_only(check(tmp_path, f, previous=previous), "history_change",
                         "2 key(s) of the previous snapshot (2016-05-21) on 2 day(s) have no row now",
                         "history disappeared", f"store_id=WI_2 item_id=FOODS_3_002 date=2016-02-01 (units {old[1]})")
    rows = result.offending[["what", "store_id", "item_id", "date", "old_units"]].to_dict("records")
    assert sorted(rows, key=lambda r: r["date"]) == [  # in key order (store, item, date)
        {"what": "deleted", "store_id": "WI_2", "item_id": "FOODS_3_002", "date": "2016-02-01", "old_units": old[1]},
        {"what": "deleted", "store_id": store, "item_id": item, "date": "2016-05-10", "old_units": old[0]}]
    assert result.count == 2


@pytest.mark.parametrize("factor, phrase", [(0.05, "below"), (3, "above")])
def test_a_past_day_total_moved_far_outside_its_weekday_range(base, tmp_path, factor, phrase):
    f, previous = snapshots(base)
    s = f["sales"]
    day = pd.Timestamp("2016-05-12")  # a Thursday: no reference day of the run date (a Sunday)
    on_day = (s["date"] == day).to_numpy()
    units = s["units"].to_numpy().copy()
    units[on_day] = np.round(units[on_day] * factor).astype(units.dtype)
    s["units"] = units
    result = expect_only(check(tmp_path, f, previous=previous), "history_change",
                         "1 past day(s) whose total units the changes since the previous snapshot moved far outside "
                         "the same weekday's usual range over the 8 weeks before", "2016-05-12 (Thursday): ")
    assert list(result.offending["what"]) == ["day_total"]  # no single series is out of its range
    row = result.offending.iloc[0]
    old_total = int(previous["sales"].loc[previous["sales"]["date"] == day, "units"].sum())
    assert (row["date"], row["old_units"], row["new_units"]) == ("2016-05-12", old_total, int(units[on_day].sum()))
    assert (row["new_units"] > row["old_units"]) == (phrase == "above")


def test_an_outlier_day_corrected_a_little_is_no_alarm(base, tmp_path):
    """A past day already far from its weekday's median (a holiday) may get small corrections."""
    f, previous = snapshots(base)
    for frames in (f, previous):
        s = frames["sales"]
        on_day = (s["date"] == pd.Timestamp("2016-05-12")).to_numpy()
        units = s["units"].to_numpy().copy()
        units[on_day] *= 3
        s["units"] = units
    s = f["sales"]
    i = np.flatnonzero(((s["date"] == pd.Timestamp("2016-05-12")) & (s["units"] > 0)).to_numpy())[0]
    set_units(s, s.at[i, "store_id"], s.at[i, "item_id"], "2016-05-12", int(s.at[i, "units"]) + 1)
    assert check(tmp_path, f, previous=previous).passed


def test_a_day_at_the_edge_of_its_band_corrected_a_little_is_no_alarm(base, tmp_path):
    """A small correction that tips a past day just over its band's edge is not a move far outside it."""
    f, previous = snapshots(base)
    day = pd.Timestamp("2016-05-12")
    totals = previous["sales"].groupby("date")["units"].sum()
    ref = totals[[day - pd.Timedelta(weeks=w) for w in range(1, 9)]]
    med = float(ref.median())
    mad = float((ref - med).abs().median())
    edge = int(np.floor(max(med + 6 * mad, 1.5 * med)))  # the highest total that is no outlier
    store, item = busiest_series(previous["sales"])
    s = previous["sales"]
    now = int(s.at[row_of(s, store, item, day), "units"])
    for frames in (f, previous):  # both snapshots: the day sits at the edge
        set_units(frames["sales"], store, item, day, now + edge - int(totals[day]))
    s = f["sales"]
    other = np.flatnonzero(((s["date"] == day) & (s["store_id"] != store) & (s["units"] > 0)).to_numpy())[0]
    set_units(s, s.at[other, "store_id"], s.at[other, "item_id"], day, int(s.at[other, "units"]) + 2)
    new_total = edge + 2
    assert new_total > med + 6 * mad and new_total > 1.5 * med  # an outlier now, yet the move is 2 units
    assert check(tmp_path, f, previous=previous).passed


def test_many_past_keys_changed_at_once_is_a_rewrite(base, tmp_path):
    f, previous = snapshots(base)
    s = f["sales"]
    rewritten = ((s["store_id"] == "TX_2") & (s["date"] >= pd.Timestamp("2016-04-01"))
                 & (s["date"] < pd.Timestamp(RUN_DATE))).to_numpy()
    units = s["units"].to_numpy().copy()
    units[rewritten] += 1  # one store's 7 weeks: 14 items x 51 days, > 140 (1 day's worth of rows)
    s["units"] = units
    result = expect_only(check(tmp_path, f, previous=previous), "history_change",
                         "714 past key(s) on 51 day(s) changed or appeared since the previous snapshot (2016-05-21), "
                         "more than 1 day(s)' worth of rows (140: 140 series): history rewritten?")
    assert set(result.offending["what"]) == {"changed"} and result.count == 714
    assert set(result.offending["store_id"]) == {"TX_2"}
    relaxed = quality.Thresholds(history_max_changed_days=10)
    assert check(tmp_path, f, previous=previous, thresholds=relaxed).passed


def test_history_change_on_unsorted_rows_and_plain_string_ids(base, tmp_path):
    f, previous = snapshots(base)
    store, item = busiest_series(f["sales"])
    set_units(f["sales"], store, item, TWO_WEEKS_BACK, 30_000)
    sorted_result = history(check(tmp_path, f, previous=previous))
    for frames, seed in ((f, 3), (previous, 5)):
        frames["sales"] = frames["sales"].sample(frac=1.0, random_state=seed).reset_index(drop=True)
        frames["sales"]["item_id"] = frames["sales"]["item_id"].astype(str)
    result = history(check(tmp_path, f, previous=previous))
    assert result.message == sorted_result.message and result.count == sorted_result.count
    pd.testing.assert_frame_equal(result.offending, sorted_result.offending)


def test_items_that_vanished_or_appeared_are_left_to_their_own_checks(base, tmp_path):
    f, previous = snapshots(base)
    s = f["sales"]
    f["sales"] = s[s["item_id"] != "HOBBIES_2_001"].reset_index(drop=True)  # vanished_series, not deleted history
    report = check(tmp_path, f, previous=previous)
    assert failing(report) == {"vanished_series"} and history(report).passed


def test_consecutive_extracted_snapshots_with_real_corrections_pass(tiny_world_file, tmp_path):
    """The tiny world corrects ~0.3 % of its rows 1-5 days late: 28 days of snapshots, as the chain extracts them."""
    engine = db.engine_for(f"sqlite:///{tiny_world_file}")
    previous, changed = None, 0
    try:
        for k in range(27, -1, -1):
            date = RUN_DATE - dt.timedelta(days=k)
            out = tmp_path / date.isoformat()
            with storage.atomic_dir(out) as tmp:
                extract.extract_snapshot(engine, date, tmp, previous_dir=previous)
            report = quality.run_checks(out, date, previous_snapshot_dir=previous)
            assert report.passed, [c.message for c in report.failed]
            if previous is not None:
                message = history(report).message
                assert " of the run date and " in message
                changed += int(message.split(" changed, ")[0].rsplit("(", 1)[1].replace(",", ""))
            previous = out
    finally:
        engine.dispose()
    assert changed >= 5  # the corrections were there, and passed


def test_compare_matches_a_plain_merge(monkeypatch):
    """The block-wise comparison (aligned stretches and searchsorted) against pandas, on random keys."""
    from pipeline.core import history_checks as hc
    monkeypatch.setattr(hc, "_BLOCK", 7)
    rng = np.random.default_rng(0)
    for trial in range(200):
        run_day = 100
        series = rng.integers(0, 6, 60)
        day = rng.integers(90, 101 if trial % 2 else 102, 60)
        cur = pd.DataFrame({"key": (series << 32) | (day + hc._BIAS), "u": rng.integers(0, 3, 60)}).drop_duplicates("key")
        # the previous snapshot: up to the day before the run date, or (every 4th trial) with rows of the run date
        prev = cur[(cur["key"] & hc._LOW) - hc._BIAS < run_day + (trial % 4 == 0)].copy()
        prev = prev.sample(frac=rng.uniform(0.7, 1.0), random_state=trial)
        prev.loc[prev.sample(frac=0.1, random_state=trial).index, "u"] += 1
        extra = pd.DataFrame({"key": (rng.integers(0, 6, 3) << 32) | (rng.integers(90, 100, 3) + hc._BIAS), "u": 1})
        prev = pd.concat([prev, extra if trial % 3 == 0 else extra.iloc[:0]]).drop_duplicates("key").sort_values("key")
        cur = cur.sort_values("key")
        prev_last = int(((prev["key"] & hc._LOW) - hc._BIAS).max()) if len(prev) else -1
        diff = hc._compare(prev["key"].to_numpy(), prev["u"].to_numpy(), cur["key"].to_numpy(), cur["u"].to_numpy(),
                           run_day, prev_last)
        m = cur.merge(prev, on="key", how="left", suffixes=("", "_old"))
        expect = m[(m["u_old"].isna() | (m["u_old"] != m["u"])) & ((m["key"] & hc._LOW) - hc._BIAS <= run_day)]
        assert cur["key"].to_numpy()[diff.pos].tolist() == expect["key"].tolist()
        assert diff.new_key.tolist() == expect["u_old"].isna().tolist()
        assert diff.old.tolist() == expect["u_old"].fillna(0).astype(int).tolist()
        gone = prev[~prev["key"].isin(cur["key"])]
        assert prev["key"].to_numpy()[diff.deleted].tolist() == gone["key"].tolist()
