#include "mounts.h"

#include <fstream>
#include <sstream>

namespace mend {

std::string unescape_mount_field(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<Mount> parse_mountinfo(std::string_view text) {
  std::vector<Mount> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    std::string w;
    while (ls >> w)
      f.push_back(w);
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    size_t sep = 0;
    for (size_t i = 6; i < f.size(); ++i)
      if (f[i] == "-") {
        sep = i;
        break;
      }
    if (sep == 0 || sep + 1 >= f.size())
      continue;
    Mount m;
    auto colon = f[2].find(':');
    if (colon == std::string::npos)
      continue;
    try {
      m.major = static_cast<uint32_t>(std::stoul(f[2].substr(0, colon)));
      m.minor = static_cast<uint32_t>(std::stoul(f[2].substr(colon + 1)));
    } catch (const std::exception&) {
      continue;
    }
    m.root = unescape_mount_field(f[3]);
    m.mountpoint = unescape_mount_field(f[4]);
    m.options = f[5];
    m.fstype = f[sep + 1];
    m.source = sep + 2 < f.size() ? unescape_mount_field(f[sep + 2]) : "";
    m.super_options = sep + 3 < f.size() ? f[sep + 3] : "";
    out.push_back(std::move(m));
  }
  return out;
}

Result<bool> MountTable::refresh() {
  std::ifstream f(path_);
  if (!f)
    return Error::from_errno("Failed to open " + path_, errno);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  if (text == last_text_)
    return false;
  mounts_ = parse_mountinfo(text);
  last_text_ = std::move(text);
  return true;
}

Result<bool> MountTable::refresh_at_most_every(uint64_t now_ns, uint64_t min_interval_ns) {
  if (last_refresh_ns_ != 0 && now_ns - last_refresh_ns_ < min_interval_ns) {
    ++skipped_;
    return false;
  }
  last_refresh_ns_ = now_ns;
  return refresh();
}

std::vector<const Mount*> MountTable::by_device(uint32_t major, uint32_t minor) const {
  std::vector<const Mount*> out;
  for (const auto& m : mounts_)
    if (m.major == major && m.minor == minor)
      out.push_back(&m);
  return out;
}

std::vector<const Mount*> MountTable::by_disk(
    uint32_t major, uint32_t first_minor,
    const std::vector<std::pair<uint32_t, uint32_t>>& parts) const {
  auto out = by_device(major, first_minor);
  for (auto [ma, mi] : parts)
    for (auto* m : by_device(ma, mi))
      out.push_back(m);
  return out;
}

const Mount* MountTable::by_path(std::string_view path) const {
  const Mount* best = nullptr;
  size_t best_len = 0;
  for (const auto& m : mounts_) {
    std::string_view mp = m.mountpoint;
    bool prefix = mp == "/" || (path.substr(0, mp.size()) == mp &&
                                (path.size() == mp.size() || path[mp.size()] == '/'));
    if (prefix && path.size() >= (mp == "/" ? 1 : mp.size()) && mp.size() >= best_len) {
      best = &m;
      best_len = mp.size();
    }
  }
  return best;
}

}  // namespace mend
