-- wrk script: POST /api/v1/events/batch with 100 events a request, every transaction id
-- unique, spread over 1000 subscriptions (s0..s999), properties like an LLM request.
-- API key from TALLY_KEY; TALLY_RUN makes ids unique across runs; TALLY_TIMESTAMP (Unix
-- seconds), if set, is every event's timestamp (bench/startup.sh sends a past period so).
-- TALLY_BATCH_SUBSCRIPTION=1 makes every batch one subscription's (as a customer's own
-- application sends them), cycling through the 1000.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  key = os.getenv("TALLY_KEY")
  run = os.getenv("TALLY_RUN") or "r"
  local ts = os.getenv("TALLY_TIMESTAMP")
  stamp = ts and ('"timestamp":' .. ts .. ',') or ""
  per_batch = os.getenv("TALLY_BATCH_SUBSCRIPTION") == "1"
  batches = 0
end

function request()
  local parts = {}
  batches = batches + 1
  for i = 1, 100 do
    counter = counter + 1
    local sub = per_batch and (batches * 2 + thread_id) % 1000 or counter % 1000
    parts[i] = string.format(
      '{"transaction_id":"%s-%d-%d","external_subscription_id":"s%d","code":"tokens",%s' ..
      '"properties":{"tokens":%d,"model":"large","kind":"output"}}',
      run, thread_id, counter, sub, stamp, 100 + counter % 4000)
  end
  return wrk.format("POST", "/api/v1/events/batch", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, '{"events":[' .. table.concat(parts, ",") .. ']}')
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. ": " .. string.sub(body, 1, 200) .. "\n")
  end
end
