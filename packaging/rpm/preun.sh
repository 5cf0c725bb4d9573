# mend %preun: as %systemd_preun would: stop and disable on removal, not on upgrade.
if [ "$1" -eq 0 ]; then
  systemctl --no-reload disable --now mend.service >/dev/null 2>&1 || :
fi
