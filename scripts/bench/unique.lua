-- wrk script: every request a distinct thumbor URL (the miss path).
-- Environment: PREFIX (thumbor path before the image, e.g. "/unsafe/300x200"),
-- ORIGIN (host:port of the image origin), SOURCES (space-separated file names).
-- Each URL carries a unique origin query string (percent-encoded, so it is part of the image URL):
-- neither Thumbora's cache nor thumbor can reuse a result, while the work stays the same.
local prefix = os.getenv("PREFIX") or "/unsafe/300x200"
local origin = os.getenv("ORIGIN") or "127.0.0.1:8000"
local sources = {}
for s in string.gmatch(os.getenv("SOURCES") or "2k_0.jpg", "%S+") do table.insert(sources, s) end
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id or 0
  math.randomseed(os.time() + thread_id)
  counter = math.random(1, 1000000000)
end

function request()
  counter = counter + 1
  local src = sources[(counter % #sources) + 1]
  local path = string.format("%s/%s/%s%%3Fv%%3D%d-%d", prefix, origin, src, thread_id, counter)
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  io.write(string.format("errors_non2xx=%d\n", summary.errors.status))
  io.write(string.format("errors_socket=%d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
