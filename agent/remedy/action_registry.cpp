#include "action.h"

namespace mend {

ActionRegistry& ActionRegistry::instance() {
  static ActionRegistry r;
  return r;
}

bool ActionRegistry::add(ActionSpec spec, ActionFactory f) {
  std::string n = spec.name;
  return actions_.emplace(n, std::make_pair(std::move(spec), std::move(f))).second;
}

const ActionSpec* ActionRegistry::spec(const std::string& name) const {
  auto it = actions_.find(name);
  return it == actions_.end() ? nullptr : &it->second.first;
}

std::unique_ptr<Action> ActionRegistry::create(const std::string& name, const Params& p,
                                               const ActionContext& ctx) const {
  auto it = actions_.find(name);
  if (it == actions_.end())
    return nullptr;
  auto values = p.values();
  for (const auto& ps : it->second.first.params)
    values.emplace(ps.name, ps.fallback);
  return it->second.second(Params(std::move(values)), ctx);
}

std::vector<std::string> ActionRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, a] : actions_)
    out.push_back(n);
  return out;
}

}  // namespace mend
