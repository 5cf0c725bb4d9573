// mend.yaml: any bytes give a configuration or an error naming file:line:column.
#include <cstddef>
#include <cstdint>
#include <string>

#include "policy/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = mend::parse_agent_config(text, "fuzz.yaml");
  if (!c.ok() && c.error().message.rfind("fuzz.yaml:", 0) != 0)
    __builtin_trap();  // every error says where
  return 0;
}
