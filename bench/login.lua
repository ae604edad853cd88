-- POST /login with valid credentials. The CSRF cookie and a token for it
-- come from the environment (the token is reusable: it is masked, not
-- single-use), as do the username and password.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "csrftoken=" .. os.getenv("BENCH_CSRF_COOKIE")
wrk.body = "csrf_token=" .. os.getenv("BENCH_CSRF_TOKEN")
  .. "&username=" .. os.getenv("BENCH_USER") .. "&password=" .. os.getenv("BENCH_PASSWORD")
