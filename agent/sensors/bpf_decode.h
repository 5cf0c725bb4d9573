// Raw kernel records (bpf/mend_events.h) -> typed Events. Pure functions, unit-tested without
// a kernel.
#pragma once

#include <string>
#include <string_view>

#include "mend/event.h"

extern "C" {
#include "mend_events.h"
}

namespace mend {

class MountTable;

static_assert(sizeof(mend_cgroup_path) == 8 + MEND_CG_LEVELS * MEND_CG_NAME_LEN);
static_assert(sizeof(mend_oom_event) == 104 + 2 * sizeof(mend_cgroup_path));
static_assert(sizeof(mend_fs_error_event) == 72 + MEND_PATH_LEN + sizeof(mend_cgroup_path));
static_assert(sizeof(mend_dev_lat) == 48 + 8 * MEND_HIST_BUCKETS);
static_assert(sizeof(mend_writer_key) == 16 && sizeof(mend_writer_val) == 16);
static_assert(sizeof(mend_io_cg_key) == 16 && sizeof(mend_io_cg_val) == 16);

// "/a/b/c" from a leaf-first capture; "/" for depth 0; "/…/b/c" when truncated.
std::string join_cgroup_path(const mend_cgroup_path& p);
// A bounded C string from a fixed-size kernel buffer (the kernel may not NUL-terminate).
std::string bounded_string(const char* s, size_t max);
// x86_64 syscall names for the syscalls the fs sensor watches; "syscall_<nr>" otherwise.
std::string syscall_name(uint32_t nr);

OomKill decode_oom(const mend_oom_event& e, std::string_view manager_root);
FsEnospc decode_fs_error(const mend_fs_error_event& e, const MountTable& mounts,
                         std::string_view manager_root);

}  // namespace mend
