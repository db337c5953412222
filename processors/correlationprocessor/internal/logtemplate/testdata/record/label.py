# Labels sampled NGINX and PostgreSQL lines with their true template: the
# call site in NGINX 1.22 / PostgreSQL 15 that printed them (its format
# string; what fills a %s or %d is a parameter). A line no rule matches
# stops the script, so every label was given by a rule written for it.
import re, sys, random, collections
PG = [  # (label, regex on the message after "LEVEL:  "), by PostgreSQL 15 call site
 ("conn-received", r"^LOG:  connection received: host=\S+ port=\d+$"),
 ("conn-authorized", r"^LOG:  connection authorized: user=\S+ database=\S+( application_name=.*)?$"),
 ("disconnection", r"^LOG:  disconnection: session time: \S+ user=\S+ database=\S+ host=\S+ port=\d+$"),
 ("duration-statement", r"^LOG:  duration: [\d.]+ ms  statement: "),
 ("statement", r"^STATEMENT:  "),
 ("ctx-updating-tuple", r'^CONTEXT:  while updating tuple \(\d+,\d+\) in relation "[^"]+"$'),
 ("err-syntax", r'^ERROR:  syntax error at or near "[^"]*" at character \d+$'),
 ("err-relation-missing", r'^ERROR:  relation "[^"]+" does not exist at character \d+$'),
 ("err-check", r'^ERROR:  new row for relation "[^"]+" violates check constraint "[^"]+"$'),
 ("err-unique", r'^ERROR:  duplicate key value violates unique constraint "[^"]+"$'),
 ("err-division", r"^ERROR:  division by zero$"),
 ("err-deadlock", r"^ERROR:  deadlock detected$"),
 ("err-statement-timeout", r"^ERROR:  canceling statement due to statement timeout$"),
 ("detail-lock-holder", r"^DETAIL:  Process(es)? holding the lock: [\d, ]+\. Wait queue: [\d, ]*\.$"),
 ("deadlock-waits", r"^DETAIL:  Process \d+ waits for \w+ on transaction \d+; blocked by process \d+\.$"),
 ("detail-key-exists", r"^DETAIL:  Key \(.*\)=\(.*\) already exists\.$"),
 ("detail-failing-row", r"^DETAIL:  Failing row contains \(.*\)\.$"),
 ("hint-server-log", r"^HINT:  See server log for query details\.$"),
 ("fatal-db-missing", r'^FATAL:  database "[^"]+" does not exist$'),
 ("fatal-role-missing", r'^FATAL:  role "[^"]+" does not exist$'),
 ("deadlock-detected-waiting", r"^LOG:  process \d+ detected deadlock while waiting for \w+ on transaction \d+ after [\d.]+ ms$"),
 ("still-waiting", r"^LOG:  process \d+ still waiting for \w+ on transaction \d+ after [\d.]+ ms$"),
 ("acquired", r"^LOG:  process \d+ acquired \w+ on transaction \d+ after [\d.]+ ms$"),
 ("autoanalyze", r'^LOG:  automatic analyze of table "[^"]+"$'),
 ("autovacuum", r'^LOG:  automatic vacuum of table "[^"]+": index scans: \d+$'),
 ("autovacuum-aggressive", r'^LOG:  automatic aggressive vacuum of table "[^"]+": index scans: \d+$'),
 ("checkpoint-starting", r"^LOG:  checkpoint starting:( [a-z-]+)+$"),
 ("checkpoint-complete", r"^LOG:  checkpoint complete: wrote \d+ buffers"),
 ("temp-file", r'^LOG:  temporary file: path "[^"]+", size \d+$'),
 ("starting", r"^LOG:  starting PostgreSQL "),
 ("listening", r'^LOG:  listening on IPv4 address "[^"]+", port \d+$'),
 ("was-shut-down-at", r"^LOG:  database system was shut down at "),
 ("ready", r"^LOG:  database system is ready to accept connections$"),
 ("is-shut-down", r"^LOG:  database system is shut down$"),
 ("fast-shutdown", r"^LOG:  received fast shutdown request$"),
 ("aborting", r"^LOG:  aborting any active transactions$"),
 ("bgworker-exited", r'^LOG:  background worker "[^"]+" \(PID \d+\) exited with exit code \d+$'),
 ("shutting-down", r"^LOG:  shutting down$"),
]
PGCONT = [  # continuation lines (a tab, then the text of one appendStringInfo call)
 ("c-deadlock-waits", r"^\tProcess \d+ waits for \w+ on transaction \d+; blocked by process \d+\.$"),
 ("c-deadlock-query", r"^\tProcess \d+: "),
 ("c-wal-usage", r"^\tWAL usage: \d+ records, \d+ full page images, \d+ bytes$"),
 ("c-read-rate", r"^\tavg read rate: [\d.]+ MB/s, avg write rate: [\d.]+ MB/s$"),
 ("c-buffer-usage", r"^\tbuffer usage: \d+ hits, \d+ misses, \d+ dirtied$"),
 ("c-index-pages", r'^\tindex "[^"]+": pages: \d+ in total, \d+ newly deleted, \d+ currently deleted, \d+ reusable$'),
 ("c-index-bypassed", r"^\tindex scan bypassed: "),
 ("c-index-needed", r"^\tindex scan needed: "),
 ("c-index-not-needed", r"^\tindex scan not needed: "),
 ("c-relfrozenxid", r"^\tnew relfrozenxid: \d+, which is \d+ XIDs ahead of previous value$"),
 ("c-relminmxid", r"^\tnew relminmxid: \d+, which is \d+ MXIDs ahead of previous value$"),
 ("c-pages", r"^\tpages: \d+ removed, \d+ remain, \d+ scanned \([\d.]+% of total\)$"),
 ("c-removable-cutoff", r"^\tremovable cutoff: \d+, which was \d+ XIDs old when operation ended$"),
 ("c-system-usage", r"^\tsystem usage: CPU: user: [\d.]+ s, system: [\d.]+ s, elapsed: [\d.]+ s$"),
 ("c-tuples-missed", r"^\ttuples missed: "),
 ("c-tuples", r"^\ttuples: \d+ removed, \d+ remain, \d+ are dead but not yet removable"),
]
NGX = [  # nginx 1.22 call sites; the ", client: ..." context is appended by ngx_http_log_error
 ("limit-req", r'limiting requests, excess: [\d.]+ by zone "\w+", client: '),
 ("open-failed", r'open\(\) "[^"]+" failed \(2: No such file or directory\), client: '),
 ("connect-refused", r"connect\(\) failed \(111: Connection refused\) while connecting to upstream, client: "),
 ("forbidden", r"access forbidden by rule, client: "),
 ("event-method", r'using the "\w+" event method$'),
 ("version", r"nginx/[\d.]+$"),
 ("os", r"OS: "),
 ("getrlimit", r"getrlimit\(RLIMIT_NOFILE\): \d+:\d+$"),
 ("start-worker-processes", r"start worker processes$"),
 ("start-worker-process", r"start worker process \d+$"),
 ("signal-from", r"signal \d+ \(\w+\) received from \d+(, [a-z ]+)?$"),
 ("signal", r"signal \d+ \(\w+\) received(, [a-z ]+)?$"),
 ("reconfiguring", r"^reconfiguring$"),
 ("gracefully", r"^gracefully shutting down$"),
 ("exiting", r"^exiting$"),
 ("exit", r"^exit$"),
 ("worker-exited", r"worker process \d+ exited with code \d+$"),
]
def lab(rules, msg, line):
    for l, r in rules:
        if re.search(r, msg): return l
    sys.exit("unlabeled: " + line)
def pg(line):
    if line.startswith("\t"): return lab(PGCONT, line, line)
    m = re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] (\S+@\S+ )?(.*)$", line)
    return lab(PG, m.group(2), line)
def ngx(line):
    m = re.match(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: (\*\d+ )?(.*)$", line)
    return lab(NGX, m.group(2), line)
def write(out, stream, labf, lines):
    with open(out, "w") as f:
        for l in lines:
            assert "\n" not in l
            f.write("%s\t%s\t%s\n" % (stream, labf(l), l))
if __name__ == "__main__":
    # argv: nginx access.log, access.json, error.log, postgres.log (raw)
    from sample import sample
    access, access_json, error_log, pg_log = sys.argv[1:5]
    def method_status(l):
        m = re.search(r'"(\w+) (\S+?)[/?\d ]', l)
        return (m.group(1) if m else '') + (l.split('" ')[1].split()[0] if '" ' in l else '')
    json_status = lambda l: re.search(r'"status":(\d+)', l).group(1)
    write("postgresql.tsv", "postgresql", pg, sample(pg_log, 8, 1))
    write("nginx_error.tsv", "nginx", ngx, sample(error_log, 40, 1))
    acc = re.compile(r'^\S+ - \S+ \[[^\]]+\] "[^"]*" \d{3} \d+ "[^"]*" "[^"]*"$')
    write("nginx_access.tsv", "nginx", lambda l: "combined" if acc.match(l) else sys.exit("bad " + l), sample(access, 30, 2, method_status))
    write("nginx_access_json.tsv", "nginx", lambda l: "junction_json" if l.startswith('{"time":') else sys.exit(l), sample(access_json, 20, 3, json_status))
    for f in ["postgresql.tsv", "nginx_error.tsv"]:
        c = collections.Counter(l.split("\t")[1] for l in open(f))
        print(f, len(c), "true templates", sum(c.values()), "lines")
