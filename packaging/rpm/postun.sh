# mend %postun: as %systemd_postun_with_restart would: restart on upgrade.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -ge 1 ]; then
  systemctl try-restart mend.service >/dev/null 2>&1 || :
fi
