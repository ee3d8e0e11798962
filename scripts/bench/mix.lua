-- wrk script: 80% hits on 20 hot URLs, 20% distinct misses. Environment as unique.lua, plus HOT.
local prefix = os.getenv("PREFIX") or "/unsafe/300x200"
local origin = os.getenv("ORIGIN") or "127.0.0.1:8000"
local sources = {}
for s in string.gmatch(os.getenv("SOURCES") or "2k_0.jpg", "%S+") do table.insert(sources, s) end
local hot = {}
for s in string.gmatch(os.getenv("HOT") or "/", "%S+") do table.insert(hot, s) end
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  thread_id = id or 0
  math.randomseed(os.time() + 7 * thread_id)
  counter = math.random(1, 1000000000)
end
function request()
  counter = counter + 1
  if counter % 5 == 0 then
    local src = sources[(counter % #sources) + 1]
    return wrk.format("GET", string.format("%s/%s/%s%%3Fm%%3D%d-%d", prefix, origin, src, thread_id, counter))
  end
  return wrk.format("GET", hot[(counter % #hot) + 1])
end
function done(summary, latency, requests)
  io.write(string.format("errors_non2xx=%d\n", summary.errors.status))
  io.write(string.format("errors_socket=%d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
