-- bench_core.py, scenario "fetch": bob's device "bench" asks for messages after
-- his newest ids, so every answer has empty lists.
--   wrk ... -s bench/fetch.lua URL -- LAST_ID LAST_SENT_ID
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
   local last_id, last_sent_id = args[1], args[2]
   if last_id == nil or last_sent_id == nil then
      error("usage: wrk ... -s fetch.lua URL -- LAST_ID LAST_SENT_ID")
   end
   wrk.body = string.format(
      '{"username":"bob","password":"pw2","last_id":"%s","last_sent_id":"%s","device":"bench"}',
      last_id, last_sent_id)
end
