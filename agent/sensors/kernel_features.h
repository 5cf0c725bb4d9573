// What this kernel offers, probed once at start so each sensor can say precisely what it lacks
// and be disabled alone ("degrade, don't die").
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "mend/result.h"

struct btf;

namespace mend {

class KernelFeatures {
 public:
  // `pretend_missing`: feature names to report as absent (fault injection for tests).
  explicit KernelFeatures(std::set<std::string> pretend_missing = {}, std::string procfs = "/proc");
  ~KernelFeatures();
  KernelFeatures(const KernelFeatures&) = delete;
  KernelFeatures& operator=(const KernelFeatures&) = delete;

  // Feature names:
  //   "btf"              kernel BTF (/sys/kernel/btf/vmlinux), needed for CO-RE
  //   "ringbuf"          BPF_MAP_TYPE_RINGBUF
  //   "tp_btf/<name>"    BTF-enabled raw tracepoint <name> (btf_trace_<name> in vmlinux BTF)
  //   "psi/<resource>"   /proc/pressure/<resource>
  bool has(const std::string& feature) const;
  // The first of `needed` that is missing, or "" when all are present.
  std::string first_missing(const std::vector<std::string>& needed) const;
  // Frees the parsed vmlinux BTF (several MB) once sensors have started.
  void release();

 private:
  bool probe(const std::string& feature) const;
  std::set<std::string> pretend_missing_;
  std::string procfs_;
  mutable struct btf* vmlinux_ = nullptr;
  mutable bool btf_tried_ = false;
  mutable std::map<std::string, bool> cache_;
};

// Loading BPF needs CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN on kernels before 5.8): a clear
// error naming what is missing, checked before anything is loaded.
Status check_bpf_privileges();

}  // namespace mend
