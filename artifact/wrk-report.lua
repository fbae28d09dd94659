-- artifact/mvx.sh's report from wrk: one line in a format of our own, read by the script.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-report %d %.6f %d\n", summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout))
end
