"""``python -m tasks.show --date D``: where a run's forecast is, and a few lines of it."""
from __future__ import annotations

import argparse
import datetime as dt

import pandas as pd

from tasks import config
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", type=dt.date.fromisoformat, required=True, help="run date, YYYY-MM-DD")
    parser.add_argument("--rows", type=int, default=8)
    args = parser.parse_args(argv)
    folder = config.data_dir() / "forecasts" / args.date.isoformat()
    path = folder / "forecast.parquet"
    if not path.exists():
        print(f"no forecast for {args.date}: {path} does not exist")
        return 1
    forecast = pd.read_parquet(path)
    print(f"forecast of {args.date}: {path}")
    print(f"  M5 submission layout: {folder / 'submission.csv'}")
    print(f"  {forecast.groupby(['item_id', 'store_id']).ngroups} series x {forecast['horizon'].max()} days = "
          f"{len(forecast)} rows, {forecast['date'].min().date()} .. {forecast['date'].max().date()}, "
          f"{forecast['units'].sum():,.0f} units in all")
    with pd.option_context("display.width", 120):
        print(forecast.head(args.rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
