"""``python -m bench.accuracy.folders DATE``: the output folders of DATE's chain under the current configuration, as JSON.

Run in the environment the pipeline ran in (PIPELINE_DATABASE_URL, PIPELINE_DATA_DIR,
LUIGI_CONFIG_PATH), like ``python -m tasks.show --path``, but every folder the panel reads in
one process: the forecast, its evaluation, the model that made it, the snapshot of the origin
and the later snapshot holding the actuals.
"""
from __future__ import annotations

import datetime as dt
import json
import sys


def main(argv: list[str]) -> int:
    import tasks
    from tasks import config

    day = dt.date.fromisoformat(argv[0])
    pinned = config.training().pinned_model()
    model_date = pinned or config.training().schedule().training_date(day)
    later = config.forecast_spec().last_target_date(day)
    found = {"forecast": tasks.ScoreForecast(date=day), "evaluate": tasks.Evaluate(date=day),
             "model": tasks.TrainModel(date=model_date), "snapshot": tasks.ExtractSnapshot(date=day),
             "later_snapshot": tasks.ExtractSnapshot(date=later)}
    print(json.dumps({name: str(task.output().path) for name, task in found.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
