-- bench_carriers.py: alice sends to numbers outside the service, cycling through
-- COUNT recipients +13125550100, +13125550101, ... (one conversation each). With
-- PAUSE (ms) each connection waits that long before each request: a steady offered
-- load of about connections x 1000 / PAUSE sends/s.
--   wrk ... -s bench/send_offnet.lua URL -- COUNT [PAUSE]
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local count, sent, pause = 1, 0, 0

function init(args)
   count = tonumber(args[1] or "1")
   pause = tonumber(args[2] or "0")
end

function delay()
   return pause
end

function request()
   local to = string.format("+1312555%04d", 100 + sent % count)
   sent = sent + 1
   return wrk.format(nil, nil, nil, string.format(
      '{"username":"alice","password":"pw1","to":"%s","body":"bench message"}', to))
end
