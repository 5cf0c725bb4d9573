// Pressure stall information (/proc/pressure/<resource>).
#pragma once

#include <string>
#include <string_view>

namespace mend {

struct PsiReading {
  double some_avg10 = -1;  // -1: not available
  double full_avg10 = -1;
};

PsiReading parse_psi(std::string_view text);
PsiReading read_psi(const std::string& procfs, const std::string& resource);

}  // namespace mend
