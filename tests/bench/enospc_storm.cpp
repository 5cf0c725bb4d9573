// A storm of ENOSPC from short-lived processes, as fast as one core allows: forks children one
// after another, each opening FILE (on a full filesystem) and failing `per_child` writes, until
// SECONDS have passed. Prints the number of writes that failed with ENOSPC or EDQUOT.
//   mend_enospc_storm FILE SECONDS [PER_CHILD]
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: mend_enospc_storm FILE SECONDS [PER_CHILD]\n");
    return argc < 3 ? 2 : 0;
  }
  const char* file = argv[1];
  const double seconds = std::atof(argv[2]);
  const long per_child = argc > 3 ? std::atol(argv[3]) : 20000;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  unsigned long long failed = 0;
  static char buf[4096] = {1};
  while (std::chrono::steady_clock::now() < end) {
    int p[2];
    if (pipe(p) != 0)
      return 1;
    pid_t c = fork();
    if (c < 0)
      return 1;
    if (c == 0) {
      close(p[0]);
      unsigned long long n = 0;
      int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      for (long i = 0; fd >= 0 && i < per_child; ++i)
        if (write(fd, buf, sizeof buf) < 0 && (errno == ENOSPC || errno == EDQUOT))
          ++n;
      (void)!write(p[1], &n, sizeof n);
      _exit(0);
    }
    close(p[1]);
    unsigned long long n = 0;
    if (read(p[0], &n, sizeof n) == sizeof n)
      failed += n;
    close(p[0]);
    waitpid(c, nullptr, 0);
  }
  std::printf("%llu\n", failed);
  return 0;
}
