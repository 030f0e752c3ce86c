"""Open-loop load at a fixed rate from its own process: ``python -m service.bench.load < spec.json`` prints stats.

Requests are started on a fixed schedule (rate per second) whatever the answers do, so a slow server shows up
as latency and errors rather than as a lower request rate (no coordinated omission). Latency is measured from
the scheduled start of each request.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import numpy as np


@dataclass(frozen=True)
class LoadSpec:
    url: str
    bodies: list[Any]  # cycled
    rate: float  # requests per second
    seconds: float
    headers: dict[str, str]


@dataclass(frozen=True)
class LoadStats:
    rate: float
    sent: int
    ok: int
    errors: int  # non-200 other than 503, and transport errors
    shed_503: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_rps: float  # 200 answers per second of the run


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, scheduled: float) -> tuple[int, float]:
    try:
        async with session.post(url, data=body) as response:
            await response.read()
            return response.status, time.perf_counter() - scheduled
    except (TimeoutError, aiohttp.ClientError):
        return -1, time.perf_counter() - scheduled


async def run(spec: LoadSpec) -> LoadStats:
    bodies = [json.dumps(b).encode() for b in spec.bodies]
    headers = spec.headers | {"content-type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as session:
        count = int(spec.rate * spec.seconds)
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(count):
            scheduled = start + i / spec.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(session, spec.url, bodies[i % len(bodies)], scheduled)))
        results = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return summarise(spec.rate, results, elapsed)


def summarise(rate: float, results: list[tuple[int, float]], elapsed: float) -> LoadStats:
    ok = np.array([t for s, t in results if s == 200]) * 1000
    shed = sum(1 for s, _ in results if s == 503)
    pct = np.percentile(ok, [50, 95, 99]) if len(ok) else np.array([np.nan] * 3)
    return LoadStats(
        rate=rate,
        sent=len(results),
        ok=len(ok),
        errors=len(results) - len(ok) - shed,
        shed_503=shed,
        p50_ms=round(float(pct[0]), 2),
        p95_ms=round(float(pct[1]), 2),
        p99_ms=round(float(pct[2]), 2),
        throughput_rps=round(len(ok) / elapsed, 1),
    )


def main() -> None:
    spec = LoadSpec(**json.loads(sys.stdin.read()))
    sys.stdout.write(json.dumps(asdict(asyncio.run(run(spec)))) + "\n")


if __name__ == "__main__":
    main()
