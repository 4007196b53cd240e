"""Time snapshot extraction: fresh, from the previous day's snapshot, or with another implementation.

    python bench/extract_bench.py --url sqlite:////tmp/x/demo.sqlite --date 2016-05-22 --mode fresh
    python bench/extract_bench.py --url ... --date 2016-05-22 --mode incremental   # builds date-1 first (fresh)
    python bench/extract_bench.py --url ... --date 2016-05-22 --mode fresh --impl /tmp/x/extract_old.py

Prints one JSON line per timed extraction: wall seconds, peak RSS of the process
(MiB, ru_maxrss), rows and the content hash.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.data import db  # noqa: E402
from pipeline.data import storage


def load(impl: str | None):
    if not impl:
        from pipeline.stages import extract
        return extract
    spec = importlib.util.spec_from_file_location("extract_impl", impl)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed(extract, engine, date, out: Path, previous: Path | None = None) -> dict:
    began = time.perf_counter()
    with storage.atomic_dir(out) as tmp:
        if previous is None:
            manifest = extract.extract_snapshot(engine, date, tmp)
        else:
            manifest = extract.extract_snapshot(engine, date, tmp, previous_dir=previous)
    return {"date": date.isoformat(), "built_from": manifest.get("built_from", "fresh(old)"),
            "seconds": round(time.perf_counter() - began, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rows": manifest["rows"]["sales"], "hash": manifest["content_hash"]["all"][:16]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2016, 5, 22))
    parser.add_argument("--mode", choices=["fresh", "incremental", "previous-only"], default="fresh")
    parser.add_argument("--days", type=int, default=1, help="incremental: this many consecutive days after date-1")
    parser.add_argument("--impl", help="path of another extract.py to time (fresh only)")
    parser.add_argument("--out", help="folder for the snapshots (default: a temporary one, removed)")
    args = parser.parse_args()
    extract = load(args.impl)
    engine = db.engine_for(args.url)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="extract-bench-"))
    try:
        if args.mode == "fresh":
            print(json.dumps(timed(extract, engine, args.date, root / args.date.isoformat())), flush=True)
        else:
            day0 = args.date - dt.timedelta(days=1)
            if not (root / day0.isoformat() / "manifest.json").exists():
                print(json.dumps(timed(extract, engine, day0, root / day0.isoformat())), flush=True)
            for k in range(args.days):
                d = args.date + dt.timedelta(days=k)
                print(json.dumps(timed(extract, engine, d, root / d.isoformat(),
                                       previous=root / (d - dt.timedelta(days=1)).isoformat())), flush=True)
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
