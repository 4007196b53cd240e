"""The world as the Kaggle M5 files (pipeline.tools.world.kaggle): M5's layout, and an import that gives the world back.

A tiny world with the ``shifted`` dynamics is exported, imported into an empty database with the
M5 importer, and compared with the database ``generate_world`` writes for the same arguments: the
same units per (item, store, date) as the rows in force at the end of d_1941, the same prices and
calendar. Seed 13 has sales corrections recorded after d_1941 for days before it, which the
Kaggle files must not hold.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.tools import m5import, world
from pipeline.tools.world import kaggle

SEED, DYNAMICS = 13, "shifted"
FILES = ["calendar.csv", "sales_test_evaluation.csv", "sales_train_evaluation.csv", "sales_train_validation.csv",
         "sell_prices.csv", "world.json"]
KEY = ["store_id", "item_id", "date"]


def _read(path: Path, sql: str) -> pd.DataFrame:
    with sqlite3.connect(path) as con:
        return pd.read_sql_query(sql, con)


def _sales(path: Path, where: str = "1 = 1") -> pd.DataFrame:
    """Sales rows (date as Timestamp), each key's latest row among those matching ``where``."""
    rows = _read(path, f"SELECT store_id, item_id, date, units, recorded_at FROM sales WHERE {where}")
    rows["date"] = pd.to_datetime(rows["date"])
    rows["recorded_at"] = pd.to_datetime(rows["recorded_at"], format="ISO8601")
    return rows.sort_values("recorded_at", kind="stable").drop_duplicates(KEY, keep="last").sort_values(KEY, ignore_index=True)


def _wide(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={c: str for c in m5import.SALES_ID_COLUMNS}, keep_default_na=False)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kaggle") / "m5"
    return folder, kaggle.export_kaggle(folder, scale="tiny", seed=SEED, dynamics=DYNAMICS)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("generated") / "world.sqlite"
    return path, world.generate_world(f"sqlite:///{path}", scale="tiny", seed=SEED, dynamics=DYNAMICS)


@pytest.fixture(scope="module")
def imported(exported, tmp_path_factory):
    path = tmp_path_factory.mktemp("imported") / "m5.sqlite"
    return path, m5import.import_m5(f"sqlite:///{path}", exported[0])


def test_files_have_m5s_layout(exported):
    folder, summary = exported
    assert sorted(p.name for p in folder.iterdir()) == FILES
    header = lambda name: (folder / name).read_text().split("\n", 1)[0].split(",")  # noqa: E731
    days = lambda a, b: [f"d_{k}" for k in range(a, b + 1)]  # noqa: E731
    assert header("calendar.csv") == list(m5import.CALENDAR_COLUMNS)
    assert header("sell_prices.csv") == list(m5import.PRICE_COLUMNS)
    assert header("sales_train_validation.csv") == [*m5import.SALES_ID_COLUMNS, *days(1, 1913)]
    assert header("sales_train_evaluation.csv") == [*m5import.SALES_ID_COLUMNS, *days(1, 1941)]
    assert header("sales_test_evaluation.csv") == [*m5import.SALES_ID_COLUMNS, *days(1942, 1969)]
    for name in FILES[:-1]:
        data = (folder / name).read_bytes()
        assert b'"' not in data and b"\r" not in data and data.endswith(b"\n"), name
    calendar = pd.read_csv(folder / "calendar.csv", keep_default_na=False)
    assert len(calendar) == 1969 and calendar["d"].iloc[0] == "d_1" and calendar["date"].iloc[0] == "2011-01-29"
    assert calendar["date"].iloc[1912] == "2016-04-24" and calendar["d"].iloc[-1] == "d_1969"
    validation, evaluation = _wide(folder / "sales_train_validation.csv"), _wide(folder / "sales_train_evaluation.csv")
    assert len(validation) == len(evaluation) == 140
    assert validation["id"].iloc[0] == "HOBBIES_1_001_CA_1_validation" and evaluation["id"].iloc[-1] == "FOODS_3_002_WI_3_evaluation"
    assert (evaluation["id"] == evaluation["item_id"] + "_" + evaluation["store_id"] + "_evaluation").all()
    assert list(evaluation["cat_id"].iloc[:14].drop_duplicates()) == ["HOBBIES", "HOUSEHOLD", "FOODS"]  # M5's order
    assert (validation["id"].str.replace("_validation", "_evaluation") == evaluation["id"]).all()
    assert validation.iloc[:, 1:].equals(evaluation.iloc[:, 1:1919])  # the validation file is the evaluation file cut
    # days before the tiny world's first day (2014-06-01 = d_1220) hold 0
    assert summary["zero_days_before_first_date"] == 1219 and (evaluation[days(1, 1219)] == 0).all().all()
    assert evaluation["d_1220"].sum() > 0


def test_import_gives_the_sales_in_force_at_the_end_of_d_1941(exported, generated, imported):
    gen, imp = generated[0], imported[0]
    in_force = _sales(gen, "recorded_at < '2016-05-23' AND date <= '2016-05-22'")
    got = _sales(imp)
    assert imported[1]["sales_file"] == "sales_train_evaluation.csv" and not got.duplicated(KEY).any()
    assert (got["recorded_at"] == got["date"] + pd.Timedelta(hours=23)).all()  # the import records the end of each day
    first = pd.Timestamp("2014-06-01")
    assert (got.loc[got["date"] < first, "units"] == 0).all()
    got = got[got["date"] >= first].reset_index(drop=True)
    assert got[KEY].equals(in_force[KEY])
    assert (got["units"].to_numpy() == in_force["units"].to_numpy()).all()
    # corrections recorded after d_1941 are not in the Kaggle files: the value before them is
    late = _read(gen, "SELECT store_id, item_id, date FROM sales WHERE recorded_at >= '2016-05-23' AND date <= '2016-05-22'")
    assert len(late) >= 1
    final = _sales(gen, "date <= '2016-05-22'")
    assert (final["units"].to_numpy() != got["units"].to_numpy()).sum() == len(late)


def test_import_gives_the_same_prices_calendar_items_and_stores(generated, imported):
    gen, imp = generated[0], imported[0]
    order = "ORDER BY store_id, item_id, wm_yr_wk"
    prices = _read(gen, f"SELECT * FROM sell_prices {order}")
    back = _read(imp, f"SELECT * FROM sell_prices {order}")
    assert len(back) == len(prices) == generated[1]["rows"]["sell_prices"]
    for frame in (prices, back):
        frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], format="ISO8601")
    pd.testing.assert_frame_equal(back, prices)  # prices exactly, recorded at the start of their week as generated
    for table, key in (("calendar", "date"), ("items", "item_id"), ("stores", "store_id")):
        pd.testing.assert_frame_equal(_read(imp, f"SELECT * FROM {table} ORDER BY {key}"),
                                      _read(gen, f"SELECT * FROM {table} ORDER BY {key}"), obj=table)


def test_test_file_holds_the_final_units_after_d_1941(exported, generated):
    wide = _wide(exported[0] / "sales_test_evaluation.csv")
    days = [f"d_{k}" for k in range(1942, 1970)]
    final = _sales(generated[0], "date > '2016-05-22'")
    table = final.pivot(index=["item_id", "store_id"], columns="date", values="units")
    table = table.loc[list(zip(wide["item_id"], wide["store_id"]))]
    assert table.shape == (140, 28)
    assert (table.to_numpy() == wide[days].to_numpy()).all()


def test_summary_and_determinism(exported, generated, tmp_path):
    folder, summary = exported
    assert json.loads((folder / "world.json").read_text()) == summary
    assert summary["dynamics"] == generated[1]["dynamics"] and summary["as_of"] == "2016-05-23T00:00:00"
    again = kaggle.export_kaggle(tmp_path / "again", scale="tiny", seed=SEED, dynamics=DYNAMICS)
    assert again == summary and _hashes(tmp_path / "again") == _hashes(folder)


def test_refuses_a_folder_with_files_and_cli(exported, tmp_path, capsys):
    with pytest.raises(ValueError, match="already exists and is not an empty folder"):
        kaggle.export_kaggle(exported[0], scale="tiny")
    out = tmp_path / "cli"
    assert kaggle.main(["--scale", "tiny", "--seed", "2", "--dynamics", "reshaped", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(out) and printed["dynamics"]["name"] == "reshaped"
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert kaggle.main(["--scale", "tiny", "--out", str(out)]) == 1
    assert "not an empty folder" in capsys.readouterr().err
    assert np.array_equal(_wide(out / "sales_train_evaluation.csv").columns[:6], list(m5import.SALES_ID_COLUMNS))
