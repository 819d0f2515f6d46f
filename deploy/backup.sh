#!/usr/bin/env bash
# Back up the EKP database: a compressed custom-format dump (pg_dump -Fc) of EKP_DATABASE_URL.
#
#   deploy/backup.sh FILE            e.g. deploy/backup.sh /var/backups/ekp/ekp-$(date +%F).dump
#
# The database is PostgreSQL's one source of truth: sessions and rate limits (Redis) need no backup, and
# nothing in var/ does when EKP_SECRET_KEY, EKP_PESEL_KEY and EKP_TICKET_KEYS are set (keep those in the
# secret store: without EKP_PESEL_KEY the dump's PESEL data cannot be read). Restore: deploy/restore.sh.
# PG_BIN may name the directory of pg_dump matching the server's version (default: the newest installed).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 FILE  (EKP_DATABASE_URL=postgresql://... in the environment)" >&2; exit 2; }
url=${EKP_DATABASE_URL:?EKP_DATABASE_URL is not set}
url=${url/postgresql+psycopg:/postgresql:}
url=${url/postgres:/postgresql:}
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
tmp="$1.partial"
"${bin:+$bin/}pg_dump" --format=custom --no-owner --no-privileges --file="$tmp" "$url"
mv "$tmp" "$1"
echo "backup written: $1"
