"""Where a fastai step's own cost goes: a near-zero-compute model, so what is left is the training loop.

    .venv/bin/python benchmarks/bench_overhead.py [--n 200] [--reps 5] > benchmarks/bench_overhead.txt

Model: a 10-way linear layer on a 3x4x4 average-pooled image (negligible arithmetic); the same in-memory
batches (fastkd loader, batch 128, no augmentation) for every row; one thread. Per-batch milliseconds of:
a hand-written loop (torch SGD step, cross-entropy); fastai `Learner.fit` with fastkd's `student_learner`
defaults (torch SGD through `OptimWrapper`, one-cycle-free `fit`, accuracy metric, Recorder, bf16 autocast
callback); the same with fastai's own `SGD` optimizer (`opt_func=fastai.optimizer.SGD`); and with a
`LogitDistillCB` whose teacher is another such tiny model. Then a cProfile of the fastai fit: the
functions that take the per-batch time.
"""
import argparse, time, statistics, cProfile, pstats, io
import torch, torch.nn as nn, torch.nn.functional as F
import fastai
from fastai.optimizer import SGD as fastai_SGD
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastkd.all import *
from benchutil import synthetic_dls, machine

p = argparse.ArgumentParser()
p.add_argument('--n', type=int, default=200); p.add_argument('--bs', type=int, default=128); p.add_argument('--reps', type=int, default=5)
a = p.parse_args()
torch.set_num_threads(1); torch.manual_seed(0)
dls = synthetic_dls(a.n, a.bs, augment=False)
def tiny(): return nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 10))
teacher = tiny().eval()

def hand():
    m = tiny(); opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    t = time.perf_counter()
    for xb,yb in dls.train:
        xb,yb = xb.as_subclass(torch.Tensor),yb.as_subclass(torch.Tensor)
        loss = F.cross_entropy(m(xb), yb); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    m.eval()
    with torch.no_grad():
        for xb,yb in dls.valid: F.cross_entropy(m(xb.as_subclass(torch.Tensor)), yb.as_subclass(torch.Tensor))
    return time.perf_counter() - t

def fastai_fit(cbs=(), **kw):
    learn = student_learner(dls, tiny(), **kw)
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=list(cbs))
    return time.perf_counter() - t

cases = {'hand-written loop': hand,
         'fastai fit, student_learner defaults (torch SGD via OptimWrapper, bf16 callback)': fastai_fit,
         'fastai fit, no mixed-precision callback': lambda: fastai_fit(amp=False),
         "fastai fit, fastai's own SGD optimizer": lambda: fastai_fit(opt_func=fastai_SGD),
         'fastai fit + LogitDistillCB (tiny teacher)': lambda: fastai_fit([LogitDistillCB(teacher)]),
         'hand-written loop + KD (tiny teacher)': None}
def hand_kd():
    m = tiny(); opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    t = time.perf_counter()
    for xb,yb in dls.train:
        xb,yb = xb.as_subclass(torch.Tensor),yb.as_subclass(torch.Tensor)
        out = m(xb)
        with torch.no_grad(): tout = teacher(xb)
        loss = F.cross_entropy(out, yb) + kd_loss(out, tout); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    m.eval()
    with torch.no_grad():
        for xb,yb in dls.valid: F.cross_entropy(m(xb.as_subclass(torch.Tensor)), yb.as_subclass(torch.Tensor))
    return time.perf_counter() - t
cases['hand-written loop + KD (tiny teacher)'] = hand_kd

for f in cases.values(): f()
res = {k:[] for k in cases}
for r in range(a.reps):
    for k,f in cases.items(): res[k].append(f())
m = {k:1000*statistics.median(v)/a.n for k,v in res.items()}
print(f'machine: {machine()}; torch {torch.__version__}, fastai {fastai.__version__}; {a.n} batches of {a.bs}, median of {a.reps}')
print('| loop | ms per batch | extra ms per batch vs the hand-written loop |'); print('|---|---|---|')
h = m['hand-written loop']
for k,v in m.items(): print(f'| {k} | {v:.2f} | {v-h:+.2f} |')

pr = cProfile.Profile(); pr.enable(); fastai_fit(); pr.disable()
s = io.StringIO(); st = pstats.Stats(pr, stream=s).sort_stats('tottime'); st.print_stats(18)
print('\ncProfile of one fastai fit with student_learner defaults (tottime, top 18):')
print('\n'.join(l for l in s.getvalue().splitlines() if l.strip() and not l.startswith('   Ordered')))
