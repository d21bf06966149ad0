-- wrk: every request is a POST of the prime check's JSON body; RACETRACK_TOKEN, when set, is
-- sent as X-Racetrack-Auth (calls through Pub).
wrk.method = "POST"
wrk.body = '{"number": 7907}'
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("RACETRACK_TOKEN")
if token and token ~= "" then
  wrk.headers["X-Racetrack-Auth"] = token
end
