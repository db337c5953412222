# Samples the scenario dump (stdin, from ./scenarios) into scenarios.tsv:
# stream<TAB>label<TAB>line. The label is the log call's code.function.name
# (one format string each in scenarios/gen*.go), "xchain-message" for the
# relayer's "message <id> <stage>" lines, the two formats of the Postgres
# server log, and one label per distinct db.query.text. Proxy access logs
# (edge-proxy) are left out: Junction counts them as proxy requests and
# mines no template from them.
import random, collections, re, sys
rows, qid = [], {}
for line in sys.stdin:
    f = line.rstrip('\n').split('\t')
    if f[0] == 'Q':
        qid.setdefault(f[1], 'query-%d' % (len(qid) + 1))
        rows.append(('database', qid[f[1]], f[1]))
        continue
    _, svc, fn, body = f
    if svc == 'edge-proxy':
        continue
    if svc == 'hermes' and fn == '':
        assert re.match(r'^message \S+ \w+$', body), body
        fn = 'xchain-message'
    if svc == 'postgresql':
        fn = 'lock-wait' if body.startswith('process ') else 'duration-statement' if body.startswith('duration: ') else None
    assert fn, line
    rows.append((svc, fn, body))
groups = collections.defaultdict(list)
for i, (s, l, b) in enumerate(rows):
    groups[(s, l, b.split()[2] if l == 'xchain-message' else '')].append(i)
rnd = random.Random(4)
keep = set()
for k in sorted(groups):
    keep.update(rnd.sample(groups[k], min(12 if k[1] == 'xchain-message' else 25, len(groups[k]))))
with open('scenarios.tsv', 'w') as out:
    for i in sorted(keep):
        out.write('%s\t%s\t%s\n' % rows[i])
