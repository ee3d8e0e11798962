-- wrk script: a small set of hot URLs (the hit path). HOT: space-separated paths.
local hot = {}
for s in string.gmatch(os.getenv("HOT") or "/", "%S+") do table.insert(hot, s) end
local i = 0
function request()
  i = i + 1
  return wrk.format("GET", hot[(i % #hot) + 1])
end
function done(summary, latency, requests)
  io.write(string.format("errors_non2xx=%d\n", summary.errors.status))
  io.write(string.format("errors_socket=%d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
