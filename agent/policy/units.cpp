#include "units.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

namespace mend {

namespace {

// Splits "12.5ms" into 12.5 and "ms". Rejects empty numbers, signs and trailing junk.
bool split_number(std::string_view s, double& num, std::string_view& unit) {
  size_t i = 0;
  bool digits = false, dot = false;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || (s[i] == '.' && !dot))) {
    if (s[i] == '.')
      dot = true;
    else
      digits = true;
    ++i;
  }
  if (!digits)
    return false;
  try {
    num = std::stod(std::string(s.substr(0, i)));
  } catch (const std::exception&) {
    return false;
  }
  unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ')
    unit.remove_prefix(1);
  return std::isfinite(num);
}

}  // namespace

Result<uint64_t> parse_duration_ns(std::string_view s) {
  double n = 0;
  std::string_view u;
  if (!split_number(s, n, u))
    return Error{"invalid duration \"" + std::string(s) + "\" (expected e.g. 250ms, 30s, 5m)"};
  double mult = 0;
  if (u == "ns")
    mult = 1;
  else if (u == "us")
    mult = 1e3;
  else if (u == "ms")
    mult = 1e6;
  else if (u == "s")
    mult = 1e9;
  else if (u == "m" || u == "min")
    mult = 60e9;
  else if (u == "h")
    mult = 3600e9;
  else if (u == "d")
    mult = 86400e9;
  else
    return Error{"invalid duration unit in \"" + std::string(s) +
                 "\" (use ns, us, ms, s, m, h or d)"};
  double v = n * mult;
  if (v > 1e18)
    return Error{"duration \"" + std::string(s) + "\" is too large"};
  return static_cast<uint64_t>(v);
}

Result<uint64_t> parse_size_bytes(std::string_view s) {
  double n = 0;
  std::string_view u;
  if (!split_number(s, n, u))
    return Error{"invalid size \"" + std::string(s) + "\" (expected e.g. 512M, 10G)"};
  double mult = 0;
  if (u.empty() || u == "B")
    mult = 1;
  else if (u == "K" || u == "KiB" || u == "k")
    mult = 1024.0;
  else if (u == "M" || u == "MiB")
    mult = 1024.0 * 1024;
  else if (u == "G" || u == "GiB")
    mult = 1024.0 * 1024 * 1024;
  else if (u == "T" || u == "TiB")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else
    return Error{"invalid size unit in \"" + std::string(s) + "\" (use K, M, G or T)"};
  double v = n * mult;
  if (v > 9.0e18)
    return Error{"size \"" + std::string(s) + "\" is too large"};
  return static_cast<uint64_t>(v);
}

Result<double> parse_number(std::string_view s) {
  const auto bad = [&] { return Error{"expected a number, got \"" + std::string(s) + "\""}; };
  size_t i = s.size() > 1 && s.front() == '-' ? 1 : 0;
  size_t digits = 0, dots = 0;
  for (size_t k = i; k < s.size(); ++k) {
    if (s[k] >= '0' && s[k] <= '9')
      ++digits;
    else if (s[k] == '.' && dots == 0)
      ++dots;
    else
      return bad();  // signs inside, exponents, "nan", "inf", hex, spaces, trailing junk
  }
  if (digits == 0)
    return bad();
  const double v = std::strtod(std::string(s).c_str(), nullptr);
  if (!std::isfinite(v))
    return bad();
  return v;
}

Result<int64_t> parse_integer(std::string_view s) {
  auto n = parse_number(s);
  if (!n.ok() || s.find('.') != std::string_view::npos)
    return Error{"expected a whole number, got \"" + std::string(s) + "\""};
  if (std::fabs(*n) > 9.0e15)
    return Error{"number \"" + std::string(s) + "\" is too large"};
  return static_cast<int64_t>(*n);
}

Result<bool> parse_bool(std::string_view s) {
  std::string l(s);
  for (auto& c : l)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "1" || l == "yes" || l == "y" || l == "true" || l == "t" || l == "on")
    return true;
  if (l == "0" || l == "no" || l == "n" || l == "false" || l == "f" || l == "off")
    return false;
  return Error{"expected a boolean (true or false), got \"" + std::string(s) + "\""};
}

Result<double> parse_percent(std::string_view s) {
  if (!s.empty() && s.back() == '%')
    s.remove_suffix(1);
  double n = 0;
  std::string_view u;
  if (!split_number(s, n, u) || !u.empty())
    return Error{"invalid percentage \"" + std::string(s) + "\" (expected e.g. 85%)"};
  if (n < 0 || n > 100)
    return Error{"percentage " + std::string(s) + "% is out of range [0, 100]"};
  return n;
}

}  // namespace mend
