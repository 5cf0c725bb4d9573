#include "kernel_features.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mend {

KernelFeatures::KernelFeatures(std::set<std::string> pretend_missing, std::string procfs)
    : pretend_missing_(std::move(pretend_missing)), procfs_(std::move(procfs)) {}

KernelFeatures::~KernelFeatures() {
  release();
}

void KernelFeatures::release() {
  if (vmlinux_)
    btf__free(vmlinux_);
  vmlinux_ = nullptr;
}

bool KernelFeatures::has(const std::string& feature) const {
  if (pretend_missing_.count(feature))
    return false;
  auto it = cache_.find(feature);
  if (it != cache_.end())
    return it->second;
  bool v = probe(feature);
  cache_[feature] = v;
  return v;
}

std::string KernelFeatures::first_missing(const std::vector<std::string>& needed) const {
  for (const auto& f : needed)
    if (!has(f))
      return f;
  return "";
}

bool KernelFeatures::probe(const std::string& feature) const {
  if (feature == "btf" || feature.rfind("tp_btf/", 0) == 0) {
    if (!btf_tried_) {
      btf_tried_ = true;
      vmlinux_ = btf__load_vmlinux_btf();
      if (libbpf_get_error(vmlinux_))
        vmlinux_ = nullptr;
    }
    if (!vmlinux_)
      return false;
    if (feature == "btf")
      return true;
    std::string type = "btf_trace_" + feature.substr(7);
    return btf__find_by_name_kind(vmlinux_, type.c_str(), BTF_KIND_TYPEDEF) > 0;
  }
  if (feature == "ringbuf")
    return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
  if (feature.rfind("psi/", 0) == 0)
    return access((procfs_ + "/pressure/" + feature.substr(4)).c_str(), R_OK) == 0;
  return false;
}

Status check_bpf_privileges() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0)
    return Error::from_errno("Failed to read process capabilities", errno);
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
  constexpr int kCapSysAdmin = 21, kCapPerfmon = 38, kCapBpf = 39;
  if (has(kCapSysAdmin) || (has(kCapBpf) && has(kCapPerfmon)))
    return {};
  return Error{
      "Insufficient privileges to load BPF programs: CAP_BPF and CAP_PERFMON (or "
      "CAP_SYS_ADMIN) are required; run mendd as root or with those capabilities",
      EPERM};
}

}  // namespace mend
