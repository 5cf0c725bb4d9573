#include "policy_loader.h"

#include <fnmatch.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "../correlate/rule.h"
#include "../remedy/action.h"
#include "units.h"

namespace mend {

namespace {

struct Errors {
  std::vector<std::string> list;
  void add(const SourceMark& m, const std::string& what) { list.push_back(m.str() + ": " + what); }
  bool empty() const { return list.empty(); }
  Error error() const {
    std::string s;
    for (const auto& e : list)
      s += (s.empty() ? "" : "\n") + e;
    return Error{s, EINVAL};
  }
};

class Parser {
 public:
  Parser(std::string file, Errors& errs) : file_(std::move(file)), errs_(errs) {}

  SourceMark mark(const YAML::Node& n) const {
    auto m = n.Mark();
    return SourceMark{file_, m.line + 1, m.column + 1};
  }

  bool scalar(const YAML::Node& n, const std::string& what, std::string& out) {
    if (!n.IsScalar()) {
      errs_.add(mark(n), what + ": expected a scalar");
      return false;
    }
    out = n.Scalar();
    return true;
  }

  template <class F>
  void mapping(const YAML::Node& n, const std::string& what,
               const std::map<std::string, F>& handlers) {
    if (!n.IsMap()) {
      errs_.add(mark(n), what + ": expected a mapping");
      return;
    }
    for (const auto& kv : n) {
      auto key = kv.first.Scalar();
      auto h = handlers.find(key);
      if (h == handlers.end()) {
        std::string known;
        for (const auto& [k, f] : handlers)
          known += (known.empty() ? "" : ", ") + k;
        errs_.add(mark(kv.first),
                  "unknown key \"" + what + "." + key + "\" (known: " + known + ")");
        continue;
      }
      h->second(kv.second);
    }
  }

  std::vector<std::string> strings(const YAML::Node& n, const std::string& what) {
    std::vector<std::string> out;
    if (n.IsScalar())
      return {n.Scalar()};
    if (!n.IsSequence()) {
      errs_.add(mark(n), what + ": expected a list");
      return out;
    }
    for (const auto& e : n) {
      std::string s;
      if (scalar(e, what, s))
        out.push_back(s);
    }
    return out;
  }

  uint64_t duration(const YAML::Node& n, const std::string& what, uint64_t max) {
    std::string s;
    if (!scalar(n, what, s))
      return 0;
    auto r = parse_duration_ns(s);
    if (!r.ok()) {
      errs_.add(mark(n), what + ": " + r.error().message);
      return 0;
    }
    if (*r > max) {
      errs_.add(mark(n), what + ": " + s + " is out of range (at most " +
                             std::to_string(max / 1000000000ull) + "s)");
      return 0;
    }
    return *r;
  }

  Mode mode_value(const YAML::Node& n, const std::string& what) {
    std::string s;
    if (scalar(n, what, s)) {
      if (s == "auto")
        return Mode::Auto;
      if (s == "approve")
        return Mode::Approve;
      if (s == "observe")
        return Mode::Observe;
      errs_.add(mark(n), what + ": \"" + s + "\" is not a mode (auto, approve, observe)");
    }
    return Mode::Observe;
  }

  PolicyIR policy(const YAML::Node& n) {
    PolicyIR p;
    p.mark = mark(n);
    using H = std::function<void(const YAML::Node&)>;
    bool has_match = false, has_actions = false;
    mapping<H>(
        n, "policy",
        {{"name", [&](const YAML::Node& v) { scalar(v, "name", p.name); }},
         {"match",
          [&](const YAML::Node& v) {
            has_match = true;
            mapping<H>(
                v, "match",
                {{"root_cause",
                  [&](const YAML::Node& x) { scalar(x, "match.root_cause", p.match.root_cause); }},
                 {"units", [&](const YAML::Node& x) { p.match.units = strings(x, "match.units"); }},
                 {"mounts",
                  [&](const YAML::Node& x) { p.match.mounts = strings(x, "match.mounts"); }},
                 {"devices",
                  [&](const YAML::Node& x) { p.match.devices = strings(x, "match.devices"); }},
                 {"min_confidence", [&](const YAML::Node& x) {
                    std::string s;
                    if (!scalar(x, "match.min_confidence", s))
                      return;
                    auto v = parse_number(s);
                    if (!v.ok()) {
                      errs_.add(mark(x), "match.min_confidence: " + v.error().message);
                      return;
                    }
                    p.match.min_confidence = *v;
                    if (p.match.min_confidence < 0.5 || p.match.min_confidence > 1)
                      errs_.add(mark(x), "match.min_confidence: " + s +
                                             " is out of range [0.5, 1] (mend never acts on a "
                                             "root cause it is less sure of)");
                  }}});
          }},
         {"mode",
          [&](const YAML::Node& v) {
            if (v.IsMap()) {
              for (const auto& kv : v) {
                const std::string k = kv.first.Scalar();
                if (k != "high" && k != "medium" && k != "low" && k != "none")
                  errs_.add(mark(kv.first),
                            "mode: \"" + k + "\" is not an SLO impact (high, medium, low, none)");
                p.mode.by_slo_impact[k] = mode_value(kv.second, "mode." + k);
              }
            } else {
              p.mode.fixed = mode_value(v, "mode");
            }
          }},
         {"actions",
          [&](const YAML::Node& v) {
            has_actions = true;
            if (!v.IsSequence() || v.size() == 0) {
              errs_.add(mark(v), "actions: expected a non-empty list");
              return;
            }
            for (const auto& a : v) {
              // - action_name: {param: value, ...}   or   - action_name
              ActionIR ir;
              ir.mark = mark(a);
              YAML::Node params;
              if (a.IsScalar()) {
                ir.name = a.Scalar();
              } else if (a.IsMap() && a.size() == 1) {
                ir.name = a.begin()->first.Scalar();
                params = a.begin()->second;
              } else {
                errs_.add(mark(a), "actions: each entry is \"- name: {params}\"");
                continue;
              }
              if (params && !params.IsNull()) {
                if (!params.IsMap()) {
                  errs_.add(mark(params),
                            "actions." + ir.name + ": expected a mapping of parameters");
                  continue;
                }
                for (const auto& kv : params) {
                  const std::string k = kv.first.Scalar();
                  ir.param_marks[k] = mark(kv.second);
                  if (kv.second.IsSequence())
                    ir.params[k] = strings(kv.second, "actions." + ir.name + "." + k);
                  else if (kv.second.IsScalar())
                    ir.params[k] = kv.second.Scalar();
                  else
                    errs_.add(mark(kv.second),
                              "actions." + ir.name + "." + k + ": expected a value or a list");
                }
              }
              p.actions.push_back(std::move(ir));
            }
          }},
         {"verify",
          [&](const YAML::Node& v) {
            mapping<H>(v, "verify",
                       {{"deadline",
                         [&](const YAML::Node& x) {
                           p.verify.deadline_ns = duration(x, "verify.deadline", 3600000000000ull);
                         }},
                        {"stable_for",
                         [&](const YAML::Node& x) {
                           p.verify.stable_ns = duration(x, "verify.stable_for", 3600000000000ull);
                         }},
                        {"unit_active",
                         [&](const YAML::Node& x) {
                           p.verify.unit_active = boolean(x, "verify.unit_active");
                         }},
                        {"no_new_oom",
                         [&](const YAML::Node& x) {
                           p.verify.no_new_oom = boolean(x, "verify.no_new_oom");
                         }},
                        {"usage_below",
                         [&](const YAML::Node& x) {
                           std::string s;
                           if (!scalar(x, "verify.usage_below", s))
                             return;
                           auto r = parse_percent(s);
                           if (!r.ok())
                             errs_.add(mark(x), "verify.usage_below: " + r.error().message);
                           else
                             p.verify.usage_below_pct = *r;
                         }},
                        {"latency_below", [&](const YAML::Node& x) {
                           p.verify.latency_below_us =
                               duration(x, "verify.latency_below", 60000000000ull) / 1000;
                         }}});
          }},
         {"on_failure",
          [&](const YAML::Node& v) {
            std::string s;
            if (!scalar(v, "on_failure", s))
              return;
            if (s == "rollback_then_next")
              p.on_failure = OnFailure::RollbackThenNext;
            else if (s == "rollback_then_escalate")
              p.on_failure = OnFailure::RollbackThenEscalate;
            else if (s == "escalate")
              p.on_failure = OnFailure::Escalate;
            else
              errs_.add(mark(v), "on_failure: \"" + s +
                                     "\" (expected rollback_then_next, rollback_then_escalate or "
                                     "escalate)");
          }},
         {"guards",
          [&](const YAML::Node& v) {
            mapping<H>(v, "guards",
                       {{"cooldown",
                         [&](const YAML::Node& x) {
                           p.guards.cooldown_ns =
                               duration(x, "guards.cooldown", 7 * 86400000000000ull);
                         }},
                        {"per",
                         [&](const YAML::Node& x) {
                           p.guards.per_ns = duration(x, "guards.per", 7 * 86400000000000ull);
                         }},
                        {"max_runs", [&](const YAML::Node& x) {
                           std::string s;
                           if (!scalar(x, "guards.max_runs", s))
                             return;
                           auto v2 = parse_integer(s);
                           if (v2.ok() && *v2 >= 1 && *v2 <= 100)
                             p.guards.max_runs = static_cast<uint32_t>(*v2);
                           else
                             errs_.add(mark(x), "guards.max_runs: " + s +
                                                    " is not a whole number in [1, 100]");
                         }}});
          }},
         {"allow_irreversible",
          [&](const YAML::Node& v) { p.allow_irreversible = boolean(v, "allow_irreversible"); }},
         {"auto_after_successes", [&](const YAML::Node& v) {
            std::string s;
            if (!scalar(v, "auto_after_successes", s))
              return;
            auto v2 = parse_integer(s);
            if (v2.ok() && *v2 >= 0 && *v2 <= 1000)
              p.auto_after_successes = static_cast<uint32_t>(*v2);
            else
              errs_.add(mark(v),
                        "auto_after_successes: " + s + " is not a whole number in [0, 1000]");
          }}});
    if (p.name.empty())
      errs_.add(p.mark, "policy: \"name\" is required");
    if (!has_match || p.match.root_cause.empty())
      errs_.add(p.mark, "policy " + p.name + ": \"match.root_cause\" is required");
    if (!has_actions)
      errs_.add(p.mark, "policy " + p.name + ": \"actions\" is required");
    if (!p.mode.fixed && p.mode.by_slo_impact.empty())
      p.mode.fixed = Mode::Approve;  // the default: a person approves until there is a record
    return p;
  }

  bool boolean(const YAML::Node& n, const std::string& what) {
    std::string s;
    if (!scalar(n, what, s))
      return false;
    auto v = parse_bool(s);
    if (!v.ok()) {
      errs_.add(mark(n), what + ": " + v.error().message);
      return false;
    }
    return *v;
  }

 private:
  std::string file_;
  Errors& errs_;
};

// Types a raw parameter value by its spec; errors name the parameter's own position.
bool type_param(const ParamSpec& spec, const ParamValue& raw, const SourceMark& m,
                const std::string& where, Errors& errs, ParamValue& out) {
  const auto* s = std::get_if<std::string>(&raw);
  auto bad = [&](const std::string& msg) {
    errs.add(m, where + ": " + msg);
    return false;
  };
  auto bounded = [&](double v, const std::string& shown) {
    if (spec.max > spec.min && (v < spec.min || v > spec.max))
      return bad(shown + " is out of range");
    return true;
  };
  switch (spec.type) {
    case ParamType::StringList:
      if (const auto* l = std::get_if<std::vector<std::string>>(&raw)) {
        out = *l;
        return true;
      }
      out = std::vector<std::string>{*s};
      return true;
    case ParamType::String:
      if (!s)
        return bad("expected a single value");
      if (!spec.one_of.empty() &&
          std::find(spec.one_of.begin(), spec.one_of.end(), *s) == spec.one_of.end()) {
        std::string opts;
        for (const auto& o : spec.one_of)
          opts += (opts.empty() ? "" : ", ") + o;
        return bad("\"" + *s + "\" is not one of " + opts);
      }
      out = *s;
      return true;
    default:
      break;
  }
  if (!s)
    return bad("expected a single value");
  switch (spec.type) {
    case ParamType::Bool: {
      auto v = parse_bool(*s);
      if (!v.ok())
        return bad(v.error().message);
      out = *v;
      return true;
    }
    case ParamType::Int: {
      auto v = parse_integer(*s);
      if (!v.ok())
        return bad(v.error().message);
      if (!bounded(static_cast<double>(*v), *s))
        return false;
      out = *v;
      return true;
    }
    case ParamType::Size:
    case ParamType::Duration: {
      auto r = spec.type == ParamType::Size ? parse_size_bytes(*s) : parse_duration_ns(*s);
      if (!r.ok())
        return bad(r.error().message);
      if (!bounded(static_cast<double>(*r), *s))
        return false;
      out = static_cast<int64_t>(*r);
      return true;
    }
    case ParamType::Percent: {
      auto r = parse_percent(*s);
      if (!r.ok())
        return bad(r.error().message);
      if (!bounded(*r, *s))
        return false;
      out = *r;
      return true;
    }
    default:
      return bad("unsupported parameter type");
  }
}

}  // namespace

Result<std::vector<PolicyIR>> parse_policies(const std::string& text, const std::string& file) {
  Errors errs;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    errs.add(SourceMark{file, e.mark.line + 1, e.mark.column + 1}, e.msg);
    return errs.error();
  }
  Parser p(file, errs);
  std::vector<PolicyIR> out;
  if (!root || root.IsNull())
    return out;
  if (!root.IsMap() || !root["policies"]) {
    errs.add(p.mark(root), "expected a mapping with a \"policies\" list");
    return errs.error();
  }
  for (const auto& kv : root)
    if (kv.first.Scalar() != "policies")
      errs.add(p.mark(kv.first), "unknown key \"" + kv.first.Scalar() + "\" (known: policies)");
  const auto list = root["policies"];
  if (!list.IsSequence()) {
    errs.add(p.mark(list), "policies: expected a list");
    return errs.error();
  }
  for (const auto& n : list)
    out.push_back(p.policy(n));
  if (!errs.empty())
    return errs.error();
  return out;
}

namespace {
constexpr const char* kStepDeadline = "step_deadline";
}  // namespace

Result<std::vector<CompiledPolicy>> compile_policies(const std::vector<PolicyIR>& irs) {
  Errors errs;
  const auto kinds = RuleRegistry::instance().kinds();
  const auto& actions = ActionRegistry::instance();
  std::set<std::string> names;
  std::vector<CompiledPolicy> out;
  for (const auto& ir : irs) {
    if (!names.insert(ir.name).second)
      errs.add(ir.mark, "policy \"" + ir.name + "\" is defined twice");
    if (std::find(kinds.begin(), kinds.end(), ir.match.root_cause) == kinds.end()) {
      std::string known;
      for (const auto& k : kinds)
        known += (known.empty() ? "" : ", ") + k;
      errs.add(ir.mark, "policy " + ir.name + ": unknown root cause \"" + ir.match.root_cause +
                            "\" (known: " + known + ")");
    }
    CompiledPolicy cp;
    cp.ir = ir;
    for (const auto& a : ir.actions) {
      const ActionSpec* spec = actions.spec(a.name);
      if (!spec) {
        std::string known;
        for (const auto& n : actions.names())
          known += (known.empty() ? "" : ", ") + n;
        errs.add(a.mark, "unknown action \"" + a.name + "\" (known: " + known + ")");
        continue;
      }
      CompiledAction ca;
      ca.name = a.name;
      ca.reversible = spec->reversible;
      ca.step_deadline_ns = spec->step_deadline_ns;
      // `step_deadline` belongs to the executor, not to the action: any action takes it.
      const ParamSpec deadline_spec{kStepDeadline, ParamType::Duration, false, 1e9,
                                    86400e9,       int64_t{0},          {},    ""};
      if (auto it = a.params.find(kStepDeadline); it != a.params.end()) {
        ParamValue typed;
        if (type_param(deadline_spec, it->second, a.param_marks.at(kStepDeadline),
                       a.name + "." + kStepDeadline, errs, typed))
          ca.step_deadline_ns = static_cast<uint64_t>(std::get<int64_t>(typed));
      }
      for (const auto& kv : a.params) {
        const std::string& k = kv.first;
        if (k != kStepDeadline && std::none_of(spec->params.begin(), spec->params.end(),
                                               [&](const ParamSpec& ps) { return ps.name == k; }))
          errs.add(a.param_marks.at(k), "unknown parameter \"" + k + "\" of action " + a.name);
      }
      for (const auto& ps : spec->params) {
        auto it = a.params.find(ps.name);
        if (it == a.params.end()) {
          if (ps.required)
            errs.add(a.mark, "action " + a.name + ": parameter \"" + ps.name + "\" is required");
          else
            ca.params[ps.name] = ps.fallback;
          continue;
        }
        ParamValue typed;
        if (type_param(ps, it->second, a.param_marks.at(ps.name), a.name + "." + ps.name, errs,
                       typed))
          ca.params[ps.name] = typed;
      }
      // A step's own timeout (a job, a command) ends it before the executor has to.
      if (auto t = ca.params.find("timeout"); t != ca.params.end() &&
                                              std::holds_alternative<int64_t>(t->second) &&
                                              !a.params.count(kStepDeadline)) {
        const auto own = static_cast<uint64_t>(std::get<int64_t>(t->second));
        if (own + 30000000000ull > ca.step_deadline_ns)
          ca.step_deadline_ns = own + 30000000000ull;
      }
      if (spec->validate && ca.params.size() == spec->params.size())
        if (auto e = spec->validate(ca.params, ir); !e.empty())
          errs.add(a.mark, "action " + a.name + ": " + e);
      if (spec->destructive && !ir.allow_irreversible)
        errs.add(a.mark, "action " + a.name +
                             " is irreversible: the policy must say allow_irreversible: true");
      cp.actions.push_back(std::move(ca));
    }
    out.push_back(std::move(cp));
  }
  if (!errs.empty())
    return errs.error();
  return out;
}

Status check_root_owned(const std::string& path, const std::string& what) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return Error::from_errno("Failed to stat " + path, errno);
  if (st.st_uid != 0)
    return Error{path + ": refusing a " + what + " not owned by root (uid " +
                     std::to_string(st.st_uid) + ")",
                 EPERM};
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return Error{path + ": refusing a group- or world-writable " + what + " (chmod go-w)", EPERM};
  return {};
}

Status check_policy_permissions(const std::string& path) {
  return check_root_owned(path, "policy file");
}

Result<std::vector<CompiledPolicy>> load_policy_file(const std::string& path, bool strict_modes) {
  if (strict_modes)
    if (auto st = check_policy_permissions(path); !st.ok())
      return st.error();
  std::ifstream f(path);
  if (!f)
    return Error::from_errno("Failed to open " + path, errno);
  std::stringstream ss;
  ss << f.rdbuf();
  auto irs = parse_policies(ss.str(), path);
  if (!irs.ok())
    return irs.error();
  return compile_policies(*irs);
}

Result<std::vector<CompiledPolicy>> load_policy_dir(const std::string& dir, bool strict_modes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".yaml" || e.path().extension() == ".yml")
      files.push_back(e.path().string());
  if (ec)
    return Error::from_errno("Failed to read " + dir, ec.value());
  std::sort(files.begin(), files.end());
  std::vector<PolicyIR> all;
  std::vector<std::string> errors;
  for (const auto& f : files) {
    if (strict_modes)
      if (auto st = check_policy_permissions(f); !st.ok()) {
        errors.push_back(st.error().message);
        continue;
      }
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    auto irs = parse_policies(ss.str(), f);
    if (!irs.ok()) {
      errors.push_back(irs.error().message);
      continue;
    }
    all.insert(all.end(), irs->begin(), irs->end());
  }
  auto compiled = compile_policies(all);
  if (!compiled.ok())
    errors.push_back(compiled.error().message);
  if (!errors.empty()) {
    std::string s;
    for (const auto& e : errors)
      s += (s.empty() ? "" : "\n") + e;
    return Error{s, EINVAL};
  }
  return compiled;
}

}  // namespace mend
