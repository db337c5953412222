# Load for the PostgreSQL recording (record.sh): errors of several kinds,
# statement timeouts, unknown databases and roles, lock waits and deadlocks,
# slow queries.
P="psql -h 127.0.0.1 -p 15432 -X -q"
$P -U shop shop -c "CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))" -c "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 100) g ON CONFLICT DO NOTHING"
for i in $(seq 1 25); do
  $P -U shop shop -c "INSERT INTO accounts VALUES ($((RANDOM % 100 + 1)), 5)" 2>/dev/null
  $P -U shop shop -c "SELEC * FROM accounts WHERE id = $i" 2>/dev/null
  $P -U shop shop -c "SELECT * FROM account_$((RANDOM % 9)) WHERE id = $i" 2>/dev/null
  $P -U shop shop -c "SELECT $i / 0" 2>/dev/null
  $P -U shop shop -c "UPDATE accounts SET balance = balance - 5000 WHERE id = $((RANDOM % 100 + 1))" 2>/dev/null
  $P -U shop shop -c "SET statement_timeout = '$((RANDOM % 50 + 20))ms'" -c "SELECT pg_sleep(0.$((RANDOM % 5 + 2)))" 2>/dev/null
  $P -U shop nosuchdb$((RANDOM % 3)) -c "SELECT 1" 2>/dev/null
  $P -U ghost$((RANDOM % 3)) shop -c "SELECT 1" 2>/dev/null
  # lock wait + deadlock
  a=$((RANDOM % 50 + 1)); b=$((a + 50))
  $P -U shop shop -c "BEGIN" -c "UPDATE accounts SET balance = balance + 1 WHERE id = $a" -c "SELECT pg_sleep(0.5)" -c "UPDATE accounts SET balance = balance + 1 WHERE id = $b" -c "COMMIT" 2>/dev/null &
  sleep 0.1
  $P -U shop shop -c "BEGIN" -c "UPDATE accounts SET balance = balance + 1 WHERE id = $b" -c "SELECT pg_sleep(0.5)" -c "UPDATE accounts SET balance = balance + 1 WHERE id = $a" -c "COMMIT" 2>/dev/null &
  wait
  $P -U shop shop -c "SELECT count(*) FROM pgbench_accounts a JOIN pgbench_history h USING (aid) WHERE a.abalance > $i" >/dev/null 2>&1
  $P -U shop shop -c "SELECT aid FROM pgbench_accounts ORDER BY abalance DESC, filler LIMIT $i" >/dev/null 2>&1
done
$P -U postgres postgres -c "CHECKPOINT"
