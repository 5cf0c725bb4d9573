// Policy files: yaml-cpp -> PolicyIR (parse) -> compiled policies checked against the
// registries of root-cause kinds and actions (compile). All or nothing: one error anywhere and
// nothing of the set is used, so a broken reload leaves the previous policies in force.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mend/policy.h"
#include "mend/result.h"

namespace mend {

struct CompiledAction {
  std::string name;
  std::map<std::string, ParamValue> params;  // typed, bounded, defaults filled in
  bool reversible = true;
  // The step's deadline: `step_deadline:` in the policy, else the action's default. At the
  // deadline the step is abandoned, the plan rolled back and escalated.
  uint64_t step_deadline_ns = 0;
};

struct CompiledPolicy {
  PolicyIR ir;
  std::vector<CompiledAction> actions;
};

// Errors are collected, each "file:line:column: message", one per line in Error::message.
Result<std::vector<PolicyIR>> parse_policies(const std::string& text, const std::string& file);
Result<std::vector<CompiledPolicy>> compile_policies(const std::vector<PolicyIR>& irs);
// Like sshd's StrictModes: a file mendd acts on (a policy, mend.yaml, the notify command) must be
// owned by root and not group/world-writable. `what` names it in the error.
Status check_root_owned(const std::string& path, const std::string& what);
// Like sshd's StrictModes: a policy file must be owned by root and not group/world-writable.
Status check_policy_permissions(const std::string& path);
Result<std::vector<CompiledPolicy>> load_policy_file(const std::string& path, bool strict_modes);
// Every *.yaml of `dir` in name order; policy names must be unique across files.
Result<std::vector<CompiledPolicy>> load_policy_dir(const std::string& dir, bool strict_modes);

}  // namespace mend
