-- wrk sends GET by default and has no flag for a body; the body comes from
-- the environment so one script serves every POST benchmark.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
