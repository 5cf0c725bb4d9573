// The decoders of the kernel's records: any bytes in a record (a newer kernel, a bug in a
// probe) give an event whose strings are valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mend/text.h"
#include "sensors/bpf_decode.h"
#include "sensors/event_json.h"
#include "sensors/mounts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mend::MountTable mounts = [] {
    mend::MountTable t("/nonexistent");
    t.set(
        mend::parse_mountinfo("22 1 7:1 / /srv rw - ext4 /dev/loop1 rw\n"
                              "23 1 254:0 / / rw - ext4 /dev/vda rw\n"));
    return t;
  }();
  if (size < 1)
    return 0;
  const bool oom = data[0] & 1;
  ++data;
  --size;
  std::string json;
  if (oom) {
    mend_oom_event e{};
    std::memcpy(&e, data, size < sizeof e ? size : sizeof e);
    json = mend::to_json_line(mend::Event{e.ts_ns, mend::decode_oom(e, "/user.slice")});
  } else {
    mend_fs_error_event e{};
    std::memcpy(&e, data, size < sizeof e ? size : sizeof e);
    json = mend::to_json_line(mend::Event{e.ts_ns, mend::decode_fs_error(e, mounts, "")});
  }
  if (!mend::is_valid_utf8(json))
    __builtin_trap();
  return 0;
}
