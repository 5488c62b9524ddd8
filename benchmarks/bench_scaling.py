"""How the per-batch cost of each method grows with the batch size and with the number of hooked stages (fastkd only).

    .venv/bin/python benchmarks/bench_scaling.py [--warm 1] [--steps 2] [--reps 1] [--out benchmarks/bench_scaling_cpu.txt]

The setting of `bench_zoo.py` (resnet20 teacher, resnet8 student in `student_learner`, random uint8 images through the
fastkd loader, a training set of 45,056 samples, one torch thread, CPU time, the precision of `benchutil.bench_precision`).
1. Every experiment of the suite at batch sizes 64, 128 and 256: ms per training batch, and relative to logit KD at the
   same batch size. 2. The multi-layer experiments with their deepest k layer pairs only (k = 1, 2, ...; the suite's
   setting is the largest k), at batch size 128. Each case is one `fit(1)` timed over `steps` training batches after
   `warm` ones; after one untimed logit-KD fit per batch size, cases run round-robin, `reps` rounds, and the median is reported (the ratios within a round).
"""
import argparse, os, sys, time, statistics
import torch
import fastai
from fastai.callback.core import Callback, CancelFitException
from fastkd.all import *
from fastkd.suite.registry import EXPERIMENTS, select_experiments
from benchutil import synthetic_dls, machine, bench_precision, bench_student

p = argparse.ArgumentParser()
p.add_argument('--warm', type=int, default=1); p.add_argument('--steps', type=int, default=2); p.add_argument('--reps', type=int, default=1)
p.add_argument('--bs', type=int, nargs='+', default=[64, 128, 256]); p.add_argument('--n_train', type=int, default=45056)
p.add_argument('--only', nargs='+', default=['classic', 'zoo'])
p.add_argument('--precision', choices=['auto', 'bf16', 'fp32'], default='auto'); p.add_argument('--out', default=None)
a = p.parse_args()
torch.set_num_threads(1); torch.manual_seed(0)
prec = bench_precision(a.precision)
teacher = resnet20().eval().to(memory_format=torch.channels_last)
dls = {bs: synthetic_dls(a.n_train//bs, bs) for bs in a.bs}
MULTI = {'cosine': 1, 'attention': 1, 'nst': 1, 'vid': 1, 'reviewkd': 1, 'ofd': 1, 'ab': 1, 'fsp': 2}   # smallest k

class BatchTimer(Callback):
    order = 200
    def __init__(self, warm, steps): self.warm,self.steps,self.secs = warm,steps,None
    def after_batch(self):
        if not self.training: return
        if self.iter == self.warm - 1: self.t0 = time.process_time()
        elif self.iter == self.warm + self.steps - 1:
            self.secs = (time.process_time() - self.t0)/self.steps; raise CancelFitException()

def case(e, bs, k=None):
    learn = bench_student(dls[bs], 'resnet8', prec); cbs = EXPERIMENTS[e](teacher, learn.model)
    if k is not None:   # the deepest k layer pairs only
        for cb in cbs: cb.student_layers,cb.teacher_layers = cb.student_layers[-k:],cb.teacher_layers[-k:]
    tm = BatchTimer(a.warm, a.steps)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=cbs + [tm])
    return tm.secs

exps = select_experiments(a.only)
if 'logit' not in exps: exps.insert(1, 'logit')
n_pairs = {e: len(EXPERIMENTS[e](teacher, resnet8())[0].student_layers) if EXPERIMENTS[e](teacher, resnet8()) else 0 for e in exps}
cases = {(e, bs, None): (e, bs, None) for bs in a.bs for e in exps}
for e,k0 in MULTI.items():
    if e in exps:
        for k in range(k0, n_pairs[e]): cases[(e, 128, k)] = (e, 128, k)
secs = {c: [] for c in cases}
t_all = time.perf_counter()
for bs in a.bs: case('logit', bs)   # untimed: first-call costs (kernel selection, allocator growth) stay out of the table
for r in range(a.reps):
    for c in cases: secs[c].append(case(*c))
    print(f'round {r+1}/{a.reps} done, {time.perf_counter() - t_all:.0f} s', file=sys.stderr, flush=True)
med = statistics.median
def rel(c, bs): return med([x/y for x,y in zip(secs[c], secs[('logit', bs, None)])])
load = os.getloadavg()
lines = [f'machine: {machine()}; torch {torch.__version__}, fastai {fastai.__version__}; {prec}; {a.warm} warm-up + {a.steps} timed batches per case, '
         f'{a.reps} round(s), cpu time; {time.perf_counter() - t_all:.0f} s wall, {time.process_time():.0f} s CPU in all; load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}',
         'command: .venv/bin/python ' + ' '.join(sys.argv), '',
         '| experiment | ' + ' | '.join(f'ms per batch, bs {bs}' for bs in a.bs) + ' | ' + ' | '.join(f'/ logit KD, bs {bs}' for bs in a.bs) + ' | ms per sample, bs ' + f'{a.bs[0]} → {a.bs[-1]} |',
         '|---|' + '---|'*(2*len(a.bs) + 1)]
for e in exps:
    ms = [1000*med(secs[(e, bs, None)]) for bs in a.bs]
    lines.append(f'| {e} | ' + ' | '.join(f'{m:.0f}' for m in ms) + ' | ' + ' | '.join(f'{rel((e, bs, None), bs):.2f}' for bs in a.bs) +
                 f' | {ms[0]/a.bs[0]:.2f} → {ms[-1]/a.bs[-1]:.2f} |')
kmax = max(n_pairs[e] for e in MULTI if e in exps)
lines += ['', '| experiment (bs 128) | ' + ' | '.join(f'{k} pair{"s" if k > 1 else ""}' for k in range(1, kmax + 1)) + ' |', '|---|' + '---|'*kmax]
for e in MULTI:
    if e not in exps: continue
    row = []
    for k in range(1, kmax + 1):
        c = (e, 128, None if k == n_pairs[e] else k)
        row.append(f'{1000*med(secs[c]):.0f} ms ({rel(c, 128):.2f}×)' if c in secs and k <= n_pairs[e] else '')
    lines.append(f'| {e} | ' + ' | '.join(row) + ' |')
lines.append('')
lines.append('The suite\'s setting is the last filled column; × is relative to logit KD at bs 128. Layers: the deepest k of the experiment\'s pairs (ReviewKD: of its 3 stages + pooled feature; FSP: of stem + 3 stages, at least 2).')
text = '\n'.join(lines) + '\n'
print(text, end='')
if a.out: open(a.out, 'w').write(text)
