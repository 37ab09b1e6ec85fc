"""Cost of the pool itself: acquire latency and throughput when no limit binds.

Run: `.venv/bin/python benchmarks/bench_ratelimit.py [--redis-url URL] [--seconds 3] [--threads 1 4]`.
Without --redis-url it starts a private redis-server on a free port.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "plugins")]

from crm_sync.ratelimit import RateLimitPool, hubspot_limits, salesforce_limits  # noqa: E402


def start_redis() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = shutil.which("redis-server") or sys.exit("redis-server not found")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tempfile.mkdtemp()],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


def run(url: str, name: str, limits, kind: str, threads: int, seconds: float) -> None:
    account = f"bench-{uuid.uuid4().hex[:8]}"
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        pool = RateLimitPool(redis.Redis.from_url(url), account, limits)
        mine: list[float] = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            pool.acquire(kind)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    pool_threads = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool_threads:
        t.start()
    for t in pool_threads:
        t.join()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<28} threads={threads:<2} {len(latencies) / seconds:>8.0f} acquires/s  "
        f"p50 {q[49] * 1e3:.3f} ms  p99 {q[98] * 1e3:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    proc, url = (None, args.redis_url) if args.redis_url else start_redis()
    big = 10**9
    cases = [
        ("hubspot default (log)", hubspot_limits({"requests_per_10s": big}), "default"),
        ("hubspot search (2 logs)", hubspot_limits({"requests_per_10s": big, "search_requests_per_s": big}), "search"),
        ("salesforce daily (buckets)", salesforce_limits({"daily_api_requests": big}), "default"),
    ]
    try:
        for threads in args.threads:
            for name, limits, kind in cases:
                run(url, name, limits, kind, threads, args.seconds)
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
