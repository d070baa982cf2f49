-- wrk's script for the bench's comparison (xtask/src/bench/seed.rs): every request asks
-- for a random seeded order (1000-9999: every one of the 1000 users behind them), and the
-- summary is printed as one JSON line for the bench to read.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  -- Each thread its own sequence.
  math.randomseed(os.time() * 100 + id)
end

function request()
  return wrk.format("GET", "/orders/" .. math.random(1000, 9999))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
      '"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
