-- bench_core.py, scenario "send": alice sends one message to bob (on-net).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"alice","password":"pw1","to":"+12025550102","body":"bench message"}'
