-- wrk script for perf/http_bench/run.sh: POST /write with bodies of 5,000 line-protocol
-- lines read from the files gen_bodies.py wrote, sent in order and cycled.
--
--   wrk -t1 -cC -dD -s write5000.lua 'http://127.0.0.1:PORT/write?db=bench' -- BODY_DIR FIRST_PASS
--
-- Request n (counted from 0 in this wrk run) sends body n % POOL with the pass number
-- FIRST_PASS + n // POOL (mod 1000) written into the "@@@" of each of its timestamps,
-- so no (series, timestamp) repeats within 1000 passes over the pool. The requests are
-- kept as C buffers (LuaJIT FFI) and only those 3 x 5,000 bytes are rewritten per
-- request: a string.gsub over the body cost wrk about 3.6 ms of CPU per request,
-- this about 1.6 ms (most of it the allocation of the request string wrk copies).
-- done() prints one RESULT line for run.sh: completed requests, wrk's errors, answers
-- other than 2xx (and the first such status), requests generated (an upper bound on
-- what the server may have received: wrk drops the ones in flight when it stops).

local ffi = require("ffi")

local bufs, lens, offs, cnts, pool, pass0 = {}, {}, {}, {}, 0, 0
n, non2xx, bad_status = 0, 0, 0      -- per thread; done() reads them

function init(args)
  local dir = args[1]
  pass0 = tonumber(args[2] or "0")
  while true do
    local f = io.open(string.format("%s/body%03d.lp", dir, pool), "rb")
    if not f then break end
    local body = f:read("*a")
    f:close()
    local req = string.format("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n" ..
      "Content-Length: %d\r\n\r\n", wrk.path, wrk.host, #body) .. body
    local o, c, pos = {}, 0, 1
    while true do
      local s = string.find(req, "@@@", pos, true)
      if not s then break end
      o[c] = s - 1
      c = c + 1
      pos = s + 3
    end
    local oa = ffi.new("int32_t[?]", c)
    for j = 0, c - 1 do oa[j] = o[j] end
    local buf = ffi.new("uint8_t[?]", #req)
    ffi.copy(buf, req, #req)
    bufs[pool], lens[pool], offs[pool], cnts[pool] = buf, #req, oa, c
    pool = pool + 1
  end
  if pool == 0 then error("write5000.lua: no body files in " .. tostring(dir)) end
end

function request()
  local b = n % pool
  local p = (pass0 + math.floor(n / pool)) % 1000
  local d0, d1, d2 = 48 + math.floor(p / 100), 48 + math.floor(p / 10) % 10, 48 + p % 10
  local buf, oa = bufs[b], offs[b]
  for j = 0, cnts[b] - 1 do
    local o = oa[j]
    buf[o] = d0
    buf[o + 1] = d1
    buf[o + 2] = d2
  end
  n = n + 1
  return ffi.string(buf, lens[b])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if bad_status == 0 then bad_status = status end
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local gen, bad, first = 0, 0, 0
  for _, t in ipairs(threads) do
    gen = gen + t:get("n")
    bad = bad + t:get("non2xx")
    if first == 0 then first = t:get("bad_status") end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d err_connect=%d err_read=%d err_write=%d " ..
    "err_status=%d err_timeout=%d non2xx=%d first_bad_status=%d generated=%d " ..
    "p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, bad, first, gen, latency:percentile(50), latency:percentile(99),
    latency.max))
end
