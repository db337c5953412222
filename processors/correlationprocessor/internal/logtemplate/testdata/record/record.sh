#!/usr/bin/env bash
# Records the corpus again: runs the scenario simulator, Debian's nginx and
# PostgreSQL 15 (as the postgres user when run as root), drives load through
# them, then samples and labels the logs into ../*.tsv. A new recording
# differs from the committed one (times, pids, which requests were shed);
# TestQuality's figures are for the committed corpus.
# Needs: go, python3, nginx, postgresql (initdb, pg_ctl, psql, pgbench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../../../.." && pwd)
work=$(mktemp -d /tmp/logtemplate-record.XXXXXX)
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }

# Scenarios.
(cd "$repo" && go run ./processors/correlationprocessor/internal/logtemplate/testdata/record/scenarios) > "$work/scenarios.dump"

# NGINX: a proxy on 127.0.0.1:18080 in front of an upstream on :18081.
ngx="$work/nginx"
mkdir -p "$ngx/tmp" "$ngx/html/static"
echo ok > "$ngx/html/static/ok.txt"
echo hi > "$ngx/html/index.html"
sed "s#/tmp/ngx#$ngx#g" "$here/nginx.conf" > "$ngx/nginx.conf"
nginx -p "$ngx" -c "$ngx/nginx.conf"
sleep 0.5
python3 "$here/nginx_load.py"
kill -HUP "$(cat "$ngx/nginx.pid")"
sleep 1
python3 "$here/nginx_load.py"
kill -QUIT "$(cat "$ngx/nginx.pid")"
sleep 1

# PostgreSQL on 127.0.0.1:15432.
pg="$work/pg"
mkdir -p "$pg"
[ "$(id -u)" = 0 ] && chown postgres "$pg"
as_pg "$pgbin/initdb -D $pg/data -U postgres --auth=trust -E UTF8 --no-locale --no-sync" > /dev/null
cat "$here/postgresql.conf.append" >> "$pg/data/postgresql.conf"
as_pg "$pgbin/pg_ctl -D $pg/data -l $pg/postgres.log -w start" > /dev/null
psql -h 127.0.0.1 -p 15432 -U postgres -X -q -c "CREATE ROLE shop LOGIN" -c "CREATE DATABASE shop OWNER shop"
pgbench -h 127.0.0.1 -p 15432 -U shop -i -s 5 shop > /dev/null 2>&1
pgbench -h 127.0.0.1 -p 15432 -U shop -c 8 -j 2 -T 15 -C shop > /dev/null 2>&1
bash "$here/postgres_load.sh" > /dev/null 2>&1
as_pg "$pgbin/pg_ctl -D $pg/data -m fast -w stop" > /dev/null

cd "${OUT:-$here/..}"
python3 "$here/sample_scenarios.py" < "$work/scenarios.dump"
PYTHONPATH="$here" python3 "$here/label.py" "$ngx/access.log" "$ngx/access.json" "$ngx/error.log" "$pg/postgres.log"
rm -rf "$work"
