-- wrk: every request is a POST with the same small JSON body.
wrk.method = "POST"
wrk.body = '{"name": "bench"}'
wrk.headers["Content-Type"] = "application/json"
