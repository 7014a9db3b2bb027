"""Lua scripts: each queue transition is one atomic step in Redis.

A job lives in a hash (payload, score, claim, sent, cancelled, attempts) while it is
waiting (member of the pool's queue zset) or running (member of the pool's inflight
zset, scored by its lease deadline). The claim token says which dispatcher owns it,
so a dispatcher that lost its lease can no longer publish or finish.

A job may be enqueued `unpaid`: its api process reserves the credits while it starts.
Until RELEASE (the reservation committed) its output and its settlement are held in
Redis, never delivered; REFUSE (the reservation failed) drops it, with nothing to
settle. So the reservation is off the way to the first token, and nobody is served or
refunded for credits that were never reserved.
"""

_NOW_MS = """
-- Redis's own clock, in ms: every process that calls the script agrees on it.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

_HOLD = """
-- While its job is unpaid, output waits in the job's held list (delivered by RELEASE).
local function hold(job_key, held_key, batch)
  redis.call('RPUSH', held_key, batch)
  redis.call('EXPIRE', held_key, math.max(1, redis.call('TTL', job_key)))
end
-- A job that ends while unpaid keeps its hash (no claim) with the settlement to write
-- once paid; a refused one ends with nothing to settle.
local function end_unpaid(job_key, held_key, batch, settlement)
  if redis.call('HGET', job_key, 'refused') == '1' then
    redis.call('DEL', job_key, held_key)
    return true
  end
  if redis.call('HGET', job_key, 'unpaid') ~= '1' then return false end
  hold(job_key, held_key, batch)
  redis.call('HSET', job_key, 'settlement', settlement)
  redis.call('HDEL', job_key, 'claim')
  return true
end
"""

_SETTLE = """
-- A settlement for the settlers. One that gives credits back also rings the refund
-- bell, so a settler holding a batch for its interval writes it at once: the client may
-- retry on those credits. (`Settlement.refund` is the same test.)
local function settle(settlements_key, bell_key, settlement)
  redis.call('XADD', settlements_key, '*', 'settlement', settlement)
  local s = cjson.decode(settlement)
  if tonumber(s.credits_reserved) > tonumber(s.credits_charged) then
    redis.call('LPUSH', bell_key, '1')
    redis.call('LTRIM', bell_key, 0, 0)
  end
end
"""

CLAIM_BODY = """
-- KEYS: queue, inflight, listeners
-- ARGV: slots, now_ms, lease_ms, job_key_prefix, listener ('' for none), listening
--       until (ms), claim tokens...
-- Claims up to one job per token while the pool has free slots; returns a flat list
-- {id, payload, attempts, id, payload, attempts, ...}. A listener whose claim finds the
-- queue empty is registered until the given time: an enqueue meanwhile may hand it a
-- job directly (see _HAND_OFF).
local claimed = {}
local token = 7
while ARGV[token] do
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[1]) then break end
  local popped = redis.call('ZPOPMIN', KEYS[1])
  if #popped == 0 then
    if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], tonumber(ARGV[6]), ARGV[5]) end
    break
  end
  local id = popped[1]
  local job_key = ARGV[4] .. id
  local payload = redis.call('HGET', job_key, 'payload')
  if payload then
    left_queue(job_key)
    redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), id)
    redis.call('HSET', job_key, 'claim', ARGV[token])
    local attempts = redis.call('HINCRBY', job_key, 'attempts', 1)
    table.insert(claimed, id)
    table.insert(claimed, payload)
    table.insert(claimed, attempts)
    token = token + 1
  end
end
return claimed
"""

EXTEND = """
-- KEYS: inflight, job   ARGV: id, claim_token, deadline_ms
if redis.call('HGET', KEYS[2], 'claim') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[3]), ARGV[1])
return 1
"""

PUBLISH_OUTPUT_BODY = """
-- KEYS: job, channel, held   ARGV: claim_token, batch
-- returns 1 published (or held until paid), 0 lease lost, 2 cancelled (or refused)
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'cancelled') == '1' then return 2 end
redis.call('HSET', KEYS[1], 'sent', '1')
if redis.call('HGET', KEYS[1], 'unpaid') == '1' then
  hold(KEYS[1], KEYS[3], ARGV[2])
  return 1
end
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
"""

RELEASE_BODY = """
-- KEYS: job, held, channel, settlements, refund bell
-- The job's credits are reserved: what it held goes out, in order, and from now on its
-- output is published as it comes. Returns 0 when the job is gone (its hash expired).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'unpaid')
for _, batch in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  redis.call('PUBLISH', KEYS[3], batch)
end
redis.call('DEL', KEYS[2])
local settlement = redis.call('HGET', KEYS[1], 'settlement')
if settlement then
  settle(KEYS[4], KEYS[5], settlement)
  redis.call('DEL', KEYS[1])
end
return 1
"""

REFUSE_BODY = """
-- KEYS: queue, job, held, cancels   ARGV: id
-- The job's credits could not be reserved: it is dropped with nothing delivered or
-- settled. Returns 1 dropped (waiting, or ended already), 2 its dispatcher is told to
-- stop (it ends it with nothing to settle), 0 gone.
redis.call('DEL', KEYS[3])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  left_queue(KEYS[2])
  redis.call('DEL', KEYS[2])
  return 1
end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], 'settlement') == 1 then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('HSET', KEYS[2], 'refused', '1', 'cancelled', '1')
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 2
"""

FINISH_BODY = """
-- KEYS: inflight, job, channel, settlements, wake, queue, held, refund bell
-- ARGV: id, claim_token, batch, settlement, served-per-second key prefix
-- returns 1 finished, 0 the lease was lost or the job was refused (nothing to settle)
if redis.call('HGET', KEYS[2], 'claim') ~= ARGV[2] then return 0 end
local refused = redis.call('HGET', KEYS[2], 'refused') == '1'
redis.call('ZREM', KEYS[1], ARGV[1])
if not end_unpaid(KEYS[2], KEYS[7], ARGV[3], ARGV[4]) then
  redis.call('DEL', KEYS[2])
  settle(KEYS[4], KEYS[8], ARGV[4])
  redis.call('PUBLISH', KEYS[3], ARGV[3])
end
-- The freed slot is news only to a job waiting for one (an enqueue wakes for its own).
if redis.call('ZCARD', KEYS[6]) > 0 then
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 63)
end
-- Jobs finished per second (the observed service rate that Retry-After is computed from).
local second = ARGV[5] .. redis.call('TIME')[1]
redis.call('INCR', second)
redis.call('EXPIRE', second, 120)
if refused then return 0 end
return 1
"""

EXPIRE_WAITING_BODY = """
-- KEYS: queue, job, settlements, refund bell   ARGV: id, settlement
-- Ends a job that waited too long, if it is still waiting: 1 ended, 0 it has started.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
left_queue(KEYS[2])
redis.call('DEL', KEYS[2])
settle(KEYS[3], KEYS[4], ARGV[2])
return 1
"""

ACCOUNT_SLOT = (
    _NOW_MS
    + """
-- KEYS: the account's running set   ARGV: cap, job id, ttl_ms
-- A per-account concurrency cap. Entries expire, so a crashed api leaks no slot.
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
)

CANCEL_BODY = """
-- KEYS: queue, job, settlements, cancels, refund bell   ARGV: id, settlement
-- returns 1 removed from the queue (settled here), 2 signalled to its dispatcher, 0 gone
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  left_queue(KEYS[2])
  redis.call('DEL', KEYS[2])
  settle(KEYS[3], KEYS[5], ARGV[2])
  return 1
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'cancelled', '1')
  redis.call('PUBLISH', KEYS[4], ARGV[1])
  return 2
end
return 0
"""

REAP_BODY = """
-- KEYS: inflight, queue, job, channel, settlements, wake, held, refund bell
-- ARGV: id, now_ms, failed_batch, settlement, max_attempts
-- returns 0 not expired, 1 re-queued, 2 failed and settled
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local sent = redis.call('HGET', KEYS[3], 'sent') == '1'
local cancelled = redis.call('HGET', KEYS[3], 'cancelled') == '1'
local attempts = tonumber(redis.call('HGET', KEYS[3], 'attempts') or '0')
if sent or cancelled or attempts >= tonumber(ARGV[5]) then
  if not end_unpaid(KEYS[3], KEYS[7], ARGV[3], ARGV[4]) then
    redis.call('DEL', KEYS[3])
    settle(KEYS[5], KEYS[8], ARGV[4])
    redis.call('PUBLISH', KEYS[4], ARGV[3])
  end
  return 2
end
redis.call('HDEL', KEYS[3], 'claim')
local waiting_key = redis.call('HGET', KEYS[3], 'waiting')
if waiting_key then redis.call('INCR', waiting_key) end
redis.call('ZADD', KEYS[2], tonumber(redis.call('HGET', KEYS[3], 'score')), ARGV[1])
redis.call('LPUSH', KEYS[6], '1')
redis.call('LTRIM', KEYS[6], 0, 63)
return 1
"""

_SLIDING_WINDOW = """
-- A true sliding window: the zset holds the admission times of the last window_ms.
-- Redis's own clock, so every api process agrees. Returns {allowed, remaining, reset_ms}.
local function sliding_window(key, limit, window, member, consume)
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local function reset_ms()
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #oldest == 0 then return 0 end
    return math.max(0, tonumber(oldest[2]) + window - now)
  end
  if count >= limit then
    return {0, 0, reset_ms()}
  end
  if consume then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
    count = count + 1
  end
  return {1, limit - count, reset_ms()}
end
"""

SLIDING_WINDOW = (
    _NOW_MS
    + _SLIDING_WINDOW
    + """
-- KEYS: window zset   ARGV: limit, window_ms, member, consume (1|0)
return sliding_window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4] == '1')
"""
)

BUDGET_TAKE = """
-- KEYS: day counter   ARGV: cap, ttl_s
-- returns the new count, -1 when the cap is reached, -2 when the counter must be
-- restored from the database first (Redis lost it)
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local used = tonumber(redis.call('GET', KEYS[1]))
if used >= tonumber(ARGV[1]) then return -1 end
return redis.call('INCR', KEYS[1])
"""

BUDGET_RESTORE = """
-- KEYS: day counter   ARGV: persisted count, ttl_s
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2])) then return 1 end
-- Someone restored or counted meanwhile: keep the larger of the two.
local used = tonumber(redis.call('GET', KEYS[1]))
if tonumber(ARGV[1]) > used then redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') end
return 0
"""

BUDGET_GIVE_BACK = """
-- KEYS: day counter
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local used = tonumber(redis.call('GET', KEYS[1]))
if used <= 0 then return 0 end
return redis.call('DECR', KEYS[1])
"""

_FAIR_SCORE = """
-- Fair queuing within a tier: a job is scored `enqueued + k * share`, where k is how many
-- of its account's jobs are already waiting in this pool, so a flooding account
-- interleaves with the others instead of going first with everything; its own jobs
-- stay in order. k counts waiting jobs only (see _LEFT_QUEUE), so an account whose jobs
-- are served at once is never pushed back. The tier's head start is taken off.
local function fair_score(waiting_key, last_key, enqueued, offset, share)
  local k = math.max(0, tonumber(redis.call('GET', waiting_key) or '0'))
  redis.call('INCR', waiting_key)
  redis.call('PEXPIRE', waiting_key, 86400000)
  local start = enqueued + k * share
  if k > 0 then start = math.max(start, tonumber(redis.call('GET', last_key) or '0') + 1) end
  redis.call('SET', last_key, start, 'PX', 86400000)
  return start - offset
end
"""

_LEFT_QUEUE = """
-- A job left the queue (claimed, cancelled, expired): its account has one waiter less.
local function left_queue(job_key)
  local waiting_key = redis.call('HGET', job_key, 'waiting')
  if waiting_key and redis.call('DECR', waiting_key) <= 0 then redis.call('DEL', waiting_key) end
end
"""

_HAND_OFF = """
-- A dispatcher waits for work (registered by its last claim, see CLAIM), the pool has a
-- free slot and nothing queued ahead: the job is claimed here, as CLAIM would, and
-- pushed on the pool's handoff list, which waiting dispatchers pop before their wake
-- list. The dispatcher that pops it owns it; one round trip (its own claim) less before
-- the upstream request. The lease is the dispatchers' announced one, so a job handed to
-- a dispatcher that died meanwhile is re-queued by the reaper, as any expired claim.
-- Returns true when handed off (the caller then does not queue it).
local function hand_off(h, id, job_key, payload, score, waiting)
  if redis.call('ZCARD', h.queue) > 0 then return false end
  local slots = tonumber(redis.call('GET', h.slots) or '0')
  if redis.call('ZCARD', h.inflight) >= slots then return false end
  local lease = tonumber(redis.call('GET', h.lease) or '0')
  if lease <= 0 then return false end
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', h.listeners, '-inf', now)
  if redis.call('ZCARD', h.listeners) == 0 then return false end
  local token = 'handoff:' .. id
  local deadline = now + lease
  redis.call('HSET', job_key, 'payload', payload, 'score', score, 'waiting', waiting,
    'claim', token, 'attempts', 1)
  redis.call('ZADD', h.inflight, deadline, id)
  redis.call('RPUSH', h.handoff, token .. ' ' .. deadline .. ' ' .. payload)
  redis.call('PEXPIRE', h.handoff, lease)
  return true
end
"""

_ENQUEUE_JOB = """
-- K: queue, job, wake, account's last score, account's waiting count,
--    inflight, slots, lease, listeners, handoff
-- A: id, payload, enqueued_ms, tier offset, share_ms, job ttl_s, unpaid (1|0)
-- Queues the job, or hands it to a waiting dispatcher; returns its score.
local function enqueue_job(K, A)
  if A[7] == '1' then redis.call('HSET', K[2], 'unpaid', '1') end
  local h = {queue = K[1], inflight = K[6], slots = K[7], lease = K[8],
    listeners = K[9], handoff = K[10]}
  local offset = tonumber(A[4])
  if hand_off(h, A[1], K[2], A[2], tonumber(A[3]) - offset, K[5]) then
    redis.call('EXPIRE', K[2], tonumber(A[6]))
    return tonumber(A[3]) - offset
  end
  local score = fair_score(K[5], K[4], tonumber(A[3]), offset, tonumber(A[5]))
  redis.call('HSET', K[2], 'payload', A[2], 'score', score, 'waiting', K[5])
  redis.call('EXPIRE', K[2], tonumber(A[6]))
  redis.call('ZADD', K[1], score, A[1])
  redis.call('LPUSH', K[3], '1')
  redis.call('LTRIM', K[3], 0, 63)
  return score
end
"""

ENQUEUE = (
    _NOW_MS
    + _FAIR_SCORE
    + _HAND_OFF
    + _ENQUEUE_JOB
    + """
-- KEYS and ARGV: as enqueue_job's K and A
return enqueue_job(KEYS, ARGV)
"""
)

_WAITING_FOR_SLOT = """
-- Jobs waiting for a slot: the queued ones beyond the pool's free slots. A job that
-- a free slot is about to take is not backlog, whatever ZCARD says.
local function waiting_for_slot(queue, inflight, slots_key)
  local slots = tonumber(redis.call('GET', slots_key) or '0')
  local free = math.max(0, slots - redis.call('ZCARD', inflight))
  return math.max(0, redis.call('ZCARD', queue) - free)
end
"""

BACKLOG = (
    _WAITING_FOR_SLOT
    + """
-- KEYS: queue, inflight, slots
return waiting_for_slot(KEYS[1], KEYS[2], KEYS[3])
"""
)

ROUTE_AND_ENQUEUE = (
    _NOW_MS
    + _FAIR_SCORE
    + _WAITING_FOR_SLOT
    + _HAND_OFF
    + _ENQUEUE_JOB
    + """
-- KEYS: local queue, cloud queue, job, budget counter, local wake, cloud wake,
--       account's last local score, account's last cloud score, local inflight,
--       local slots, account's local waiting count, account's cloud waiting count,
--       cloud inflight, cloud slots, then lease, listeners, handoff of local and cloud
-- ARGV: job id, local payload, cloud payload, enqueued_ms, tier offset, share_ms,
--       backlog threshold, budget cap, failover allowed (1|0), job ttl_s, local queue cap,
--       unpaid (1|0)
-- Decides local or cloud, takes the budget unit and enqueues in one step, so a
-- burst can overshoot neither the backlog threshold nor the cap.
-- returns {pool, budget count or 0, backlog}; pool 'restore' when the counter is missing,
-- 'full' when the job would wait locally in a queue already at its cap
local backlog = waiting_for_slot(KEYS[1], KEYS[9], KEYS[10])
local pool, payload, count = 'local', ARGV[2], 0
-- This request would be waiter number backlog + 1: past the threshold it overflows.
if ARGV[9] == '1' and backlog + 1 > tonumber(ARGV[7]) then
  if redis.call('EXISTS', KEYS[4]) == 0 then return {'restore', 0, backlog} end
  local used = tonumber(redis.call('GET', KEYS[4]))
  if used < tonumber(ARGV[8]) then
    count = redis.call('INCR', KEYS[4])
    pool, payload = 'cloud', ARGV[3]
  end
end
local cloud = pool == 'cloud'
local queue = cloud and KEYS[2] or KEYS[1]
-- A full local queue refuses what it cannot overflow (the cloud was no option).
if not cloud and redis.call('ZCARD', queue) >= tonumber(ARGV[11]) then
  return {'full', 0, backlog}
end
-- The chosen pool's keys, in enqueue_job's K order.
local K = cloud
  and {queue, KEYS[3], KEYS[6], KEYS[8], KEYS[12], KEYS[13], KEYS[14], KEYS[18], KEYS[19],
    KEYS[20]}
  or {queue, KEYS[3], KEYS[5], KEYS[7], KEYS[11], KEYS[9], KEYS[10], KEYS[15], KEYS[16],
    KEYS[17]}
enqueue_job(K, {ARGV[1], payload, ARGV[4], ARGV[5], ARGV[6], ARGV[10], ARGV[12]})
return {pool, count, backlog}
"""
)


CLAIM = _LEFT_QUEUE + CLAIM_BODY
CANCEL = _LEFT_QUEUE + _SETTLE + CANCEL_BODY
EXPIRE_WAITING = _LEFT_QUEUE + _SETTLE + EXPIRE_WAITING_BODY
REFUSE = _LEFT_QUEUE + REFUSE_BODY
PUBLISH_OUTPUT = _HOLD + PUBLISH_OUTPUT_BODY
FINISH = _HOLD + _SETTLE + FINISH_BODY
REAP = _HOLD + _SETTLE + REAP_BODY
RELEASE = _SETTLE + RELEASE_BODY
# KEYS: settlements, refund bell   ARGV: settlement (one not written by the scripts above)
SETTLE = _SETTLE + "settle(KEYS[1], KEYS[2], ARGV[1])"

_ADMIT = """
-- The check of the key entry the request was judged on ('' when it was read just now;
-- a revoked key must fail on its next request), then the account's rate limit
-- (counting this request if allowed). Returns {allowed, remaining, reset_ms}, and
-- {-1, 0, 0} with nothing counted when the entry is gone or changed.
local function admit(window, entry, limit, window_ms, member, judged_on)
  if judged_on ~= '' and redis.call('GET', entry) ~= judged_on then return {-1, 0, 0} end
  if tonumber(limit) > 0 then
    return sliding_window(window, tonumber(limit), tonumber(window_ms), member, true)
  end
  return {1, 0, 0}
end
"""

ADMIT = (
    _NOW_MS
    + _SLIDING_WINDOW
    + _WAITING_FOR_SLOT
    + _ADMIT
    + """
-- KEYS: rate window, the key's cached auth entry, queue, inflight, slots
-- ARGV: limit (0: none), window_ms, member, the auth entry the request was judged on,
--       load ('backlog' | 'queued')
-- The admission and the pool's load, read together: returns {allowed, remaining,
-- reset_ms, load} ({-1, 0, 0, 0} for a changed entry).
local decision = admit(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if decision[1] == -1 then return {-1, 0, 0, 0} end
local load
if ARGV[5] == 'backlog' then
  load = waiting_for_slot(KEYS[3], KEYS[4], KEYS[5])
else
  load = redis.call('ZCARD', KEYS[3])
end
return {decision[1], decision[2], decision[3], load}
"""
)

ADMIT_AND_ENQUEUE = (
    _NOW_MS
    + _SLIDING_WINDOW
    + _WAITING_FOR_SLOT
    + _ADMIT
    + _FAIR_SCORE
    + _HAND_OFF
    + _ENQUEUE_JOB
    + """
-- KEYS: rate window, the key's cached auth entry, then enqueue_job's K (queue first)
-- ARGV: limit (0: none), window_ms, member, the auth entry the request was judged on,
--       near threshold ('' for none), queue cap, then enqueue_job's A
-- A local request's admission and its enqueue in one step. Returns {allowed, remaining,
-- reset_ms, outcome, load}: outcome 'enqueued'; 'refused' (see admit: nothing else
-- done); 'near' when the pool's backlog (load) is within one waiter of the threshold
-- (admitted, not enqueued: the caller places it as one that may overflow); 'full' when
-- the queue (load jobs) is at its cap (admitted, not enqueued).
local decision = admit(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if decision[1] ~= 1 then return {decision[1], decision[2], decision[3], 'refused', 0} end
local K = {unpack(KEYS, 3, 12)}
local A = {unpack(ARGV, 7, 13)}
if ARGV[5] ~= '' then
  local backlog = waiting_for_slot(K[1], K[6], K[7])
  if backlog + 2 > tonumber(ARGV[5]) then
    return {decision[1], decision[2], decision[3], 'near', backlog}
  end
end
local queued = redis.call('ZCARD', K[1])
if queued >= tonumber(ARGV[6]) then
  return {decision[1], decision[2], decision[3], 'full', queued}
end
enqueue_job(K, A)
return {decision[1], decision[2], decision[3], 'enqueued', 0}
"""
)
