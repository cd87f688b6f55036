-- bench_engines.py: send.lua's send, wrk's threads spread over adapter processes:
-- BENCH_PORTS=8081,8082 sends thread i to the i-th port, round robin; done()
-- prints each port's answers. BENCH_SENDERS=N (> 1; BENCH_THREADS: wrk's thread
-- count) sends from sender1..N to receiver1..N (+12025553001, ...) instead, each
-- thread from its own starting point, so concurrent sends touch different accounts.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"alice","password":"pw1","to":"+12025550102","body":"bench message"}'

local senders = tonumber(os.getenv("BENCH_SENDERS") or "") or 1
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "") or 2

local ports = {}
for port in string.gmatch(os.getenv("BENCH_PORTS") or "", "%d+") do
   ports[#ports + 1] = port
end
local threads = {}

function setup(thread)
   local port = wrk.port
   if #ports > 0 then
      port = ports[#threads % #ports + 1]
      thread.addr = wrk.lookup(wrk.host, port)[1]
   end
   thread:set("port", port)
   thread:set("index", #threads)
   threads[#threads + 1] = thread
end

if senders > 1 then
   local pair = nil

   function request()
      if pair == nil then  -- index is set by setup() before the thread starts
         pair = math.floor(index * senders / thread_count)
      end
      pair = pair % senders + 1
      return wrk.format(nil, nil, nil, string.format(
         '{"username":"sender%d","password":"pw1","to":"+1202555%04d","body":"bench message"}',
         pair, 3000 + pair))
   end
end

-- Per thread (each has its own Lua state); read by done() through thread:get.
answers, bad = 0, 0

function response(status, headers, body)
   answers = answers + 1
   if status < 200 or status > 299 then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("port %s: %d answers, %d not 2xx\n",
                             thread:get("port"), thread:get("answers"), thread:get("bad")))
   end
end
