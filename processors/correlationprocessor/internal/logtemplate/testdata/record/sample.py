# Stratified, seeded sample of a log: at most per_group lines of each rough
# shape (digits folded, header cut, first 48 characters), in log order.
import re, random, sys, collections
def crude(line):
    s = re.sub(r'[0-9]+', 'N', line)
    s = re.sub(r'^N-N-N N:N:N\.N UTC \[N\] ', '', s)
    s = re.sub(r'^N/N/N N:N:N ', '', s)
    return s[:48]
def sample(path, per_group, seed, keyf=crude):
    lines = open(path).read().splitlines()
    groups = collections.defaultdict(list)
    for i, l in enumerate(lines):
        groups[keyf(l)].append(i)
    rnd = random.Random(seed)
    keep = set()
    for k in sorted(groups):
        idx = groups[k]
        keep.update(rnd.sample(idx, min(per_group, len(idx))))
    return [lines[i] for i in sorted(keep)]
