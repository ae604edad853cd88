-- POST /login with valid credentials. The CSRF cookie and a token for it
-- come from the environment (the token is reusable: it is masked, not
-- single-use), as do the password and the users: BENCH_USERS accounts named
-- BENCH_USER0, BENCH_USER1, ..., taken in turn. One account per request in
-- flight keeps the login throttle (five attempts in flight per username and
-- address) out of the measurement.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "csrftoken=" .. os.getenv("BENCH_CSRF_COOKIE")

local users = tonumber(os.getenv("BENCH_USERS") or "1")
local prefix = "csrf_token=" .. os.getenv("BENCH_CSRF_TOKEN")
  .. "&password=" .. os.getenv("BENCH_PASSWORD") .. "&username=" .. os.getenv("BENCH_USER")
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. (counter % users))
end
