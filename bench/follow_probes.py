#!/usr/bin/env python3
"""Follows each probe of a lockstep_postgres_bench replication run through the hops, from the
batch trace (LOCKSTEP_TRACE_BATCHES=DIR/t) and the probe log (--probe-log DIR/probes): the source's
read (stamping round, log page, durability), the hub's apply (merge, commit), the hub's read for
the replica, the replica's apply (merge, commit), the watcher. Probes are matched to batches by
counting the probe table's records each hop carries (they are inserted once, in order). Prints,
per replica, each stage's median, mean, p90 and max, the slowest probes, and the mean of each
stage over the slowest 10 %. One Lockstep run per directory (--runs 1).

usage: bench/follow_probes.py DIR [probe-log prefix, default "Lockstep"]"""
import glob, re, sys, statistics, collections

PROBE = 'lockstep_bench_probe'
d = sys.argv[1]
who_filter = sys.argv[2] if len(sys.argv) > 2 else 'Lockstep'

lines = []
for f in glob.glob(d + '/t.*'):
    pid = f.rsplit('.', 1)[1]
    for l in open(f):
        parts = l.split()
        if len(parts) < 4:
            continue
        rec = {'t': int(parts[0]), 'who': parts[1], 'what': parts[2], 'pid': pid}
        for p in parts[3:]:
            if '=' in p:
                k, v = p.split('=', 1)
                rec[k] = v
        rec['n'] = int(rec['n'])
        probes = 0
        for c in rec.get('cols', '').split(','):
            if c.startswith(PROBE + ':'):
                probes = int(c.split(':')[1])
        rec['probes'] = probes
        lines.append(rec)
lines.sort(key=lambda r: r['t'])


def role(who):
    if who.endswith('hub.db'):
        return 'hub'
    if who.endswith('edge.db'):
        return 'sqlite'
    if '/replication_' in who:
        return 'source'
    return 'pgnode'


for r in lines:
    r['role'] = role(r['who'])

# Only the last run's processes (one Lockstep run per trace dir expected).
probes = {}  # replica -> list of (committed, seen)
for l in open(d + '/probes'):
    if not l.startswith(who_filter):
        continue
    m = re.match(r'(.*) probe=(\d+) committed=([\d.]+) seen=([\d.]+) lag_ms=([\d.-]+)', l)
    who = m.group(1)
    probes.setdefault(who, []).append((int(m.group(2)), float(m.group(3)), float(m.group(4))))


def cumulative(recs):
    """[(first_probe, last_probe, rec)] over records carrying probes, in order."""
    out = []
    cum = 0
    for r in recs:
        if r['probes']:
            out.append((cum + 1, cum + r['probes'], r))
            cum += r['probes']
    return out


def find(cum, i):
    for a, b, r in cum:
        if a <= i <= b:
            return r
    return None


src_reads = cumulative([r for r in lines if r['role'] == 'source' and r['what'] == 'read'])
hub_applies = cumulative([r for r in lines if r['role'] == 'hub' and r['what'] == 'apply-end'])
hub_reads_by_peer = collections.defaultdict(list)
for r in lines:
    if r['role'] == 'hub' and r['what'] == 'read':
        hub_reads_by_peer[r['peer']].append(r)
rep_applies = {}
for rl in ('pgnode', 'sqlite'):
    rep_applies[rl] = cumulative([r for r in lines if r['role'] == rl and r['what'] == 'apply-end'])
# Which hub peer is which replica: the same sequence of batch sizes.
peer_of = {}
for rl in ('pgnode', 'sqlite'):
    seq = [r['n'] for r in lines if r['role'] == rl and r['what'] == 'apply-end' and r['n'] > 0]
    best = None
    for peer, reads in hub_reads_by_peer.items():
        s2 = [r['n'] for r in reads if r['n'] > 0]
        score = sum(1 for a, b in zip(seq, s2) if a == b)
        if best is None or score > best[0]:
            best = (score, peer)
    peer_of[rl] = best[1]
hub_reads = {rl: cumulative(hub_reads_by_peer[peer_of[rl]]) for rl in peer_of}


def f(x):
    return float(x)


stage_names = ['wait_src', 'src_stamp', 'src_page+dur', 'to_hub', 'hub_apply', 'hub_commit',
               'hub_wait_read', 'hub_stamp', 'hub_page', 'hub_durable', 'to_replica',
               'rep_apply', 'rep_commit', 'to_seen']
for who, plist in probes.items():
    rl = 'sqlite' if 'SQLite' in who else 'pgnode'
    rows = []
    for i, c, s in plist:
        sr = find(src_reads, i)
        ha = find(hub_applies, i)
        hr = find(hub_reads[rl], i)
        ra = find(rep_applies[rl], i)
        if not (sr and ha and hr and ra):
            continue
        # Times: a read line is written at its end; stamp_ms is the whole read.
        sr_end = sr['t']
        sr_start = sr_end - f(sr['stamp_ms'])
        sr_stamped = sr_end - f(sr['page_ms'])
        ha_end = ha['t']
        ha_start = ha_end - f(ha['ms'])
        hr_end = hr['t']
        hr_start = hr_end - f(hr['stamp_ms'])
        hr_stamped = hr_end - f(hr['page_ms'])
        hr_paged = hr_end - f(hr['durable_ms'])
        ra_end = ra['t']
        ra_start = ra_end - f(ra['ms'])
        st = {
            'wait_src': sr_start - c,
            'src_stamp': sr_stamped - sr_start,
            'src_page+dur': sr_end - sr_stamped,
            'to_hub': ha_start - sr_end,
            'hub_apply': f(ha['ms']) - f(ha['commit_ms']),
            'hub_commit': f(ha['commit_ms']),
            'hub_wait_read': hr_start - ha_end,
            'hub_stamp': hr_stamped - hr_start,
            'hub_page': hr_paged - hr_stamped,
            'hub_durable': hr_end - hr_paged,
            'to_replica': ra_start - hr_end,
            'rep_apply': f(ra['ms']) - f(ra['commit_ms']),
            'rep_commit': f(ra['commit_ms']),
            'to_seen': s - ra_end,
        }
        rows.append((s - c, i, st, sr, ha, hr, ra))
    print('==', who, len(rows), 'probes followed of', len(plist))
    lags = sorted(r[0] for r in rows)
    print('lag p50 %.0f p90 %.0f p99 %.0f max %.0f' % (
        lags[len(lags) // 2], lags[int(len(lags) * .9)], lags[int(len(lags) * .99) - 1], lags[-1]))
    print('%-14s %8s %8s %8s %8s' % ('stage', 'median', 'mean', 'p90', 'max'))
    for k in stage_names:
        v = sorted(r[2][k] for r in rows)
        print('%-14s %8.1f %8.1f %8.1f %8.1f' % (k, v[len(v) // 2], statistics.mean(v),
                                                v[int(len(v) * .9)], v[-1]))
    print('worst 8 probes (ms per stage):')
    print('probe  lag ' + ' '.join('%9s' % k[:9] for k in stage_names))
    for lag, i, st, sr, ha, hr, ra in sorted(rows, key=lambda r: -r[0])[:8]:
        print('%5d %5.0f ' % (i, lag) + ' '.join('%9.0f' % st[k] for k in stage_names),
              ' n: src %d hub %d rd %d rep %d' % (sr['n'], ha['n'], hr['n'], ra['n']))
    # Share of each stage in the slowest 10 % of probes, and in all.
    rs = sorted(rows, key=lambda r: -r[0])
    top = rs[:max(1, len(rs) // 10)]
    print('mean ms per stage, slowest 10%% (%d probes, mean lag %.0f) / all (mean lag %.0f):' % (
        len(top), statistics.mean(r[0] for r in top), statistics.mean(r[0] for r in rs)))
    print('  ' + ', '.join('%s %.0f/%.0f' % (k, statistics.mean(r[2][k] for r in top),
                                            statistics.mean(r[2][k] for r in rs)) for k in stage_names))
