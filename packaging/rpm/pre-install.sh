# Creates the ssprd system user and group before the files are laid down.
getent group ssprd >/dev/null || groupadd --system ssprd
getent passwd ssprd >/dev/null || useradd --system --gid ssprd --home-dir /var/lib/ssprd \
    --no-create-home --shell /sbin/nologin --comment "ssprd password reset daemon" ssprd
exit 0
