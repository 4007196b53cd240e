"""``python -m tasks.show --date D``: where the forecast of a run date is, and a few lines of it.

The forecast of D under the current configuration is ``data/forecasts/D/<fingerprint>/``;
the other folders beside it are forecasts of D made under other configurations (their
``settings.json`` says which).
"""
from __future__ import annotations

import argparse
import datetime as dt

import pandas as pd

from pipeline.core.series import SERIES_KEY
from pipeline.data import storage
from tasks.forecast import ScoreForecast
from tasks.outputs import SETTINGS_FILE


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=dt.date.fromisoformat, required=True, help="run date, YYYY-MM-DD")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--path", metavar="TASK", nargs="?", const="ScoreForecast",
                        help="only print the output folder of TASK (default ScoreForecast) for the date")
    args = parser.parse_args(argv)
    if args.path:
        import tasks

        print(getattr(tasks, args.path)(date=args.date).output().path)
        return 0
    task = ScoreForecast(date=args.date)
    folder = task.output().path
    others = sorted(p for p in folder.parent.glob("*") if (p / SETTINGS_FILE).exists() and p != folder)
    if not task.complete():
        print(f"no forecast of {args.date} under the current configuration: {folder} is not complete")
        for other in others:
            made = storage.read_json(other / "manifest.json") if (other / "manifest.json").exists() else {}
            print(f"  made under another configuration: {other} (model {made.get('model_date', '?')})")
        return 1
    forecast = pd.read_parquet(folder / "forecast.parquet")
    manifest = storage.read_json(folder / "manifest.json")
    serving = manifest.get("serving") or {}
    print(f"forecast of {args.date}: {folder / 'forecast.parquet'}")
    print(f"  M5 submission layout: {folder / 'submission.csv'}")
    print(f"  model of {manifest['model_date']} ({serving.get('how', '?')}: {serving.get('reason', '')})")
    if manifest.get("blend"):
        b = manifest["blend"]
        print(f"  blended: {1 - b['weight']:g} x the batch model ({b['batch_total_units']:,.0f} units) + {b['weight']:g} x "
              f"the online model ({b['online_total_units']:,.0f} units); both parts in {folder / 'components.parquet'}")
    print(f"  {forecast.groupby(SERIES_KEY).ngroups} series x {forecast['horizon'].max()} days = "
          f"{len(forecast)} rows, {forecast['date'].min().date()} .. {forecast['date'].max().date()}, "
          f"{forecast['units'].sum():,.0f} units in all")
    if others:
        print(f"  {len(others)} other configuration(s) forecast this date too: {', '.join(p.name for p in others)}")
    with pd.option_context("display.width", 120):
        print(forecast.head(args.rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
