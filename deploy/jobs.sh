#!/bin/sh
# The scheduled jobs of an EKP installation, for a container without cron (compose's `jobs` service):
# the same `ekp` commands as the systemd timers and the README's crontab. Each is safe on many nodes at
# once (rows are claimed), so a second jobs container, or cron on every VM, does no harm.
#   every minute      ekp mail send
#   every 15 minutes  ekp payments reconcile
#   every hour        ekp billing run
set -u
minute=0
while :; do
  ekp mail send || echo "ekp mail send failed" >&2
  if [ $((minute % 15)) -eq 0 ]; then ekp payments reconcile || echo "ekp payments reconcile failed" >&2; fi
  if [ $((minute % 60)) -eq 0 ]; then ekp billing run || echo "ekp billing run failed" >&2; fi
  minute=$(( (minute + 1) % 60 ))
  sleep 60
done
