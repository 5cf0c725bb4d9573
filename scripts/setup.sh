#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of mend from Debian's packages.
# Idempotent: packages already present are left alone; nothing is downloaded at build time.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

PKGS=(
  # toolchain
  build-essential cmake pkg-config clang-14 llvm-14 clang-format
  # BPF
  bpftool libbpf-dev libelf-dev zlib1g-dev
  # libraries
  libsystemd-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  prometheus-cpp-dev
  # tests and benchmarks (libFuzzer is clang-14's runtime)
  googletest libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev
  # fault injection and real systemd/journald for the privileged tiers
  e2fsprogs xfsprogs util-linux fio python3 systemd dbus-user-session
  # what disk remedies drive: logrotate (rotate_logs defers to its configuration)
  logrotate
  # peers measured against in the benchmarks (monit is run in the foreground by the MTTR
  # benchmark with its own control file, never as a service: see below), and the plot
  libbpf-tools monit gnuplot-nox
  # packages (issue 8): CPack's DEB and RPM generators, their linters, and the
  # install-and-boot test (debootstrap rootfs, journal forwarding on loopback)
  file dpkg-dev rpm lintian rpmlint debootstrap systemd-journal-remote
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup.sh: all ${#PKGS[@]} packages already installed"
  exit 0
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages installed here must not start services on the CI machine (monit's would run a
# daemon): policy-rc.d refuses every start for the duration of the install, as in a chroot.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup.sh: done"
