# The configuration directory: root-owned, readable by the daemon's group only.
install -d -m 0750 -o root -g ssprd /etc/ssprd /etc/ssprd/tls
chgrp ssprd /etc/ssprd/ssprd.toml
systemctl daemon-reload >/dev/null 2>&1 || :
exit 0
