#include "logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace mend {

void init_logging(bool verbose) {
  auto logger = spdlog::stderr_color_mt("mendd");
  logger->set_pattern("%^%l%$ %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace mend
