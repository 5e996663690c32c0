-- Herald: publish one message to a channel in one atomic step (docs/backplane.md, "Redis implementation").
-- Creates the channel's epoch if it is missing, answers a key already used with its first serial, else assigns the
-- next serial, appends to the bounded history, records the idempotency key and PUBLISHes the pre-encoded message.
-- Redis runs one script at a time, so serial order, history order and PUBLISH order are one order.
-- Returns {epoch, serial, duplicate (0|1)}.
local meta_key = KEYS[1]         -- hash {epoch, top}: the channel's lineage
local history_key = KEYS[2]      -- stream; entry ID "<serial>-0", fields t (store ms), p (published_at_us), d (data)
local idempotency_key = KEYS[3]  -- string "<serial> <epoch>"; nil when the publish carries no key

local new_epoch = ARGV[1]        -- taken only when the channel has no epoch
local data = ARGV[2]
local published_at_us = ARGV[3]
local max_messages = ARGV[4]
local ttl_text = ARGV[5]         -- passed on as text: Redis formats big Lua numbers with an exponent
local ttl_ms = tonumber(ttl_text)
local lineage_ttl_ms = ARGV[6]
local pubsub_channel = ARGV[7]

-- The server's clock, so every node prunes by the same time.
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- Drops the expired prefix of the history: an entry has expired once now >= t + ttl. Entries are in store order.
-- (The same function is in history.lua; scripts cannot share code.)
local function prune_by_age()
    local cutoff = now_ms - ttl_ms
    local count = 1  -- usually the oldest entry is still fresh: look at it alone first
    while true do
        local batch = redis.call('XRANGE', history_key, '-', '+', 'COUNT', count)
        if #batch == 0 then return end
        for index, entry in ipairs(batch) do
            if tonumber(entry[2][2]) > cutoff then
                if count > 1 or index > 1 then redis.call('XTRIM', history_key, 'MINID', entry[1]) end
                return
            end
        end
        -- The whole batch has expired: trim through its last entry ("<serial>-0" < "<serial>-1").
        local last = batch[#batch][1]
        redis.call('XTRIM', history_key, 'MINID', string.sub(last, 1, -2) .. '1')
        count = 64
    end
end

local epoch = redis.call('HGET', meta_key, 'epoch')
if not epoch then
    -- First touch, or the lineage is gone (flushed, restarted without persistence, expired): a new epoch, serials
    -- restart at 1, and history left from an earlier epoch is not part of it.
    epoch = new_epoch
    redis.call('DEL', history_key)
    redis.call('HSET', meta_key, 'epoch', epoch, 'top', 0)
end
redis.call('PEXPIRE', meta_key, lineage_ttl_ms)

if idempotency_key then
    -- A key recorded under an earlier epoch names a serial of a lost lineage: not a duplicate.
    local recorded = redis.call('GET', idempotency_key)
    if recorded then
        local space = string.find(recorded, ' ', 1, true)
        if space and string.sub(recorded, space + 1) == epoch then
            return {epoch, tonumber(string.sub(recorded, 1, space - 1)), 1}
        end
    end
end

local serial = string.format('%d', redis.call('HINCRBY', meta_key, 'top', 1))
redis.call('XADD', history_key, 'MAXLEN', max_messages, serial .. '-0',
           't', string.format('%d', now_ms), 'p', published_at_us, 'd', data)
prune_by_age()
if ttl_ms > 0 then
    redis.call('PEXPIRE', history_key, ttl_text)
    if idempotency_key then
        redis.call('SET', idempotency_key, serial .. ' ' .. epoch, 'PX', ttl_text)
    end
else
    redis.call('DEL', history_key)  -- a ttl of 0 keeps nothing
end

redis.call('PUBLISH', pubsub_channel, epoch .. '\n' .. serial .. '\n' .. published_at_us .. '\n' .. data)
return {epoch, tonumber(serial), 0}
