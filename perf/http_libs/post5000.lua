-- wrk script: every request is POST /write with 5,000 InfluxDB line-protocol
-- lines (about 70 bytes each, distinct timestamps), Content-Type text/plain.
--   wrk -t1 -c4 -d10s -s post5000.lua http://127.0.0.1:PORT/write
-- done() prints one "RESULT ..." line that run.sh reads.

local LINES = 5000

local function make_body()
  local t = {}
  for i = 0, LINES - 1 do
    -- 1700000000000000000 + i, written as text (Lua numbers are doubles)
    t[#t + 1] = string.format(
      "cpu,host=host%04d,region=r%d usage=%d.%03d,idle=%di 17000000000%08d\n",
      i % 1000, i % 4, i % 100, (i * 37) % 1000, 90 + i % 10, i)
  end
  return table.concat(t)
end

wrk.method = "POST"
wrk.body = make_body()
wrk.headers["Content-Type"] = "text/plain"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d bytes_per_req=%d lines_per_req=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d " ..
    "p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, #wrk.body, LINES,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
