#include "logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace mend {

bool stderr_is_journal() {
  // systemd sets JOURNAL_STREAM=<dev>:<ino> for a service whose stderr goes to the journal.
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js)
    return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2)
    return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0)
    return false;
  return st.st_dev == dev && st.st_ino == ino;
}

void init_logging(bool verbose) {
  std::shared_ptr<spdlog::logger> logger;
  if (stderr_is_journal()) {
    // Native journald records: PRIORITY, CODE_FILE, CODE_LINE, CODE_FUNC (from SPDLOG_* macros).
    logger = std::make_shared<spdlog::logger>(
        "mendd", std::make_shared<spdlog::sinks::systemd_sink_mt>("mendd"));
  } else {
    logger = spdlog::stderr_color_mt("mendd");
    logger->set_pattern("%^%l%$ %v");
  }
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace mend
