"""The CheckSnapshot stage (pipeline.stages.quality): clean snapshots pass, the report, the override, the error.

Each check's own anomalies are tested in tests/test_checks_<module>.py, mirroring pipeline/core/checks/.
"""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from pipeline.core.errors import DataError
from pipeline.data import db, storage
from pipeline.stages import extract, quality
from tests.checks_support import D, as_of, base, check, history, low_day  # noqa: F401 (base, low_day: fixtures)
from tests.conftest import RUN_DATE

CLEAN_DATES = [RUN_DATE - dt.timedelta(days=k) for k in range(8)] + [
    dt.date(2015, 12, 25),  # Christmas: stores closed, not checked
    dt.date(2015, 12, 26),  # the day after
    dt.date(2016, 1, 1),  # New Year, one week after Christmas (Christmas is no reference day)
    dt.date(2016, 1, 2),
]


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
    paths = quality.write_report(report, tmp_path / "report")
    assert [p.name for p in paths] == list(quality.REPORT_FILES)
    data = json.loads((tmp_path / "report" / "quality.json").read_text(encoding="utf-8"))
    assert data["run_date"] == D and data["passed"] is False and data["failed"] == ["daily_total_outlier"]
    assert [c["name"] for c in data["checks"]] == list(quality.CHECKS)
    failed = next(c for c in data["checks"] if c["name"] == "daily_total_outlier")
    assert failed["passed"] is False and failed["accepted"] is False and failed["count"] == 1
    assert failed["message"] == report.check("daily_total_outlier").message
    assert failed["offending"][0]["date"] == D and failed["offending"][0]["weekday"] == "Sunday"
    assert [c["name"] for c in data["checks"] if c["hard_stop"]] == [c for c in quality.CHECKS if c in quality.HARD_STOPS]
    assert all(set(c) == {"name", "passed", "accepted", "hard_stop", "message", "count", "offending"} for c in data["checks"])
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
    assert message.startswith(f"data quality checks failed for the snapshot of {D} (1 of {len(quality.CHECKS)} checks)")
    assert report.check("daily_total_outlier").message in message
    assert "data/quality/2016-05-22/failed/quality.md" in message
    assert f"accept = daily_total_outlier:{D}" in message and "[quality]" in message
    assert "hard stop" not in message  # nothing failed that cannot be accepted


def test_an_accepted_failure_is_recorded_as_accepted(low_day, tmp_path):
    report = quality.run_checks(low_day[RUN_DATE], RUN_DATE, accepted=[f"daily_total_outlier:{D}"])
    quality.write_report(report, tmp_path / "ok")
    data = json.loads((tmp_path / "ok" / "quality.json").read_text())
    assert data["passed"] is True and data["failed"] == [] and data["accepted"] == ["daily_total_outlier"]
    assert data["accept"] == [f"daily_total_outlier:{D}"]
    entry = next(c for c in data["checks"] if c["name"] == "daily_total_outlier")
    assert entry["passed"] is False and entry["accepted"] is True and entry["count"] == 1
    md = (tmp_path / "ok" / "quality.md").read_text()
    assert ": PASSED" in md and "| daily_total_outlier | failed, accepted |" in md


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


def test_a_hard_stop_cannot_be_accepted(base, tmp_path):
    """A hard stop fails whatever is accepted, and its message and the report say how to mend it instead."""
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    s.loc[(s["store_id"] == "TX_1") & (s["date"] == pd.Timestamp("2016-05-20")), "units"] = -1
    on_day = (s["date"] == pd.Timestamp(RUN_DATE)).to_numpy()
    units = s["units"].to_numpy().copy()
    units[on_day] //= 20
    s["units"] = units  # and a day far below its usual total, which can be accepted
    report = check(tmp_path, f, accepted=[f"daily_total_outlier:{D}"])
    assert [c.name for c in report.failed] == ["negative_units"] and report.check("negative_units").hard_stop
    assert report.accepted == [report.check("daily_total_outlier")]
    assert report.check("negative_units").message.endswith("A hard stop: it cannot be accepted; mend the rows in the "
                                                           "source (a correction recorded later replaces them) and "
                                                           "run the date again.")
    assert "store_id=TX_1" in report.check("negative_units").message
    md = report.to_markdown()
    assert "| negative_units | **FAILED** (hard stop) |" in md and "## negative_units: FAILED, a hard stop" in md
    with pytest.raises(DataError, match="negative_units is a hard stop: no setting accepts them") as info:
        report.raise_if_failed()
    assert "accept = " not in str(info.value)
    with pytest.raises(ValueError, match="negative_units is a hard stop, which cannot be accepted"):
        check(tmp_path, f, accepted=["negative_units"])
    with pytest.raises(ValueError, match="price_not_positive is a hard stop"):
        quality.parse_accepted(f"daily_total_outlier:{D}, price_not_positive:{D}")


def test_every_failure_message_says_how_to_accept_it(low_day):
    report = quality.run_checks(low_day[RUN_DATE], RUN_DATE)
    assert report.check("daily_total_outlier").message.endswith(
        f"If the data is right, accept it in the [quality] section of luigi.cfg: accept = daily_total_outlier:{D}")


def test_the_report_is_written_atomically_where_asked(low_day, tmp_path):
    report = quality.run_checks(low_day[RUN_DATE], RUN_DATE)
    paths = quality.write_report(report, tmp_path / "new" / "folder")
    assert [p.read_text(encoding="utf-8") for p in paths] == [report.to_json(), report.to_markdown()]
    assert sorted(p.name for p in (tmp_path / "new" / "folder").iterdir()) == sorted(quality.REPORT_FILES)
