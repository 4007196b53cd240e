"""``python -m tasks.backfill --start A --stop B``: Luigi's range backfill with a progress bar.

The same as ``luigi --module pipeline RangeDailyBase --of DailyForecast --start A --stop B``
(``--stop`` is exclusive; days already done are skipped), plus a bar of the days done.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

import luigi
from luigi.tools.range import RangeDailyBase

from pipeline.tools.bars import fraction_bar


def main(argv=None) -> int:
    from tasks import DailyForecast

    parser = argparse.ArgumentParser(prog="python -m tasks.backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True, help="first run date (inclusive)")
    parser.add_argument("--stop", type=dt.date.fromisoformat, required=True, help="last run date (exclusive)")
    parser.add_argument("--local-scheduler", action="store_true", help="run without the central scheduler")
    args = parser.parse_args(argv)
    dates = [args.start + dt.timedelta(days=k) for k in range((args.stop - args.start).days)]
    if not dates:
        parser.error("--stop must be after --start")
    with fraction_bar(f"backfill {args.start}..{args.stop}") as bar:
        done = {d for d in dates if DailyForecast(date=d).complete()}
        bar(len(done) / len(dates), f"{len(done)} of {len(dates)} days already done")

        @DailyForecast.event_handler(luigi.Event.SUCCESS)
        def _day_done(task):
            if task.date in dates:
                done.add(task.date)
                bar(len(done) / len(dates), f"{task.date} done")

        result = luigi.build([RangeDailyBase(of=DailyForecast, start=args.start, stop=args.stop)],
                             local_scheduler=args.local_scheduler, detailed_summary=True)
    print(result.summary_text, file=sys.stderr)
    ok = result.status in (luigi.execution_summary.LuigiStatusCode.SUCCESS,
                           luigi.execution_summary.LuigiStatusCode.SUCCESS_WITH_RETRY)
    return 0 if ok and len(done) == len(dates) else 1


if __name__ == "__main__":
    sys.exit(main())
