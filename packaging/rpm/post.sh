# mend %post: as %sysusers_create_package, %tmpfiles_create_package and %systemd_post would.
systemd-sysusers /usr/lib/sysusers.d/mend.conf >/dev/null 2>&1 || :
systemd-tmpfiles --create /usr/lib/tmpfiles.d/mend.conf >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
  # First installation: enabled or not as the distribution's presets say; not started.
  systemctl --no-reload preset mend.service >/dev/null 2>&1 || :
fi
