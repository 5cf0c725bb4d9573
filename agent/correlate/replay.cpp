#include "replay.h"

#include "../sensors/event_json.h"

namespace mend {

Result<ReplayResult> replay(std::istream& in, const std::string& name, const ReplayOptions& opt) {
  ReplayResult out;
  Correlator c(opt.correlator);
  std::string line;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    auto e = event_from_json_line(line);
    if (!e.ok()) {
      std::string msg = name + ":" + std::to_string(n) + ": " + e.error().message;
      if (!opt.skip_bad)
        return Error{msg + " (use --skip-bad to go on)"};
      ++out.bad_lines;
      out.warnings.push_back(msg);
      continue;
    }
    if (out.events == 0 || e->ts_ns < out.first_ts)
      out.first_ts = e->ts_ns;
    ++out.events;
    c.push(std::move(*e));
  }
  if (in.bad())
    return Error{"Failed to read " + name};
  c.flush();
  for (const Incident* i : c.incidents())
    out.incidents.push_back(*i);
  return out;
}

}  // namespace mend
