// Policy files: parse, then compile against the real registries of root causes and actions.
#include <cstddef>
#include <cstdint>
#include <string>

#include "policy/policy_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto irs = mend::parse_policies(text, "fuzz.yaml");
  if (!irs.ok())
    return 0;
  (void)mend::compile_policies(*irs);
  return 0;
}
