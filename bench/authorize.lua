-- wrk script: POST /api/v1/authorizations for random subscriptions s0..s999 (a hold of 100
-- tokens that expires in a minute), to measure authorization latency while events ingest.
-- API key from TALLY_KEY. Prints rate and latency percentiles at the end.
function init(args)
  key = os.getenv("TALLY_KEY")
  math.randomseed(os.time())
end

function request()
  local n = math.random(0, 999)
  return wrk.format("POST", "/api/v1/authorizations", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, string.format('{"authorization":{"external_subscription_id":"s%d","code":"tokens",' ..
    '"properties":{"tokens":100},"expires_in":60}}', n))
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"authorized"', 1, true) then
    io.stderr:write("unexpected answer " .. status .. ": " .. string.sub(body, 1, 200) .. "\n")
  end
end

function done(summary, latency, requests)
  io.write(string.format("authorizations: %d in %.1f s (%.0f/s), non-2xx %d, mean %.2f ms, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.status, latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
