-- bench_carriers.py: alice, whose number routes to a carrier, sends to numbers
-- outside the service, cycling through COUNT recipients +13125550100,
-- +13125550101, ... (one conversation each; each wrk thread cycles on its own).
-- With PAUSE (milliseconds), each connection waits that long before each
-- request: a steady offered load of about connections x 1000 / PAUSE sends/s
-- instead of as many as the server can take.
--   wrk ... -s bench/send_offnet.lua URL -- COUNT [PAUSE]
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local count, sent, pause = 1, 0, 0

function init(args)
   count = tonumber(args[1] or "1")
   pause = tonumber(args[2] or "0")
   if count == nil or count < 1 or count > 9000 or pause == nil or pause < 0 then
      error("usage: wrk ... -s send_offnet.lua URL -- COUNT (1-9000) [PAUSE ms]")
   end
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
