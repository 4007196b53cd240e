"""``make bench-serve [SCALE=demo|full]``: a bounded load test of the prediction service on loopback.

The world and its chain of run date 2016-05-16 come from ``make bench`` (``bench/run.py --reuse``:
kept when already there). Then the series indexes are made, ``python -m service`` starts with the
configured workers on a free port, and for each endpoint ``--clients`` concurrent clients (one
asyncio loop, keep-alive connections) send requests for ``--seconds`` seconds, each for a series
drawn at random (fixed seed) from the world's, at each concurrency of ``--clients`` (1, 8, 32):

  forecasts       GET /forecasts/{store}/{item}?as_of=2016-05-16   (the published rows)
  predict         POST /predict {store, item, as_of}               (online features + compiled model)
  predict-whatif  POST /predict with a price for the forecast's second week

Latency is measured by the client (request sent to answer read), so it includes queueing behind
the other clients: with N clients each waiting for its answer before the next request, latency is
about N / throughput (Little's law), so 1 client gives the service time and 32 the latency under
saturation. p50 and p99 over every request of the run, requests per second, errors. The clients
share the machine's cores with the service. Writes bench/serve-<scale>.json and prints
the table. Nothing here is a pass/fail test.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
sys.path.insert(0, str(ROOT))
DAILY = dt.date(2016, 5, 16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_for(endpoint: str, store: str, item: str, week: int | None):
    if endpoint == "forecasts":
        return "GET", f"/forecasts/{store}/{item}?as_of={DAILY}", None
    body = {"store_id": store, "item_id": item, "as_of": DAILY.isoformat()}
    if endpoint == "predict-whatif":
        body["prices"] = [{"wm_yr_wk": week, "sell_price": 1.0}]
    return "POST", "/predict", body


async def load(base: str, endpoint: str, series: list[tuple[str, str]], week: int, clients: int,
               seconds: float, seed: int, keep_alive: bool = False) -> dict:
    import httpx2 as httpx

    rng = random.Random(seed)
    latencies: list[float] = []
    errors: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients if keep_alive else 0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def one_client(k: int):
            local = random.Random(rng.random() + k)
            while time.perf_counter() < stop_at:
                store, item = local.choice(series)
                method, path, body = request_for(endpoint, store, item, week)
                started = time.perf_counter()
                answer = await client.request(method, path, json=body)
                await answer.aread()
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    errors[answer.status_code] = errors.get(answer.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(one_client(k) for k in range(clients)))
        took = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {"endpoint": endpoint, "requests": len(latencies), "seconds": round(took, 1),
            "rps": round(len(latencies) / took, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1), "errors": errors}


def rss_mb(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--clients", default="1,8,32", help="concurrencies, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=None, help="uvicorn workers (default: [serve] workers)")
    parser.add_argument("--endpoints", default="forecasts,predict,predict-whatif", help="comma-separated")
    parser.add_argument("--keep-alive", action="store_true",
                        help="keep each client's connection open (uvicorn then pins it to one worker)")
    parser.add_argument("--warm-up", type=float, default=3.0, help="seconds of 4 clients before each endpoint")
    parser.add_argument("--data", default=str(ROOT / "bench" / "data"))
    parser.add_argument("--results", default=str(ROOT / "bench"))
    args = parser.parse_args(argv)
    home = Path(args.data) / args.scale
    env = {**os.environ, "PIPELINE_DATABASE_URL": f"sqlite:///{home / 'world.sqlite'}",
           "PIPELINE_DATA_DIR": str(home / "data")}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    env.pop("PIPELINE_SERVE_TOKEN", None)
    # the world and the chain of DAILY (kept when make bench made them)
    subprocess.run([PY, str(ROOT / "bench" / "run.py"), "--scale", args.scale, "--reuse", "--stop-after", "daily",
                    "--data", args.data], env=env, check=True)
    subprocess.run([PY, "-m", "pipeline.tools.series_indexes"], env=env, check=True)
    import sqlalchemy as sa

    with sa.create_engine(env["PIPELINE_DATABASE_URL"]).connect() as conn:
        series = [tuple(r) for r in conn.execute(sa.text(
            "SELECT DISTINCT store_id, item_id FROM forecasts WHERE as_of = :d ORDER BY store_id, item_id"),
            {"d": DAILY.isoformat()})]
        week = conn.execute(sa.text("SELECT wm_yr_wk FROM calendar WHERE date = :d"),
                            {"d": (DAILY + dt.timedelta(days=10)).isoformat()}).scalar()
    port = free_port()
    cfg = home / "serve-luigi.cfg"
    from tasks import config

    workers = args.workers or config.serve().workers
    cfg.write_text(f"[serve]\nport = {port}\nworkers = {workers}\n")
    env["LUIGI_CONFIG_PATH"] = str(cfg)
    log = home / "serve.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([PY, "-m", "service"], env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    results = []
    try:
        import urllib.request

        started = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.perf_counter() - started > 600:
                raise SystemExit(f"bench-serve: the service did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        start_s = round(time.perf_counter() - started, 1)
        print(f"bench-serve {args.scale}: {len(series):,} series, service up in {start_s} s", file=sys.stderr)
        for k, endpoint in enumerate(args.endpoints.split(",")):
            asyncio.run(load(base, endpoint, series, week, 4, args.warm_up, seed=99))  # warm-up: caches, connections
            for clients in (int(c) for c in args.clients.split(",")):
                r = asyncio.run(load(base, endpoint, series, week, clients, args.seconds, seed=k,
                                     keep_alive=args.keep_alive))
                r["clients"], r["service_rss_mb"] = clients, rss_mb(proc.pid)
                results.append(r)
                print(f"  {endpoint:15s} {clients:3d} clients {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                      f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors'] or 0}", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    out = {"scale": args.scale, "series": len(series), "as_of": DAILY.isoformat(), "clients": args.clients,
           "warm_up_s": args.warm_up, "keep_alive": args.keep_alive,
           "seconds": args.seconds, "workers": workers, "service_start_s": start_s,
           "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "results": results}
    path = Path(args.results) / (f"serve-{args.scale}.json" if args.endpoints == parser.get_default("endpoints")
                                 else f"serve-{args.scale}-{args.endpoints.replace(',', '-')}.json")
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(path)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
