#!/usr/bin/env bash
# Install-and-boot test (issue 8): build the .deb and .rpm from this build tree, lint them,
# install the .deb into a minimal Debian system booted with systemd as PID 1 in new namespaces
# (TESTING.md method 2), and check that mend.service runs hardened, heals a real fault (a test
# unit's log fills a loop filesystem), writes its records with catalog text to that system's
# journald (and forwards them to a systemd-journal-remote on loopback), restarts on upgrade, and
# that dpkg -r / --purge keep and remove what they should. The .rpm is inspected and installed
# with rpm --root into a copy of the same system.
#
#   install_boot_test.sh BUILD_DIR
#
# The Debian rootfs is built once with debootstrap and cached in $MEND_ROOTFS_CACHE
# (default /var/cache/mend-test); each run works on an overlay of it, so the cache stays clean.
# Exit 77 (ctest: skipped) without root or the tools; MEND_REQUIRE_PRIVILEGED=1 turns that into
# a failure. Everything it creates (overlays, loop devices, mounts, cgroups, processes) is
# removed on exit, pass or fail.
set -euo pipefail

build=$(cd "${1:?usage: install_boot_test.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
cache=${MEND_ROOTFS_CACHE:-/var/cache/mend-test}

skip() {
  if [ "${MEND_REQUIRE_PRIVILEGED:-0}" = 1 ]; then
    echo "FAIL (MEND_REQUIRE_PRIVILEGED=1): $*" >&2
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
for t in cpack debootstrap dpkg-deb lintian rpm rpmlint unshare nsenter losetup mkfs.ext4 \
  /lib/systemd/systemd-journal-remote /lib/systemd/systemd-journal-upload; do
  command -v "$t" >/dev/null || [ -x "$t" ] || skip "$t is not installed (scripts/setup.sh)"
done

id=mend-boot-$$
work=$(mktemp -d "/tmp/$id.XXXXXX")
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------- cleanup
cg_hier=(systemd unified memory pids cpu cpuacct)
container_pid=""
remote_pid=""
page_pid=""
mounts=() # unmounted in reverse order
loops=()
cleanup() {
  local rc=$?
  set +e
  [ -n "$remote_pid" ] && kill "$remote_pid" 2>/dev/null && wait "$remote_pid" 2>/dev/null
  [ -n "$page_pid" ] && kill "$page_pid" 2>/dev/null && wait "$page_pid" 2>/dev/null
  if [ -n "$container_pid" ]; then
    # PID 1 of the namespace dies and the kernel kills every process in it.
    kill -9 "$container_pid" 2>/dev/null
    wait "$container_pid" 2>/dev/null
  fi
  # Anything still in the test's cgroups (there should be nothing once PID 1 is gone).
  for h in "${cg_hier[@]}"; do
    local d=/sys/fs/cgroup/$h/$id
    [ -d "$d" ] || continue
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
      [ -d "$d" ] || break
      sleep 0.2
    done
  done
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -l "${mounts[$i]}" 2>/dev/null
  done
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------- packages
step "build the packages (cpack)"
(cd "$build" && cpack -G "DEB;RPM" -B "$work/pkg" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/pkg/mend_*.deb)
rpm=$(ls "$work"/pkg/mend-*.rpm)
ls -la "$deb" "$rpm"

step "lintian (no errors or warnings)"
lintian --fail-on error,warning --info "$deb" | tee "$work/lintian.log" ||
  fail "lintian: $(grep -E '^[EW]:' "$work/lintian.log" | head)"

step "rpmlint (no errors)"
rpmlint -c "$src/packaging/rpm/rpmlint.toml" "$rpm" | tee "$work/rpmlint.log" ||
  fail "rpmlint found errors"

step "package contents and metadata"
dpkg-deb -I "$deb"
dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' | tee "$work/deb-contents"
for f in ./usr/sbin/mendd ./usr/bin/mendctl ./usr/lib/systemd/system/mend.service \
  ./usr/lib/tmpfiles.d/mend.conf ./usr/lib/sysusers.d/mend.conf \
  ./usr/lib/systemd/catalog/mend.catalog ./usr/share/man/man8/mendd.8.gz \
  ./usr/share/man/man8/mendctl.8.gz ./usr/share/man/man5/mend.yaml.5.gz \
  ./usr/share/man/man5/mend.policy.5.gz ./usr/share/bash-completion/completions/mendctl \
  ./usr/share/doc/mend/copyright ./usr/share/doc/mend/changelog.Debian.gz \
  ./etc/mend/mend.yaml ./etc/mend/policies.d/10-disk-logs.yaml; do
  grep -q " $f\$" "$work/deb-contents" || fail "the .deb lacks $f"
done
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/mend/mend.yaml "$work/control/conffiles" || fail "mend.yaml is not a conffile"
grep -qx /etc/mend/policies.d/10-disk-logs.yaml "$work/control/conffiles" ||
  fail "the policies are not conffiles"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libbpf1 libsystemd0 libyaml-cpp0.7 libspdlog1.10-fmt9 libfmt9 systemd; do
  [[ ", $depends," == *", $lib "* || ", $depends," == *", $lib,"* ]] ||
    fail "Depends lacks $lib (shlibs)"
done

rpm -qpl "$rpm" | tee "$work/rpm-files"
for d in /usr/lib/systemd /usr/lib/systemd/system /usr/lib/tmpfiles.d /usr/lib/sysusers.d \
  /usr/share/man/man8 /usr/share/bash-completion/completions /etc /usr/sbin /usr/bin; do
  if grep -qx "$d" "$work/rpm-files"; then fail "the .rpm owns the shared directory $d"; fi
done
grep -qx /usr/lib/systemd/system/mend.service "$work/rpm-files" || fail "rpm lacks the unit"
rpm -qp --configfiles "$rpm" | tee "$work/rpm-config"
grep -qx /etc/mend/mend.yaml "$work/rpm-config" || fail "mend.yaml is not %config in the rpm"
rpm -qpR "$rpm" | tee "$work/rpm-requires"
for r in 'libbpf.so.1()(64bit)' 'libsystemd.so.0()(64bit)' 'libyaml-cpp.so.0.7()(64bit)' systemd; do
  grep -qxF "$r" "$work/rpm-requires" || fail "rpm requires lack $r"
done
rpm -qp --scripts "$rpm" | grep -q 'systemctl --no-reload preset mend.service' ||
  fail "rpm %post does not apply the preset"

# --------------------------------------------------------------------------- Debian rootfs
# Cached per set of packages: the base system, systemd, and the .deb's run-time dependencies.
include="systemd,systemd-sysv,dbus,logrotate"
for p in $(echo "$depends" | tr ',' '\n' | sed -E 's/^ *([^ |]+).*/\1/'); do
  # A virtual package (libspdlog1.10-fmt9) is named by its provider: debootstrap wants real ones.
  if [ -z "$(apt-cache show "$p" 2>/dev/null)" ]; then
    p=$(apt-cache showpkg "$p" | awk '/^Reverse Provides:/ {getline; print $1; exit}')
  fi
  [[ ",$include," == *",$p,"* ]] || include="$include,$p"
done
key=$(echo "bookworm $include" | sha256sum | cut -c1-12)
rootfs=$cache/rootfs-bookworm-$key
if [ ! -d "$rootfs" ]; then
  step "debootstrap a minimal bookworm ($include) into $rootfs (once; cached)"
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -d "$rootfs" ]; then
    tmp=$(mktemp -d "$cache/.build.XXXXXX")
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
      true)
    debootstrap --variant=minbase --include="$include" bookworm "$tmp" \
      "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log"; rm -rf "$tmp"; fail "debootstrap"; }
    # Volatile journal, no getty noise; the system is only ever booted in a container.
    systemctl --root="$tmp" mask console-getty.service getty@tty1.service \
      systemd-networkd.service systemd-resolved.service >/dev/null 2>&1 || true
    mv "$tmp" "$rootfs"
  fi
  exec 9>&-
fi
echo "rootfs: $rootfs ($(du -sh "$rootfs" | cut -f1))"

overlay() { # overlay NAME: a writable copy of the cached rootfs at $work/NAME/root
  local d=$work/$1
  mkdir -p "$d/upper" "$d/work" "$d/root"
  mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$d/upper,workdir=$d/work" "$d/root"
  mounts+=("$d/root")
}

# ---------------------------------------------------------------------------------- the rpm
step "rpm -i --root into a copy of the system (scriptlets run chrooted)"
overlay rpmroot
r=$work/rpmroot/root
rpm --root "$r" --initdb
rpm -i --nodeps --root "$r" "$rpm"
for f in /usr/sbin/mendd /usr/bin/mendctl /usr/lib/systemd/system/mend.service \
  /etc/mend/mend.yaml /etc/mend/policies.d/10-disk-logs.yaml; do
  [ -e "$r$f" ] || fail "rpm -i --root did not install $f"
done
grep -q '^mend:' "$r/etc/group" || fail "rpm %post did not create the mend group (sysusers)"
rpm --root "$r" -q mend
rpm --root "$r" -V --nodeps mend || fail "rpm -V finds the installed files changed"
echo "# edited" >>"$r/etc/mend/mend.yaml"
rpm -e --nodeps --root "$r" mend
[ ! -e "$r/usr/sbin/mendd" ] || fail "rpm -e left mendd"
[ -e "$r/etc/mend/mend.yaml.rpmsave" ] || fail "rpm -e did not keep the edited mend.yaml"
umount "$r" && unset 'mounts[-1]'

# --------------------------------------------------------------------------------- the boot
step "boot systemd as PID 1 on a copy of the system"
overlay sys
root=$work/sys/root
# The fault's filesystem: a 64 MiB ext4 loop volume for /var/log/app (shipped disk-logs policy).
truncate -s 64M "$work/app.img"
mkfs.ext4 -q -F "$work/app.img"
loop=$(losetup -f --show "$work/app.img")
loops+=("$loop")
mkdir -p "$root/var/log/app"
mount "$loop" "$root/var/log/app"
mounts+=("$root/var/log/app")
# The test's unit: a burst of log lines larger than the volume (it fills, writes fail with
# ENOSPC), then a line every 200 ms. Nothing in it knows about mend.
cat >"$root/etc/systemd/system/fillapp.service" <<'EOF'
[Unit]
Description=mend test: a service whose log fills its volume
[Service]
ExecStart=/bin/sh -c 'yes "fillapp burst padding padding padding padding padding padding padding padding padding padding padding padding padding" | head -n 700000 >>/var/log/app/fillapp.log; i=0; while :; do echo "fillapp tick $i"; i=$((i+1)); sleep 0.2; done >>/var/log/app/fillapp.log'
EOF
for h in "${cg_hier[@]}"; do mkdir -p "/sys/fs/cgroup/$h/$id"; done
cat >"$work/boot.sh" <<EOF
#!/bin/sh
# Runs in the new namespaces: a minimal container root, then systemd as PID 1.
set -e
for h in ${cg_hier[*]}; do echo \$\$ > /sys/fs/cgroup/\$h/$id/cgroup.procs; done
exec unshare --pid --fork --mount --uts --ipc --cgroup --propagation private sh -e -c '
R=$root
mount -t proc proc \$R/proc
mount -t sysfs -o ro sysfs \$R/sys
mount -t tmpfs -o mode=755 tmpfs \$R/sys/fs/cgroup
for c in memory pids cpu cpuacct; do
  mkdir \$R/sys/fs/cgroup/\$c; mount -t cgroup -o \$c cgroup \$R/sys/fs/cgroup/\$c
done
mkdir \$R/sys/fs/cgroup/systemd \$R/sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup \$R/sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 \$R/sys/fs/cgroup/unified
mount -t tmpfs -o mode=755,nosuid tmpfs \$R/dev
for n in null zero full random urandom tty; do touch \$R/dev/\$n; mount --bind /dev/\$n \$R/dev/\$n; done
# The console is a file: what systemd prints there is in the test log on failure.
touch \$R/dev/console; mount --bind $work/console.log \$R/dev/console
mkdir \$R/dev/pts \$R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts \$R/dev/pts
ln -s pts/ptmx \$R/dev/ptmx
mount -t tmpfs tmpfs \$R/dev/shm
mount -t tmpfs -o mode=755 tmpfs \$R/run
mount -t tmpfs tmpfs \$R/tmp
cd \$R
exec chroot . env -i container=unshare /lib/systemd/systemd --log-target=console
'
EOF
chmod +x "$work/boot.sh"
: >"$work/console.log"
setsid "$work/boot.sh" </dev/null >"$work/systemd.log" 2>&1 &
container_pid=$!
# The namespace's PID 1 is unshare --fork's child, once it has exec'd systemd.
pid1=""
for _ in $(seq 100); do
  # Not a child of systemd (forked workers run the same binary until they exec).
  for c in $(pgrep -P "$container_pid" || true); do
    [ "$(readlink "/proc/$c/exe" 2>/dev/null)" = "$root/usr/lib/systemd/systemd" ] && pid1=$c
  done
  [ -n "$pid1" ] && break
  sleep 0.1
done
[ -n "$pid1" ] || { cat "$work/systemd.log" "$work/console.log"; fail "systemd did not start"; }
in_sys() { nsenter -t "$pid1" -a -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
for _ in $(seq 200); do
  state=$(in_sys systemctl is-system-running 2>/dev/null || true)
  [[ "$state" == running || "$state" == degraded ]] && break
  sleep 0.1
done
echo "system: $state after boot"
if [[ "$state" != running && "$state" != degraded ]]; then
  tail -n 30 "$work/systemd.log" "$work/console.log"
  in_sys systemctl is-system-running || true
  in_sys systemctl list-jobs --no-pager || true
  ps -o pid,ppid,stat,args --ppid "$pid1" || true
  if ! kill -0 "$container_pid" 2>/dev/null; then
    wait "$container_pid" && echo "the container exited 0" || echo "the container exited $?"
    container_pid=""
  fi
  dmesg | tail -n 5 || true
  fail "boot"
fi

step "dpkg -i the .deb"
cp "$deb" "$root/var/tmp/mend.deb"
in_sys dpkg -i /var/tmp/mend.deb
in_sys systemctl is-enabled mend.service | grep -qx enabled || fail "mend.service not enabled"
for _ in $(seq 100); do
  in_sys systemctl is-active mend.service >/dev/null && break
  sleep 0.1
done
in_sys systemctl status mend.service --no-pager || fail "mend.service is not active"
getent_group=$(in_sys getent group mend || true)
[ -n "$getent_group" ] || fail "no mend group (sysusers)"
[ "$(in_sys stat -c '%a %U:%G' /run/mend)" = "750 root:mend" ] || fail "/run/mend (tmpfiles)"
[ "$(in_sys stat -c '%a %U:%G' /run/mend/control.sock)" = "660 root:mend" ] ||
  fail "control socket mode"

step "mendctl status answers"
in_sys mendctl status
in_sys mendctl status -o json >"$work/status.json"
in_sys sh -c 'grep -E "locked|Max open" /proc/$(systemctl show -p MainPID --value mend.service)/limits' 
python3 - "$work/status.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
up = {x["sensor"]: x["enabled"] for x in s["sensors"]}
print("sensors:", up, "memory_locked:", s.get("memory_locked"))
assert s["memory_locked"] is True, "mlockall did not take effect under the unit"
for name in ("oom", "io", "fs", "psi", "units"):
    assert up.get(name) is True, f"sensor {name} is not running: {s['sensors']}"
assert s["policies"] >= 6, s["policies"]
EOF
in_sys systemctl show mend.service -p MemoryMax -p CPUQuotaPerSecUSec -p OOMScoreAdjust \
  -p CapabilityBoundingSet -p NoNewPrivileges -p PrivateNetwork -p ProtectSystem

step "inject the fault: fillapp's log fills /var/log/app"
# A short stabilisation window for the test: an edit of a conffile, as a site would make.
in_sys sed -i 's/stable_for: 30s/stable_for: 3s/' /etc/mend/policies.d/10-disk-logs.yaml
in_sys systemctl reload mend.service ||
  { in_sys journalctl -u mend.service --no-pager | tail -n 20; fail "systemctl reload mend"; }
in_sys systemctl start fillapp.service
verified=""
for _ in $(seq 900); do # 90 s
  verified=$(in_sys journalctl -o json --no-pager MESSAGE_ID=b4ddfefef4364a55ae919fd52183aa01 \
    2>/dev/null | head -1)
  [ -n "$verified" ] && break
  sleep 0.1
done
in_sys journalctl -o short-monotonic --no-pager -u mend.service | tail -40
[ -n "$verified" ] || fail "no verified recovery within 90 s"
echo "$verified" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print({k: v for k, v in r.items() if k.startswith("MEND_") or k == "MESSAGE"})
assert r["MEND_POLICY"] == "log-volume-rotate", r["MEND_POLICY"]
assert r["MEND_ROOT_CAUSE"] == "fs_full", r["MEND_ROOT_CAUSE"]
assert int(r["MEND_MTTR_MS"]) > 0
'
# The incident may first be named fs_filling (the burst's rate) and then fs_full (ENOSPC).
root_cause=$(in_sys journalctl -o json --no-pager MESSAGE_ID=49094a6c7ca84536a6a2e24920d92434 \
  MEND_ROOT_CAUSE=fs_full | head -1)
[ -n "$root_cause" ] || fail "no fs_full root-cause record"
echo "$root_cause" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["MEND_ROOT_CAUSE"] == "fs_full", r
assert r.get("MEND_CULPRIT_UNIT") == "fillapp.service", r.get("MEND_CULPRIT_UNIT")
assert r.get("MEND_MOUNT") == "/var/log/app", r.get("MEND_MOUNT")
print("root cause:", r["MESSAGE"])
'
used=$(in_sys df --output=pcent /var/log/app | tail -1 | tr -dc 0-9)
echo "/var/log/app used: $used%"
[ "$used" -lt 80 ] || fail "the volume is still $used% full"
in_sys ls -la /var/log/app
in_sys test -s /var/log/app/fillapp.log.1.gz || fail "no rotation fillapp.log.1.gz"
in_sys systemctl is-active fillapp.service >/dev/null || fail "the writer was stopped"
in_sys systemctl show fillapp.service -p NRestarts | grep -qx NRestarts=0 ||
  fail "the writer was restarted (it was not broken)"

step "the catalog explains the records (journalctl -x)"
in_sys journalctl -x --no-pager MESSAGE_ID=b4ddfefef4364a55ae919fd52183aa01 | tee "$work/x.txt"
grep -q "Subject: mend verified recovery from incident" "$work/x.txt" ||
  fail "journalctl -x shows no catalog text"
grep -q "MEND_MTTR_MS is the time from the first fault signal" "$work/x.txt" ||
  fail "catalog body missing"

step "forward the records to systemd-journal-remote on loopback"
port=$((20000 + RANDOM % 20000))
mkdir -p "$work/remote"
/lib/systemd/systemd-journal-remote --split-mode=none --listen-http="127.0.0.1:$port" \
  --output="$work/remote/remote.journal" \
  >"$work/remote.log" 2>&1 &
remote_pid=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
journal_dir=$(dirname "$(ls "$root"/run/log/journal/*/system.journal "$root"/var/log/journal/*/system.journal 2>/dev/null | head -1)")
[ -d "$journal_dir" ] || fail "no journal in the booted system"
/lib/systemd/systemd-journal-upload --follow=no --url="http://127.0.0.1:$port" --directory="$journal_dir" \
  >"$work/upload.log" 2>&1 || { cat "$work/upload.log" "$work/remote.log"; fail "journal-upload"; }
kill "$remote_pid"
wait "$remote_pid" || true
remote_pid=""
journalctl --file="$work/remote/remote.journal" -o json --no-pager \
  MESSAGE_ID=b4ddfefef4364a55ae919fd52183aa01 | head -1 | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["MEND_POLICY"] == "log-volume-rotate" and r["MEND_ROOT_CAUSE"] == "fs_full", r
assert "MEND_INCIDENT_ID" in r and "MEND_MTTR_MS" in r, r
print("forwarded with its MEND_* fields:", sorted(k for k in r if k.startswith("MEND_")))
'

step "an escalation pages a listener on 127.0.0.1: commands run as transient units, not in mendd's cage"
# mendd itself has no network (PrivateNetwork=yes) and holds CAP_SYS_ADMIN & co.; its exec step
# and its paging hook must run with none of that: as units of their own, the hook with the
# network, neither with a capability.
page_port=$((20000 + RANDOM % 20000))
python3 - "$page_port" "$work/page.txt" <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4)
s.settimeout(120)
c, _ = s.accept()
c.settimeout(10)
data = b""
while True:
    b = c.recv(65536)
    if not b:
        break
    data += b
open(sys.argv[2], "wb").write(data)
EOF
page_pid=$!
cat >"$root/usr/local/sbin/mend-test-page" <<EOF
#!/bin/bash
# The test's paging hook: what it runs as, then the incident (stdin), to a listener on loopback.
exec 3<>/dev/tcp/127.0.0.1/$page_port
{ echo "page: uid=\$(id -u) \$(grep CapEff /proc/self/status | tr -d '\t') \$(grep -o 'mend-notify-[0-9a-f]*\.service' /proc/self/cgroup | head -1)"; cat; } >&3
EOF
cat >"$root/usr/local/sbin/mend-test-step" <<'EOF'
#!/bin/bash
# The test's exec step: says what it runs as (mend keeps the output), then fails.
echo "step: uid=$(id -u) $(grep CapEff /proc/self/status | tr -d '\t') $(grep -o 'mend-exec-[0-9a-f]*\.service' /proc/self/cgroup | head -1)"
exit 1
EOF
chmod 0755 "$root/usr/local/sbin/mend-test-page" "$root/usr/local/sbin/mend-test-step"
cat >"$root/etc/mend/policies.d/05-test-page.yaml" <<'EOF'
policies:
  - name: test-crash-page
    match: {root_cause: unit_crash, units: [crashapp.service], min_confidence: 0.5}
    mode: auto
    allow_irreversible: true
    actions:
      - exec: {command: [/usr/local/sbin/mend-test-step], timeout: 10s}
    verify: {deadline: 30s, stable_for: 2s}
    on_failure: escalate
EOF
chmod 0644 "$root/etc/mend/policies.d/05-test-page.yaml"
in_sys sed -i 's|^  # notify: {command: .*|  notify: {command: [/usr/local/sbin/mend-test-page], timeout: 10s}|' \
  /etc/mend/mend.yaml
in_sys grep -q 'mend-test-page' /etc/mend/mend.yaml || fail "could not set executor.notify"
cat >"$root/etc/systemd/system/crashapp.service" <<'EOF'
[Unit]
Description=mend test: a service that crashes at every start
StartLimitIntervalSec=0
[Service]
ExecStart=/bin/sh -c 'echo crashapp starting; sleep 0.5; exit 3'
Restart=on-failure
RestartSec=500ms
EOF
in_sys systemctl daemon-reload
in_sys systemctl reload mend.service ||
  { in_sys journalctl -u mend.service --no-pager | tail -n 20; fail "systemctl reload mend"; }
in_sys systemctl start crashapp.service
for _ in $(seq 600); do # 60 s
  [ -s "$work/page.txt" ] && break
  kill -0 "$page_pid" 2>/dev/null || break
  sleep 0.1
done
in_sys systemctl stop crashapp.service
in_sys journalctl -o short-monotonic --no-pager -u mend.service | tail -20
[ -s "$work/page.txt" ] || fail "the notify command did not reach 127.0.0.1:$page_port"
wait "$page_pid" || true
page_pid=""
head -c 600 "$work/page.txt"
echo
head -1 "$work/page.txt" | grep -qE '^page: uid=0 CapEff:0{16} mend-notify-[0-9a-f]{16}\.service$' ||
  fail "the paging hook did not run as a transient unit without capabilities"
sed -n 2p "$work/page.txt" | python3 -c '
import json, sys
inc = json.load(sys.stdin)
assert inc["root_cause"]["kind"] == "unit_crash", inc["root_cause"]
print("paged incident", inc["id"], inc["root_cause"]["summary"])
'
in_sys journalctl -o json --no-pager MEND_POLICY=test-crash-page MEND_RESULT=escalated |
  head -1 >"$work/escalated.json"
python3 - "$work/escalated.json" <<'EOF'
import json, re, sys
r = json.load(open(sys.argv[1]))
m = r["MESSAGE"]
print(m)
assert re.search(r"step: uid=0 CapEff:0{16} mend-exec-[0-9a-f]{16}\.service", m), \
    "the exec step did not run as a transient unit without capabilities"
EOF
in_sys systemctl show mend.service -p PrivateNetwork | grep -qx PrivateNetwork=yes ||
  fail "mendd itself gained the network"
left=""
for _ in $(seq 50); do
  left=$(in_sys systemctl list-units --all --no-legend --plain 'mend-*' | grep -v '^mend\.service' || true)
  [ -z "$left" ] && break
  sleep 0.1
done
[ -z "$left" ] || fail "transient units left behind: $left"
# The test's own files go (dpkg --purge below removes only what the package owns), and
# mend.yaml names no paging hook again.
in_sys sed -i 's|^  notify: {command: \[/usr/local/sbin/mend-test-page\].*|  # notify: none|' \
  /etc/mend/mend.yaml
rm -f "$root/etc/mend/policies.d/05-test-page.yaml" "$root/usr/local/sbin/mend-test-page" \
  "$root/usr/local/sbin/mend-test-step" "$root/etc/systemd/system/crashapp.service"
in_sys systemctl daemon-reload

step "upgrade (dpkg -i again): mendd restarted, the edited conffile kept"
before=$(in_sys systemctl show -p MainPID --value mend.service)
in_sys dpkg -i --force-confold /var/tmp/mend.deb
after=$(in_sys systemctl show -p MainPID --value mend.service)
echo "MainPID $before -> $after"
[ "$after" != "$before" ] && [ "$after" != 0 ] ||
  { in_sys journalctl -o short-monotonic --no-pager -u mend.service | tail -n 30
    in_sys systemctl status mend.service --no-pager || true
    fail "mendd was not restarted on upgrade"; }
in_sys grep -q 'stable_for: 3s' /etc/mend/policies.d/10-disk-logs.yaml ||
  fail "the upgrade replaced an edited conffile"

step "dpkg -r: stopped, configuration and state kept"
in_sys dpkg -r mend
in_sys systemctl is-active mend.service >/dev/null && fail "mend.service still active"
in_sys test ! -e /usr/sbin/mendd || fail "mendd still installed"
in_sys test -e /etc/mend/mend.yaml || fail "dpkg -r removed mend.yaml"
in_sys test -d /var/lib/mend || fail "dpkg -r removed /var/lib/mend"
in_sys test -e /var/lib/mend/guardrails.json || fail "no guardrail history kept"

step "dpkg --purge: configuration and state gone"
in_sys dpkg --purge mend
in_sys test ! -e /etc/mend || fail "purge left /etc/mend"
in_sys test ! -e /var/lib/mend || fail "purge left /var/lib/mend"
in_sys test ! -e /etc/systemd/system/multi-user.target.wants/mend.service ||
  fail "purge left the enablement symlink"

step "PASS"
