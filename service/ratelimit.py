"""Per-key rate limits shared by every replica: a token bucket per key in Redis, updated atomically by a script.

A key may send ``burst`` requests at once and ``rate_per_second`` on average. The bucket lives in the shared
Redis, so the limit holds for the whole deployment, not per pod. If that Redis cannot be reached the limiter
fails open (the request proceeds; ``pvcast_shared_state_errors_total`` counts it): losing the limiter must
not take the forecast API down with it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis

from service import metrics

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV rate [1/s], burst. Time comes from the Redis server, so replicas' clocks do not matter.
TOKEN_BUCKET = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int = 0


class RateLimiter:
    def __init__(self, client: redis.Redis | None, prefix: str = "pvcast:ratelimit:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(TOKEN_BUCKET) if client is not None else None

    def check(self, key_name: str, rate_per_second: float, burst: int) -> Decision:
        if self._script is None:
            return Decision(True)
        try:
            allowed, wait = self._script(keys=[self._prefix + key_name], args=[rate_per_second, burst])
        except redis.RedisError as exc:
            metrics.shared_state_errors.labels(operation="rate_limit").inc()
            logger.warning("rate limiter unavailable, request allowed: %s", type(exc).__name__)
            return Decision(True)
        if int(allowed):
            return Decision(True)
        return Decision(False, max(1, math.ceil(float(wait))))
