"""Everything the gateway decides in Redis, in ONE atomic script (one round trip):

0. the key's cache entry: when the caller decided on a copy of it (``gateway.keys.KnownKeys``),
   that copy must still be the entry in Redis (revocation and rotation delete or replace it,
   and so does its TTL), or nothing is consumed and the caller decides again on a fresh read;
1. the payments circuit breaker (``payplane_core.breaker``) for payment creation: fail fast
   while it is open; once half-open, admit ONE probe at a time (the probe key is a lease, so a
   probe whose outcome payments never reports is retried when it ends) and refuse the rest;
   ``Admission.probe`` tells the caller, which marks that request for payments (signed);
2. the nonce: refused if already used by this key;
3. the merchant's token bucket (``requests_per_second`` refill, ``burst`` capacity), on the
   Redis server's clock so every gateway replica agrees;
4. the monthly payment quota, for payment creation only: one unit is reserved here, and the
   payments service gives it back unless the request created a payment (a replay, a refused
   body or a failure never counts; see payments.quota, which also keeps the durable count in
   PostgreSQL and heals this counter from it).

Nothing is consumed unless everything passes, and because the script runs atomically no two
concurrent requests can both take the last token or the last unit of quota.
"""

from dataclasses import dataclass
from enum import IntEnum

from payplane_core.breaker import observe, open_key, probe_key, tripped_key
from payplane_core.usage import current_period, quota_counter_key, seconds_until_next_period
from redis.asyncio import Redis

# KEYS: breaker-open, breaker-tripped, breaker-probe, nonce, bucket, quota, key-entry
# ARGV: check_breaker, check_nonce, nonce_ttl_ms, rate, burst, count_quota, quota_limit,
#       quota_ttl_s, quota_retry_s, probe_lease_ms, key_entry ('' when not checked)
# Returns {verdict, retry_ms, breaker_state}; breaker_state 0 closed, 1 open, 2 half-open.
_ADMIT = """
if ARGV[11] ~= '' and redis.call('GET', KEYS[7]) ~= ARGV[11] then return {5, 0, 0} end
local probe = false
if ARGV[1] == '1' then
  local open_ms = redis.call('PTTL', KEYS[1])
  if open_ms > 0 then return {1, open_ms, 1} end
  if redis.call('EXISTS', KEYS[2]) == 1 then
    local lease_ms = redis.call('PTTL', KEYS[3])
    if lease_ms > 0 then return {1, lease_ms, 2} end
    probe = true
  end
end
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then return {2, 0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local bucket = redis.call('HMGET', KEYS[5], 'tokens', 'ts')
local tokens = tonumber(bucket[1])
local ts = tonumber(bucket[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
if tokens < 1 then return {3, math.ceil((1 - tokens) * 1000 / rate), 0} end
if ARGV[6] == '1' then
  local used = tonumber(redis.call('GET', KEYS[6]) or '0')
  if used >= tonumber(ARGV[7]) then return {4, tonumber(ARGV[9]) * 1000, 0} end
  if redis.call('INCR', KEYS[6]) == 1 then redis.call('EXPIRE', KEYS[6], ARGV[8]) end
end
redis.call('HSET', KEYS[5], 'tokens', string.format('%.6f', tokens - 1), 'ts', now)
redis.call('PEXPIRE', KEYS[5], math.ceil(burst * 1000 / rate) + 1000)
if ARGV[2] == '1' then redis.call('SET', KEYS[4], '1', 'PX', ARGV[3]) end
if probe then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[10])
  return {0, 0, 2}
end
return {0, 0, 0}
"""

QUOTA_KEEP_SECONDS = 40 * 86400  # a month's counter outlives the month (usage reports)


class Verdict(IntEnum):
    ALLOWED = 0
    CIRCUIT_OPEN = 1
    NONCE_REUSED = 2
    RATE_LIMITED = 3
    QUOTA_EXCEEDED = 4
    KEY_CHANGED = 5  # the key's cache entry is not the one the caller decided on


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    retry_after_seconds: float
    probe: bool = False  # admitted as the half-open breaker's one probe


class Admitter:
    def __init__(
        self,
        redis: Redis,
        *,
        breaker_name: str,
        nonce_ttl_seconds: int,
        probe_lease_seconds: float = 5.0,
    ) -> None:
        self._script = redis.register_script(_ADMIT)
        self.breaker_name = breaker_name
        self.breaker_keys = [
            open_key(breaker_name),
            tripped_key(breaker_name),
            probe_key(breaker_name),
        ]
        self.nonce_ttl_ms = nonce_ttl_seconds * 1000
        self.probe_lease_ms = max(1, int(probe_lease_seconds * 1000))

    async def admit(
        self,
        *,
        merchant_id: str,
        key_id: str,
        nonce: str | None,
        requests_per_second: float,
        burst: int,
        payment_creation: bool,
        payments_per_month: int,
        key_entry: tuple[str, bytes] | None = None,
    ) -> Admission:
        """``key_entry``: the key's cache key and the sealed entry the caller decided on."""
        period = current_period()
        keys = [
            *self.breaker_keys,
            f"gw:nonce:{key_id}:{nonce}" if nonce else f"gw:nonce:{key_id}:-",
            f"gw:bucket:{merchant_id}",
            quota_counter_key(merchant_id, period),
            key_entry[0] if key_entry else "gw:key-entry:-",
        ]
        args = [
            int(payment_creation),
            int(nonce is not None),
            self.nonce_ttl_ms,
            repr(float(requests_per_second)),
            burst,
            int(payment_creation),
            payments_per_month,
            QUOTA_KEEP_SECONDS,
            seconds_until_next_period(),
            self.probe_lease_ms,
            key_entry[1] if key_entry else b"",
        ]
        verdict, retry_ms, breaker = await self._script(keys=keys, args=args)
        admitted = Verdict(int(verdict))
        if admitted is Verdict.KEY_CHANGED:  # checked before anything else: nothing observed
            return Admission(admitted, 0.0)
        half_open = int(breaker) == 2
        if payment_creation:  # the script checked the breaker first
            observe(self.breaker_name, int(breaker) == 1, half_open=half_open)
        probe = half_open and admitted is Verdict.ALLOWED  # the script took the probe lease
        return Admission(admitted, int(retry_ms) / 1000, probe=probe)
