-- bench_core.py "send" and "baseline", bench_engines.py: alice sends to bob (on-net).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"alice","password":"pw1","to":"+12025550102","body":"bench message"}'
