// The intent journal as mendd reads it at start: any bytes on disk (a torn write, a full disk,
// someone's editor) give a list of unfinished runs, never an exception.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "remedy/intent_journal.h"

namespace {
const std::string& dir() {
  static const std::string d = [] {
    char tmpl[] = "/tmp/mend-fuzz-journal-XXXXXX";
    std::string p = mkdtemp(tmpl);
    return p;
  }();
  return d;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mend::IntentJournal j(dir());
  {
    std::ofstream f(j.path(), std::ios::trunc | std::ios::binary);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto runs = j.unfinished();
  if (runs.ok())
    for (const auto& r : *runs)
      for (const auto& s : r.steps)
        (void)s.params.size();
  return 0;
}
