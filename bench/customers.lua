-- wrk script: POST /api/v1/customers with a unique external_id per request, so every
-- request is a durable insert (no upsert shortcut). API key from the TALLY_KEY env var.
local counter = 0
local threads = {}

-- thread_id is set per thread by setup() (a global in that thread's Lua state).
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  key = os.getenv("TALLY_KEY")
  run = os.getenv("TALLY_RUN") or "r"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"customer":{"external_id":"%s-%d-%d","name":"Bench customer","currency":"EUR",' ..
    '"timezone":"Europe/Paris","country":"FR","email":"bench@example.com"}}',
    run, thread_id, counter)
  return wrk.format("POST", "/api/v1/customers", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
