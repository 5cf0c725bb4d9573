#include "unit_resolver.h"

#include <array>
#include <fstream>
#include <sstream>
#include <vector>

namespace mend {

namespace {

constexpr std::array<std::string_view, 11> kSuffixes = {
    ".service", ".socket", ".target", ".device", ".mount", ".automount",
    ".swap",    ".timer",  ".path",   ".slice",  ".scope"};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/')
      ++i;
    size_t j = p.find('/', i);
    if (j == std::string_view::npos)
      j = p.size();
    if (j > i)
      out.push_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

// "user@1000.service" -> true
bool is_user_manager(std::string_view unit) {
  return unit.substr(0, 5) == "user@" && ends_with(unit, ".service");
}

}  // namespace

bool is_valid_unit_name(std::string_view name) {
  if (name.empty() || name.size() > 255)
    return false;
  std::string_view suffix;
  for (auto s : kSuffixes)
    if (ends_with(name, s)) {
      suffix = s;
      break;
    }
  if (suffix.empty())
    return false;
  std::string_view stem = name.substr(0, name.size() - suffix.size());
  if (stem.empty())
    return false;
  int ats = 0;
  for (char c : stem) {
    if (c == '@') {
      ++ats;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ':' || c == '-' || c == '_' || c == '.' || c == '\\';
    if (!ok)
      return false;
  }
  // A template instance has exactly one '@' and a non-empty prefix.
  return ats == 0 || (ats == 1 && stem.front() != '@');
}

namespace {

// systemd's slice nesting: "a-b.slice" lives in "a.slice", top-level slices have no '-'.
bool slice_nests(std::string_view parent, std::string_view child) {
  std::string_view c = child.substr(0, child.size() - 6);  // without ".slice"
  if (parent.empty())
    return c.find('-') == std::string_view::npos;
  std::string_view p = parent.substr(0, parent.size() - 6);
  return c.size() > p.size() + 1 && c.substr(0, p.size()) == p && c[p.size()] == '-' &&
         c.substr(p.size() + 1).find('-') == std::string_view::npos;
}

// From parts[i]: slices (nested as systemd nests them), then one unit that is not a slice.
// Returns the unit's index, or npos when the parts are not laid out the way a manager lays
// out its tree.
size_t unit_after_slices(const std::vector<std::string_view>& parts, size_t i) {
  std::string_view parent;
  for (; i < parts.size(); ++i) {
    auto c = parts[i];
    if (!is_valid_unit_name(c))
      return std::string_view::npos;
    if (!ends_with(c, ".slice"))
      return i;
    if (!slice_nests(parent, c))
      return std::string_view::npos;
    parent = c;
  }
  return std::string_view::npos;
}

}  // namespace

bool holds_other_units(std::string_view u) {
  return ends_with(u, ".slice") || u == "init.scope" || is_user_manager(u) ||
         (u.substr(0, 8) == "session-" && ends_with(u, ".scope"));
}

UnitRef unit_from_cgroup(std::string_view cgroup_path, std::string_view manager_root) {
  UnitRef ref;
  auto parts = split_path(cgroup_path);
  auto root = split_path(manager_root);
  if (parts.size() < root.size())
    return ref;
  for (size_t i = 0; i < root.size(); ++i)
    if (parts[i] != root[i])
      return ref;  // outside the manager's tree: no unit of that manager
  size_t u = unit_after_slices(parts, root.size());
  if (u == std::string_view::npos)
    return ref;
  ref.unit = std::string(parts[u]);
  if (is_user_manager(parts[u])) {
    // A user manager lays out its own tree below its unit, the same way.
    size_t v = unit_after_slices(parts, u + 1);
    if (v != std::string_view::npos)
      ref.user_unit = std::string(parts[v]);
  }
  return ref;
}

std::string pick_unit_cgroup(std::string_view content) {
  std::string v2, named, memory;
  std::istringstream in{std::string(content)};
  std::string line;
  while (std::getline(in, line)) {
    // hierarchy-ID:controller-list:cgroup-path
    auto a = line.find(':');
    if (a == std::string::npos)
      continue;
    auto b = line.find(':', a + 1);
    if (b == std::string::npos)
      continue;
    std::string id = line.substr(0, a);
    std::string ctrls = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (id == "0" && ctrls.empty())
      v2 = path;
    else if (ctrls == "name=systemd")
      named = path;
    else {
      std::istringstream cs(ctrls);
      std::string c;
      while (std::getline(cs, c, ','))
        if (c == "memory")
          memory = path;
    }
  }
  if (!v2.empty() && v2 != "/")
    return v2;
  if (!named.empty())
    return named;
  if (!memory.empty())
    return memory;
  return v2.empty() ? "/" : v2;
}

Result<std::string> cgroup_of_pid(int pid, const std::string& procfs) {
  std::string path = procfs + "/" + std::to_string(pid) + "/cgroup";
  std::ifstream f(path);
  if (!f)
    return Error::from_errno("Failed to open " + path, errno);
  std::stringstream ss;
  ss << f.rdbuf();
  return pick_unit_cgroup(ss.str());
}

}  // namespace mend
