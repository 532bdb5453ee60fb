-- wrk script: full login round trips, as a browser and its relying party make them.
--
--   wrk -t T -c T -s bench/login.lua URL -- FILE "Basic <client credentials>" T
--
-- One connection per thread (-c equal to -t), so each thread walks one round trip at a time:
--   1. GET /oauth/authorize?...            302 to the login page
--   2. GET the login page                  200, its CSRF token and session cookie
--   3. POST the login form                 302 back to the authorization endpoint
--   4. GET /oauth/authorize?... again      302 to the client's redirect URI with a code
--   5. POST /oauth/token (code + PKCE)     200 with an ID token
-- FILE, prepared by bench/load.py, has one round trip per line: the authorization request's
-- query, the login form without its CSRF token, and the token request's form without its code,
-- separated by tabs. Line i goes to thread i mod T; each is used once.

local threads = {}

function setup(thread)
   thread:set("index", #threads)
   table.insert(threads, thread)
end

local function escape(text)
   return (string.gsub(text, "[^%w%-%._~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end))
end

local function next_round_trip()
   round_trip = round_trip + 1
   step, cookie, location, csrf, code = 1, nil, nil, nil, nil
end

function init(args)
   basic = args[2]
   local count = tonumber(args[3])
   round_trips, completed, failed, exhausted, first_failure = {}, 0, 0, 0, ""
   local line_number = 0
   for line in io.lines(args[1]) do
      if line_number % count == index then
         local query, login, token = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
         round_trips[#round_trips + 1] = {query = query, login = login, token = token}
      end
      line_number = line_number + 1
   end
   round_trip = 0
   next_round_trip()
end

function request()
   local current = round_trips[round_trip]
   if current == nil then
      return wrk.format("GET", "/bench/exhausted")
   end
   local headers = {}
   if cookie then
      headers["Cookie"] = cookie
   end
   if step == 1 then
      return wrk.format("GET", "/oauth/authorize?" .. current.query, headers)
   elseif step == 2 or step == 4 then
      return wrk.format("GET", location, headers)
   elseif step == 3 then
      headers["Content-Type"] = "application/x-www-form-urlencoded"
      return wrk.format("POST", location, headers, current.login .. "&csrf_token=" .. escape(csrf))
   end
   headers["Authorization"] = basic
   headers["Content-Type"] = "application/x-www-form-urlencoded"
   return wrk.format("POST", "/oauth/token", headers, current.token .. "&code=" .. code)
end

function response(status, headers, body)
   if round_trips[round_trip] == nil then
      exhausted = exhausted + 1
      return
   end
   local set_cookie = headers["Set-Cookie"]
   if set_cookie then
      cookie = string.match(set_cookie, "^([^;]+)")
   end
   local ok
   if step == 1 or step == 3 then
      location = headers["Location"]
      ok = status == 302 and location ~= nil
   elseif step == 2 then
      csrf = string.match(body or "", 'name="csrf_token" value="([^"]+)"')
      ok = status == 200 and csrf ~= nil
   elseif step == 4 then
      code = string.match(headers["Location"] or "", "[?&]code=([^&]+)")
      ok = status == 302 and code ~= nil
   else
      ok = status == 200 and string.find(body or "", '"id_token"', 1, true) ~= nil
   end
   if not ok then
      failed = failed + 1
      if first_failure == "" then
         first_failure = "step " .. step .. ": " .. status .. " " .. string.sub(body or "", 1, 300)
      end
      next_round_trip()
   elseif step == 5 then
      completed = completed + 1
      next_round_trip()
   else
      step = step + 1
   end
end

function done(summary, latency, requests)
   local completed_total, failed_total, exhausted_total, first = 0, 0, 0, ""
   for _, thread in ipairs(threads) do
      completed_total = completed_total + thread:get("completed")
      failed_total = failed_total + thread:get("failed")
      exhausted_total = exhausted_total + thread:get("exhausted")
      if first == "" then
         first = thread:get("first_failure")
      end
   end
   local errors = summary.errors
   io.write(string.format(
      "BENCH-RESULT operations=%d microseconds=%d failed=%d exhausted=%d p50_us=0 p99_us=0\n",
      completed_total, summary.duration,
      failed_total + errors.connect + errors.read + errors.write + errors.timeout,
      exhausted_total))
   io.write("BENCH-FIRST-FAILURE " .. string.gsub(first, "[\r\n]", " ") .. "\n")
end
