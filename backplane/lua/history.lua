-- Herald: read a channel's position and messages in one atomic step (docs/backplane.md, "Redis implementation").
-- Like publish.lua it creates the epoch on first touch and prunes by count and age first, so epoch, top, oldest
-- and the messages returned describe one moment.
-- Returns {epoch, top, oldest, entries}; entries as XRANGE returns them, oldest first.
local meta_key = KEYS[1]         -- hash {epoch, top}
local history_key = KEYS[2]      -- stream; entry ID "<serial>-0", fields t, p, d

local new_epoch = ARGV[1]        -- taken only when the channel has no epoch
local first_id = ARGV[2]         -- '': from the oldest held; else the first entry ID wanted, "<since + 1>-0"
local limit = ARGV[3]            -- '': no limit; '0': only epoch, top and oldest
local newest = ARGV[4] == '1'    -- without first_id: the newest `limit` entries
local max_messages = ARGV[5]
local ttl_ms = tonumber(ARGV[6])
local lineage_ttl_ms = ARGV[7]

local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- Drops the expired prefix of the history: an entry has expired once now >= t + ttl. (Same as in publish.lua.)
local function prune_by_age()
    local cutoff = now_ms - ttl_ms
    local count = 1
    while true do
        local batch = redis.call('XRANGE', history_key, '-', '+', 'COUNT', count)
        if #batch == 0 then return end
        for index, entry in ipairs(batch) do
            if tonumber(entry[2][2]) > cutoff then
                if count > 1 or index > 1 then redis.call('XTRIM', history_key, 'MINID', entry[1]) end
                return
            end
        end
        local last = batch[#batch][1]
        redis.call('XTRIM', history_key, 'MINID', string.sub(last, 1, -2) .. '1')
        count = 64
    end
end

local epoch = redis.call('HGET', meta_key, 'epoch')
if not epoch then
    epoch = new_epoch
    redis.call('DEL', history_key)
    redis.call('HSET', meta_key, 'epoch', epoch, 'top', 0)
end
redis.call('PEXPIRE', meta_key, lineage_ttl_ms)

redis.call('XTRIM', history_key, 'MAXLEN', max_messages)
prune_by_age()

local top = tonumber(redis.call('HGET', meta_key, 'top'))
local oldest = top + 1
local first = redis.call('XRANGE', history_key, '-', '+', 'COUNT', 1)
if #first > 0 then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end

local entries = {}
if limit ~= '0' then
    if first_id ~= '' then
        if limit == '' then
            entries = redis.call('XRANGE', history_key, first_id, '+')
        else
            entries = redis.call('XRANGE', history_key, first_id, '+', 'COUNT', limit)
        end
    elseif newest and limit ~= '' then
        local reversed = redis.call('XREVRANGE', history_key, '+', '-', 'COUNT', limit)
        for index = #reversed, 1, -1 do entries[#entries + 1] = reversed[index] end
    elseif limit == '' then
        entries = redis.call('XRANGE', history_key, '-', '+')
    else
        entries = redis.call('XRANGE', history_key, '-', '+', 'COUNT', limit)
    end
end
return {epoch, top, oldest, entries}
