-- wrk script: send requests prepared by bench/load.py, each once (or over and over).
--
--   wrk -t T -c C -s bench/replay.lua URL -- FILE EXPECTED_STATUS once|cycle T
--
-- FILE has one request per line: METHOD, PATH, HEADERS and BODY separated by tabs, the headers
-- as "Name: value" separated by the unit separator (\31). Line i goes to thread i mod T. In
-- "once" mode a thread that has sent all its lines asks for /bench/exhausted instead and counts
-- it: the run then fails, saying that more requests must be prepared (a request spends an
-- Idempotency-Key or a webhook id, so sending it twice would measure a replay).

local threads = {}

function setup(thread)
   thread:set("index", #threads)
   table.insert(threads, thread)
end

function init(args)
   expected = tonumber(args[2])
   cycle = args[3] == "cycle"
   local count = tonumber(args[4])
   prepared, sent, exhausted, unexpected, first_unexpected = {}, 0, 0, 0, ""
   local line_number = 0
   for line in io.lines(args[1]) do
      if line_number % count == index then
         local method, path, headers, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
         local fields = {}
         for name, value in headers:gmatch("([^\31:]+): ([^\31]*)") do
            fields[name] = value
         end
         prepared[#prepared + 1] = wrk.format(method, path, fields, body ~= "" and body or nil)
      end
      line_number = line_number + 1
   end
end

function request()
   if sent == #prepared then
      if not cycle then
         exhausted = exhausted + 1
         return wrk.format("GET", "/bench/exhausted")
      end
      sent = 0
   end
   sent = sent + 1
   return prepared[sent]
end

function response(status, headers, body)
   if status ~= expected then
      unexpected = unexpected + 1
      if first_unexpected == "" then
         first_unexpected = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
end

function done(summary, latency, requests)
   local unexpected_total, exhausted_total, first = 0, 0, ""
   for _, thread in ipairs(threads) do
      unexpected_total = unexpected_total + thread:get("unexpected")
      exhausted_total = exhausted_total + thread:get("exhausted")
      if first == "" then
         first = thread:get("first_unexpected")
      end
   end
   local errors = summary.errors
   io.write(string.format(
      "BENCH-RESULT operations=%d microseconds=%d failed=%d exhausted=%d p50_us=%d p99_us=%d\n",
      summary.requests - unexpected_total,
      summary.duration,
      unexpected_total + errors.connect + errors.read + errors.write + errors.timeout,
      exhausted_total, latency:percentile(50), latency:percentile(99)))
   io.write("BENCH-FIRST-FAILURE " .. string.gsub(first, "[\r\n]", " ") .. "\n")
end
