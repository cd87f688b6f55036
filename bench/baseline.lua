-- bench_core.py, scenario "baseline": the same JSON body as "send", posted to
-- bench/baseline_app.py, which reads it and answers a small JSON object.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"alice","password":"pw1","to":"+12025550102","body":"bench message"}'
