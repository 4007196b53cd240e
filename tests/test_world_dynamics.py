"""Sets of dynamics of the synthetic world (pipeline.tools.world.dynamics): each effect shows in the generated data.

Each effect is checked in a tiny world generated with that effect alone (the knobs of the
``shifted`` set) against the base world of the same seed: both draw the same base world, so their
ratio isolates the effect (up to the Poisson draws and the stock-outs drawn after them, which
differ once the demand differs). Stores an effect does not touch must be the base world's, unchanged.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.tools import world
from pipeline.tools.world.calendar import build_calendar
from pipeline.tools.world.effects import draw_effects
from pipeline.tools.world.frame import make_frame

SEED = 42
SHIFTED = world.DYNAMICS["shifted"]
KEY = ["store_id", "item_id", "date"]
TABLES = ("calendar", "items", "stores", "sell_prices", "sales")


def _generate(folder: Path, dynamics, seed: int = SEED, scale: str = "tiny") -> tuple[Path, dict]:
    path = folder / "world.sqlite"
    return path, world.generate_world(f"sqlite:///{path}", scale=scale, seed=seed, dynamics=dynamics)


def _originals(path: Path) -> pd.DataFrame:
    """The 23:00 sales rows with item and calendar attributes."""
    with sqlite3.connect(path) as con:
        frame = pd.read_sql_query(
            "SELECT s.store_id, s.item_id, s.date, s.units, i.dept_id, i.cat_id, c.wday, c.wm_yr_wk FROM sales s "
            "JOIN items i USING (item_id) JOIN calendar c USING (date) "
            "WHERE s.recorded_at = s.date || ' 23:00:00.000000'", con)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _prices(path: Path) -> pd.DataFrame:
    with sqlite3.connect(path) as con:
        frame = pd.read_sql_query("SELECT * FROM sell_prices", con)
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], format="ISO8601")
    return frame


def _dump(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as con:
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in TABLES}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path, _ = _generate(tmp_path_factory.mktemp("base"), "base")
    return path


@pytest.fixture(scope="module")
def base_sales(base):
    return _originals(base)


class _Alone(dict):
    """effect -> (its realised values, base and this world's units side by side, this world's path), generated on first use."""

    def __init__(self, folders, base_sales):
        super().__init__()
        self.folders, self.base_sales = folders, base_sales

    def __missing__(self, effect: str):
        path, summary = _generate(self.folders.mktemp(effect), world.Dynamics(f"only_{effect}", **{effect: getattr(SHIFTED, effect)}))
        both = self.base_sales.merge(_originals(path)[KEY + ["units"]], on=KEY, suffixes=("_base", ""), validate="1:1")
        assert len(both) == len(self.base_sales)
        self[effect] = (summary["dynamics"][effect], both, path)
        return self[effect]


@pytest.fixture(scope="module")
def alone(tmp_path_factory, base_sales):
    """Tiny worlds with one effect of ``shifted`` on (see _Alone)."""
    return _Alone(tmp_path_factory, base_sales)


def _ratio(rows: pd.DataFrame) -> float:
    """Units of the world with the effect over units of the base world."""
    return rows["units"].sum() / rows["units_base"].sum()


def test_the_named_sets():
    assert list(world.DYNAMICS)[:3] == ["base", "shifted", "reshaped"]
    assert world.DYNAMICS["base"].active() == ()
    assert SHIFTED.active() == ("level_shift", "drift", "weekly", "promo", "launches")
    assert world.DYNAMICS["reshaped"].active() == SHIFTED.active() and world.DYNAMICS["reshaped"] != SHIFTED


def test_level_shift_multiplies_one_store_from_its_date(alone):
    (shift,), both, _ = alone["level_shift"]
    assert 1.3 <= shift["factor"] <= 1.5 and dt.date(2015, 10, 1) <= dt.date.fromisoformat(shift["from"]) <= dt.date(2016, 2, 29)
    store = both[both["store_id"] == shift["store_id"]]
    after = store["date"] >= pd.Timestamp(shift["from"])
    assert _ratio(store[after]) / _ratio(store[~after]) == pytest.approx(shift["factor"], rel=0.1)
    assert _ratio(store[~after]) == pytest.approx(1.0, abs=0.05)
    others = both[both["store_id"] != shift["store_id"]]
    assert (others["units"] == others["units_base"]).all()  # the other stores are the base world's, unchanged


def test_drift_is_a_linear_trend_of_one_department_from_its_start(alone):
    (drift,), both, _ = alone["drift"]
    assert drift["from"] == "2016-01-25" and 0.2 <= abs(drift["log_per_90_days"]) <= 0.35
    dept = both[both["dept_id"] == drift["dept_id"]]
    since = (dept["date"] - pd.Timestamp(drift["from"])).dt.days
    assert _ratio(dept[since < 0]) == pytest.approx(1.0, abs=0.05)
    weeks = dept[since >= 0].groupby(since[since >= 0] // 7)[["units", "units_base"]].sum()
    slope = np.polyfit(weeks.index * 7 + 3, np.log(weeks["units"] / weeks["units_base"]), 1)[0]
    assert slope * 90 == pytest.approx(drift["log_per_90_days"], rel=0.3)
    last = since.max()
    tail = dept[since > last - 28]  # the last 28 days: exp(rate x mean days elapsed / 90)
    assert _ratio(tail) == pytest.approx(np.exp(drift["log_per_90_days"] * (last - 13.5) / 90), rel=0.1)
    others = both[(both["dept_id"] != drift["dept_id"]) & (both["date"] >= pd.Timestamp(drift["from"]))]
    assert _ratio(others) == pytest.approx(1.0, abs=0.05)


def test_weekly_profile_of_one_state_changes_at_its_date(alone):
    weekly, both, _ = alone["weekly"]
    mult = np.array(weekly["multiplier_by_wday"])
    assert mult.mean() == pytest.approx(1.0) and mult.max() / mult.min() > 1.2
    state = both[both["store_id"].str[:2] == weekly["state_id"]]
    after = state["date"] >= pd.Timestamp(weekly["from"])
    by_wday = state[after].groupby("wday")[["units", "units_base"]].sum()
    assert list(by_wday.index) == [1, 2, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(by_wday["units"] / by_wday["units_base"], mult, rtol=0.1)
    before = state[~after].groupby("wday")[["units", "units_base"]].sum()
    np.testing.assert_allclose(before["units"] / before["units_base"], 1.0, atol=0.05)
    others = both[both["store_id"].str[:2] != weekly["state_id"]]
    assert (others["units"] == others["units_base"]).all()


def test_promotion_response_differs_by_department(alone, base):
    scale, both, _ = alone["promo"]
    assert set(scale) == set(world.DEPARTMENTS) and all(0.3 <= s <= 2.0 for s in scale.values())
    # promotion weeks: a price 10 % or more below the series' highest price within 4 weeks either side
    prices = _prices(base).sort_values(["store_id", "item_id", "wm_yr_wk"])
    top = prices.groupby(["store_id", "item_id"])["sell_price"].transform(lambda p: p.rolling(9, center=True, min_periods=1).max())
    prices["promo"] = prices["sell_price"] < 0.9 * top
    rows = both.merge(prices[["store_id", "item_id", "wm_yr_wk", "promo"]], on=["store_id", "item_id", "wm_yr_wk"], how="left")
    rows["promo"] = rows["promo"].astype("boolean").fillna(False).astype(bool)
    assert 0.01 < rows["promo"].mean() < 0.1
    lift = {}
    for dept, part in rows.groupby("dept_id"):
        assert _ratio(part[~part["promo"]]) == pytest.approx(1.0, abs=0.05), dept  # outside promotions: the base world
        lift[dept] = _ratio(part[part["promo"]])
    # a stronger response lifts promotion weeks above the base world's, a weaker one leaves them below
    for dept, s in scale.items():
        if abs(s - 1) > 0.2:
            assert np.sign(np.log(lift[dept])) == np.sign(s - 1), (dept, s, lift[dept])
    depts = list(scale)
    order = pd.Series([scale[d] for d in depts]).corr(pd.Series([lift[d] for d in depts]), method="spearman")
    assert order > 0.7


def test_launched_items_sell_nothing_and_have_no_price_before_their_launch(alone, base_sales):
    launches, both, path = alone["launches"]
    assert len(launches) == max(1, round(0.1 * 14))
    prices = _prices(path)
    for launch in launches:
        day = pd.Timestamp(launch["from"])
        assert dt.date(2015, 10, 1) <= day.date() <= dt.date(2016, 3, 31)
        rows = both[both["item_id"] == launch["item_id"]]
        assert rows.loc[rows["date"] < day, "units"].sum() == 0
        assert rows.loc[rows["date"] < day, "units_base"].sum() > 0  # the base world sold it before
        assert rows.loc[rows["date"] >= day, "units"].sum() > 0
        first_price = prices[prices["item_id"] == launch["item_id"]].groupby("store_id")["recorded_at"].min()
        assert len(first_price) == 10  # every store lists it, from the week of the launch on, up to 8 weeks later
        assert (first_price > day - pd.Timedelta(days=7)).all() and (first_price <= day + pd.Timedelta(days=63)).all()
    others = both[~both["item_id"].isin([x["item_id"] for x in launches])]
    assert _ratio(others) == pytest.approx(1.0, abs=0.02)


def test_each_effect_draws_from_its_own_stream(alone, tmp_path):
    """The full set realises every effect exactly as the set with that effect alone: no effect moves another's draws."""
    _, summary = _generate(tmp_path, "shifted")
    assert summary["dynamics"]["name"] == "shifted"
    assert summary["dynamics"]["level_shift"] == alone["level_shift"][0]  # a generated world with the shift alone
    frame = make_frame(world.SCALES["tiny"], build_calendar())
    for effect in SHIFTED.active():
        single = draw_effects(frame, SEED, world.Dynamics("one", **{effect: getattr(SHIFTED, effect)})).summary
        assert summary["dynamics"][effect] == single[effect], effect


@pytest.mark.parametrize("name", ["shifted", "reshaped"])
def test_same_scale_seed_and_dynamics_same_world(name, base, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    a, summary = _generate(tmp_path / "a", name)
    b, again = _generate(tmp_path / "b", name)
    c, other = _generate(tmp_path / "c", name, seed=SEED + 1)
    assert _dump(a) == _dump(b) and summary["dynamics"] == again["dynamics"]
    reference = _dump(base)
    dumped = _dump(a)
    assert dumped["sales"] != reference["sales"] and dumped["calendar"] == reference["calendar"]
    assert other["dynamics"] != summary["dynamics"] and _dump(c)["sales"] != dumped["sales"]
    json.dumps(summary["dynamics"])  # JSON as it is


def test_reshaped_values(tmp_path):
    _, summary = _generate(tmp_path, "reshaped")
    effects = summary["dynamics"]
    assert len(effects["level_shift"]) == 2 and all(0.6 <= s["factor"] <= 0.8 for s in effects["level_shift"])
    assert len({s["store_id"] for s in effects["level_shift"]}) == 2
    assert len(effects["drift"]) == 2 and all(0.1 <= abs(x["log_per_90_days"]) <= 0.2 for x in effects["drift"])
    assert effects["weekly"]["cat_id"] in world.CATEGORIES
    assert all(0.0 <= s <= 1.0 for s in effects["promo"].values()) and len(effects["launches"]) == round(0.2 * 14)


def test_effects_are_deterministic_at_every_scale():
    calendar = build_calendar()
    for scale in ("tiny", "demo", "full"):
        frame = make_frame(world.SCALES[scale], calendar)
        for name in ("shifted", "reshaped"):
            first = draw_effects(frame, 5, world.DYNAMICS[name]).summary
            assert draw_effects(frame, 5, world.DYNAMICS[name]).summary == first
            assert draw_effects(frame, 6, world.DYNAMICS[name]).summary != first
        assert draw_effects(frame, 5, world.DYNAMICS["base"]).summary == {"name": "base"}


def test_bad_dynamics_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="unknown dynamics 'wobbly'; choose one of base, shifted, reshaped"):
        world.generate_world(f"sqlite:///{tmp_path / 'a.sqlite'}", scale="tiny", dynamics="wobbly")
    early = world.Dynamics("early", level_shift=world.LevelShift(window=(dt.date(2012, 1, 1), dt.date(2012, 3, 1))))
    with pytest.raises(ValueError, match="level_shift window 2012-01-01..2012-03-01 is not inside the world's history"):
        world.generate_world(f"sqlite:///{tmp_path / 'b.sqlite'}", scale="tiny", dynamics=early)
    with pytest.raises(ValueError, match="drift depts must be 1..7, got 8"):
        world.generate_world(f"sqlite:///{tmp_path / 'c.sqlite'}", scale="tiny", dynamics=world.Dynamics("x", drift=world.Drift(depts=8)))
    assert not any(tmp_path.iterdir())


def test_cli_dynamics(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert world.main(["--scale", "tiny", "--url", url, "--seed", "3", "--dynamics", "reshaped"]) == 0
    assert json.loads(capsys.readouterr().out)["dynamics"]["name"] == "reshaped"
    with pytest.raises(SystemExit):
        world.main(["--scale", "tiny", "--url", url, "--dynamics", "wobbly"])
