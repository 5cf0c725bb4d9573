// The event JSON reader (mendctl replay, the documented contract): any bytes.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "mend/text.h"
#include "sensors/event_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded())
    return 0;
  auto e = mend::event_from_json(j);
  if (!e.ok())
    return 0;
  // What was read is written again, and reads back.
  const std::string line = mend::to_json_line(*e);
  auto again = mend::event_from_json(nlohmann::json::parse(line));
  if (!again.ok() || mend::to_json_line(*again) != line)
    __builtin_trap();
  return 0;
}
