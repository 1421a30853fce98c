-- wrk script: GET /api/v1/customers/cN/current_usage?external_subscription_id=sN for random
-- N in 0..999, to measure read latency with a client that adds little of its own.
-- API key from TALLY_KEY. Non-200 answers are counted and printed at the end.
local failures = 0

function init(args)
  key = os.getenv("TALLY_KEY")
  math.randomseed(os.time())
end

function request()
  local n = math.random(0, 999)
  return wrk.format("GET", string.format("/api/v1/customers/c%d/current_usage?external_subscription_id=s%d", n, n),
    { ["Authorization"] = "Bearer " .. key })
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("current usage reads: %d, non-2xx %d, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
