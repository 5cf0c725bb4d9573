// Capability names as policies and mend.yaml write them ("CAP_DAC_OVERRIDE"), and their numbers
// (the kernel's, from <linux/capability.h>), for the masks a transient unit is given.
#include <linux/capability.h>

#include <string>
#include <utility>

#include "mend/child.h"

namespace mend {

namespace {

#define MEND_CAP(c) \
  { #c, c }
const std::pair<const char*, int> kCaps[] = {
    MEND_CAP(CAP_CHOWN),
    MEND_CAP(CAP_DAC_OVERRIDE),
    MEND_CAP(CAP_DAC_READ_SEARCH),
    MEND_CAP(CAP_FOWNER),
    MEND_CAP(CAP_FSETID),
    MEND_CAP(CAP_KILL),
    MEND_CAP(CAP_SETGID),
    MEND_CAP(CAP_SETUID),
    MEND_CAP(CAP_SETPCAP),
    MEND_CAP(CAP_LINUX_IMMUTABLE),
    MEND_CAP(CAP_NET_BIND_SERVICE),
    MEND_CAP(CAP_NET_BROADCAST),
    MEND_CAP(CAP_NET_ADMIN),
    MEND_CAP(CAP_NET_RAW),
    MEND_CAP(CAP_IPC_LOCK),
    MEND_CAP(CAP_IPC_OWNER),
    MEND_CAP(CAP_SYS_MODULE),
    MEND_CAP(CAP_SYS_RAWIO),
    MEND_CAP(CAP_SYS_CHROOT),
    MEND_CAP(CAP_SYS_PTRACE),
    MEND_CAP(CAP_SYS_PACCT),
    MEND_CAP(CAP_SYS_ADMIN),
    MEND_CAP(CAP_SYS_BOOT),
    MEND_CAP(CAP_SYS_NICE),
    MEND_CAP(CAP_SYS_RESOURCE),
    MEND_CAP(CAP_SYS_TIME),
    MEND_CAP(CAP_SYS_TTY_CONFIG),
    MEND_CAP(CAP_MKNOD),
    MEND_CAP(CAP_LEASE),
    MEND_CAP(CAP_AUDIT_WRITE),
    MEND_CAP(CAP_AUDIT_CONTROL),
    MEND_CAP(CAP_MAC_OVERRIDE),
    MEND_CAP(CAP_MAC_ADMIN),
    MEND_CAP(CAP_SYSLOG),
    MEND_CAP(CAP_WAKE_ALARM),
    MEND_CAP(CAP_BLOCK_SUSPEND),
    {"CAP_AUDIT_READ", 37},
    {"CAP_PERFMON", 38},
    {"CAP_BPF", 39},
    {"CAP_CHECKPOINT_RESTORE", 40},
};
#undef MEND_CAP

}  // namespace

int capability_number(const std::string& name) {
  for (const auto& [n, v] : kCaps)
    if (name == n)
      return v;
  return -1;
}

Result<uint64_t> capability_mask(const std::vector<std::string>& names) {
  uint64_t mask = 0;
  for (const auto& n : names) {
    const int c = capability_number(n);
    if (c < 0)
      return Error{"unknown capability \"" + n + "\" (names as in capabilities(7): CAP_CHOWN, ...)",
                   EINVAL};
    mask |= uint64_t{1} << c;
  }
  return mask;
}

}  // namespace mend
