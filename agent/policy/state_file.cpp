#include "state_file.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

namespace mend {

Status write_file_atomic(const std::string& path, const std::string& body) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return Error::from_errno("Failed to write " + tmp, errno);
  const bool ok =
      write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) && fsync(fd) == 0;
  const int e = errno;
  close(fd);
  if (!ok)
    return Error::from_errno("Failed to write " + tmp, e);
  if (rename(tmp.c_str(), path.c_str()) != 0)
    return Error::from_errno("Failed to replace " + path, errno);
  return {};
}

int64_t realtime_offset_ns() {
  timespec m{}, r{};
  clock_gettime(CLOCK_MONOTONIC, &m);
  clock_gettime(CLOCK_REALTIME, &r);
  return (static_cast<int64_t>(r.tv_sec) - m.tv_sec) * 1000000000ll + (r.tv_nsec - m.tv_nsec);
}

}  // namespace mend
