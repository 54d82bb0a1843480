-- wrk script: POSTs request bodies read from files, rotating, with unique event ids.
-- Usage: wrk ... -s bench/post.lua URL -- BODY_PREFIX COUNT CONTENT_TYPE MAX_REQUESTS RUN_TAG [SUFFIX]
-- Each body file (BODY_PREFIX<i>SUFFIX, SUFFIX .json by default) holds "@ID@" where an event id
-- goes; every request gets fresh ids, so the exporter applies each event (its duplicate check
-- never fires). For binary bodies (SUFFIX .pb: OTLP protobuf, where the bytes of a trace id stand
-- in for "@ID@"), each "@ID@" becomes four bytes of their own instead (RUN_TAG "r<n>": n, then the
-- request's number), so the body keeps its length. Each thread stops itself after MAX_REQUESTS
-- requests; wrk's -d bounds the time.
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local bodies = {}
local sent = 0
local max_requests = 0
local run_tag = "run"
local binary = false

function init(args)
  local prefix, count = args[1], tonumber(args[2])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = args[3] or "application/json"
  max_requests = tonumber(args[4] or "1000000000")
  run_tag = args[5] or "run"
  local suffix = args[6] or ".json"
  binary = suffix == ".pb"
  for i = 0, count - 1 do
    local file = assert(io.open(prefix .. i .. suffix, "rb"))
    local text = file:read("*a")
    file:close()
    local pieces = {}
    for piece in (text .. "@ID@"):gmatch("(.-)@ID@") do
      table.insert(pieces, piece)
    end
    table.insert(bodies, pieces)
  end
end

function request()
  sent = sent + 1
  if sent > max_requests then
    wrk.thread:stop()
  end
  local pieces = bodies[(sent % #bodies) + 1]
  local parts = {}
  local tag = run_tag .. "-" .. id .. "-" .. sent .. "-"
  if binary then
    local run = tonumber(run_tag:match("%d+")) or 0
    tag = string.char(run % 256, math.floor(sent / 65536) % 256, math.floor(sent / 256) % 256, sent % 256)
  end
  for i = 1, #pieces - 1 do
    parts[#parts + 1] = pieces[i]
    parts[#parts + 1] = binary and tag or (tag .. i)
  end
  parts[#parts + 1] = pieces[#pieces]
  return wrk.format(nil, nil, nil, table.concat(parts))
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
