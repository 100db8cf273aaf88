#!/bin/sh
# Sets the host name and the domains Postfix receives mail for, then runs it in the foreground.
set -eu
: "${MAIL_HOSTNAME:?set MAIL_HOSTNAME to the host name of your MX record}"
: "${MAIL_DOMAINS:?set MAIL_DOMAINS to the domains this server receives mail for}"
postconf -e "myhostname = $MAIL_HOSTNAME" "virtual_mailbox_domains = $MAIL_DOMAINS"
exec postfix start-fg
