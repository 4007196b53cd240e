"""history_change (pipeline.core.checks.history): every row that became known since the previous snapshot."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import DataError
from pipeline.stages import quality
from tests.checks_support import D, PREV, TWO_WEEKS_BACK, base, busiest_series, check, expect_only, failing, history, quiet_series, row_of, set_units, snapshots  # noqa: F401 (base: fixture)
from tests.conftest import RUN_DATE


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


def test_compare_matches_a_plain_merge(monkeypatch):
    """The block-wise comparison (aligned stretches and searchsorted) against pandas, on random keys."""
    from pipeline.core.checks import history_keys as hc
    from pipeline.core.series import KEY_BIAS, KEY_LOW
    monkeypatch.setattr(hc, "_BLOCK", 7)
    rng = np.random.default_rng(0)
    for trial in range(200):
        run_day = 100
        series = rng.integers(0, 6, 60)
        day = rng.integers(90, 101 if trial % 2 else 102, 60)
        cur = pd.DataFrame({"key": (series << 32) | (day + KEY_BIAS), "u": rng.integers(0, 3, 60)}).drop_duplicates("key")
        # the previous snapshot: up to the day before the run date, or (every 4th trial) with rows of the run date
        prev = cur[(cur["key"] & KEY_LOW) - KEY_BIAS < run_day + (trial % 4 == 0)].copy()
        prev = prev.sample(frac=rng.uniform(0.7, 1.0), random_state=trial)
        prev.loc[prev.sample(frac=0.1, random_state=trial).index, "u"] += 1
        extra = pd.DataFrame({"key": (rng.integers(0, 6, 3) << 32) | (rng.integers(90, 100, 3) + KEY_BIAS), "u": 1})
        prev = pd.concat([prev, extra if trial % 3 == 0 else extra.iloc[:0]]).drop_duplicates("key").sort_values("key")
        cur = cur.sort_values("key")
        prev_last = int(((prev["key"] & KEY_LOW) - KEY_BIAS).max()) if len(prev) else -1
        diff = hc.compare(prev["key"].to_numpy(), prev["u"].to_numpy(), cur["key"].to_numpy(), cur["u"].to_numpy(),
                           run_day, prev_last)
        m = cur.merge(prev, on="key", how="left", suffixes=("", "_old"))
        expect = m[(m["u_old"].isna() | (m["u_old"] != m["u"])) & ((m["key"] & KEY_LOW) - KEY_BIAS <= run_day)]
        assert cur["key"].to_numpy()[diff.pos].tolist() == expect["key"].tolist()
        assert diff.new_key.tolist() == expect["u_old"].isna().tolist()
        assert diff.old.tolist() == expect["u_old"].fillna(0).astype(int).tolist()
        gone = prev[~prev["key"].isin(cur["key"])]
        assert prev["key"].to_numpy()[diff.deleted].tolist() == gone["key"].tolist()
