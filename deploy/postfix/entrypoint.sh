#!/bin/sh
# Sets the host name and the mailboxes Postfix receives mail for, then runs it in the foreground.
set -eu
: "${MAIL_HOSTNAME:?set MAIL_HOSTNAME to the host name of your MX record}"
: "${MAIL_ACCOUNTS:?set MAIL_ACCOUNTS to the mailboxes this server receives mail for (user@domain, space-separated)}"
: >/etc/postfix/vmailbox
for account in $MAIL_ACCOUNTS; do
  printf '%s %s/%s/\n' "$account" "${account#*@}" "${account%@*}" >>/etc/postfix/vmailbox
done
postmap /etc/postfix/vmailbox
domains=$(for account in $MAIL_ACCOUNTS; do echo "${account#*@}"; done | sort -u | tr '\n' ' ')
postconf -e "myhostname = $MAIL_HOSTNAME" "virtual_mailbox_domains = $domains"
exec postfix start-fg
