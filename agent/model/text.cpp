#include "mend/text.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace mend {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void escape_byte(std::string& out, unsigned char c) {
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

// Length of the valid UTF-8 sequence starting at s[i], 0 when the byte there starts none.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80)
    return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size())
    return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

template <class Json>
Json sanitized(const Json& j) {
  if (j.is_string())
    return Json(to_utf8(j.template get_ref<const std::string&>()));
  if (j.is_array()) {
    Json out = Json::array();
    for (const auto& x : j)
      out.push_back(sanitized(x));
    return out;
  }
  if (j.is_object()) {
    Json out = Json::object();
    for (auto it = j.begin(); it != j.end(); ++it)
      out[to_utf8(it.key())] = sanitized(it.value());
    return out;
  }
  return j;
}

template <class Json>
std::string dump_any(const Json& j, int indent) {
  try {
    return j.dump(indent);
  } catch (const nlohmann::json::type_error&) {
    // Only invalid UTF-8 makes dump() throw (type_error.316).
    return sanitized(j).dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string to_utf8(std::string_view s) {
  if (is_valid_utf8(s))
    return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    if (n == 0) {
      escape_byte(out, static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string terminal_safe(std::string_view s, bool keep_newlines) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_sequence(s, i);
    if (n == 0) {
      escape_byte(out, c);
      ++i;
      continue;
    }
    if (n == 1) {
      const bool control = (c < 0x20 && !(keep_newlines && (c == '\n' || c == '\t'))) || c == 0x7f;
      if (control)
        escape_byte(out, c);
      else
        out += static_cast<char>(c);
    } else if (n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) {
      // C1 controls U+0080..U+009F (0x9b is CSI on some terminals).
      out += "\\u00";
      out += kHex[(static_cast<unsigned char>(s[i + 1]) >> 4) & 0xf];
      out += kHex[static_cast<unsigned char>(s[i + 1]) & 0xf];
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string dump_json(const nlohmann::json& j, int indent) {
  return dump_any(j, indent);
}
std::string dump_json(const nlohmann::ordered_json& j, int indent) {
  return dump_any(j, indent);
}

int64_t json_int(const nlohmann::json& j, int64_t lo, int64_t hi, const char* what) {
  int64_t v = 0;
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX))
      throw std::invalid_argument(std::string(what) + ": out of range");
    v = static_cast<int64_t>(u);
  } else if (j.is_number_integer()) {
    v = j.get<int64_t>();
  } else {
    throw std::invalid_argument(std::string(what) + ": not a whole number");
  }
  if (v < lo || v > hi)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(v) + " out of range");
  return v;
}

uint64_t json_uint(const nlohmann::json& j, const char* what) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0))
    throw std::invalid_argument(std::string(what) + ": not a whole number >= 0");
  return j.get<uint64_t>();
}

}  // namespace mend
