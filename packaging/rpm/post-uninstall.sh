# RPM has no purge: as packaging guidelines ask, `rpm -e` leaves the database
# (/var/lib/ssprd), the administrator's keys and certificates (/etc/ssprd) and the ssprd
# user in place. Remove them by hand when the data is no longer wanted.
systemctl daemon-reload >/dev/null 2>&1 || :
exit 0
