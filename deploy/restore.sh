#!/usr/bin/env bash
# Restore a dump made by deploy/backup.sh into an EMPTY database (create it first, e.g. `createdb ekp_restored`),
# then point EKP_DATABASE_URL at it and start EKP (`ekp db upgrade` brings an older dump's schema up to date).
#
#   deploy/restore.sh FILE postgresql://user@host/ekp_restored
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 FILE DATABASE_URL" >&2; exit 2; }
url=${2/postgresql+psycopg:/postgresql:}
url=${url/postgres:/postgresql:}
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
"${bin:+$bin/}pg_restore" --no-owner --no-privileges --exit-on-error --single-transaction --dbname="$url" "$1"
echo "restored $1 into the database"
