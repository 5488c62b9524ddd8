"""Where the time of a training batch goes: torch.profiler tables of fastkd's expensive methods (and logit KD for comparison).

    .venv/bin/python benchmarks/profile_zoo.py [--only logit nst vid crd reviewkd] [--bs 128] [--steps 3] [--out benchmarks/profile_zoo_cpu.txt]

The setting of `bench_zoo.py` (resnet20 teacher, resnet8 student in `student_learner`, random uint8 images through the
fastkd loader, a training set of 45,056 samples, one torch thread, the precision of `benchutil.bench_precision`):
each experiment is one `fit(1)` of `warm + steps` training batches, the last `steps` profiled, then cancelled.
The table lists the operators with the most self CPU time (their own time, without the operators they call).
"""
import argparse, os, sys, time
import torch
from torch.profiler import profile, ProfilerActivity
import fastai
from fastai.callback.core import Callback, CancelFitException
from fastkd.all import *
from fastkd.suite.registry import EXPERIMENTS
from benchutil import synthetic_dls, machine, bench_precision, bench_student

p = argparse.ArgumentParser()
p.add_argument('--only', nargs='+', default=['logit', 'nst', 'vid', 'crd', 'reviewkd'])
p.add_argument('--bs', type=int, default=128); p.add_argument('--warm', type=int, default=2); p.add_argument('--steps', type=int, default=3)
p.add_argument('--n_train', type=int, default=45056); p.add_argument('--rows', type=int, default=12)
p.add_argument('--precision', choices=['auto', 'bf16', 'fp32'], default='auto')
p.add_argument('--out', default=None)
a = p.parse_args()
torch.set_num_threads(1); torch.manual_seed(0)
prec = bench_precision(a.precision)
dls = synthetic_dls(a.n_train//a.bs, a.bs)
teacher = resnet20().eval().to(memory_format=torch.channels_last)

class Prof(Callback):
    "Profile training batches warm..warm+steps-1, then stop"
    order = 200
    def __init__(self, warm, steps): self.warm,self.steps,self.prof = warm,steps,None
    def before_batch(self):
        if self.training and self.iter == self.warm:
            self.prof = profile(activities=[ProfilerActivity.CPU]); self.prof.__enter__(); self.t0 = time.process_time()
    def after_batch(self):
        if self.training and self.iter == self.warm + self.steps - 1:
            self.secs = (time.process_time() - self.t0)/self.steps
            self.prof.__exit__(None, None, None); raise CancelFitException()

out = [f'machine: {machine()}; torch {torch.__version__}, fastai {fastai.__version__}; {prec}; bs {a.bs}; {a.steps} profiled training batches after {a.warm}',
       'command: .venv/bin/python ' + ' '.join(sys.argv), '']
for e in a.only:
    learn = bench_student(dls, 'resnet8', prec); cbs = EXPERIMENTS[e](teacher, learn.model)
    pr = Prof(a.warm, a.steps)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=cbs + [pr])
    ka = pr.prof.key_averages()
    tot = sum(k.self_cpu_time_total for k in ka)
    out += [f'## {e}: {1000*pr.secs:.0f} ms CPU per batch (profiled), {", ".join(type(c).__name__ for c in cbs) or "no callback"}', '',
            '| operator | self CPU ms per batch | % of the batch | calls per batch |', '|---|---|---|---|']
    for k in sorted(ka, key=lambda k: -k.self_cpu_time_total)[:a.rows]:
        out.append(f'| {k.key} | {k.self_cpu_time_total/1000/a.steps:.1f} | {100*k.self_cpu_time_total/tot:.1f} | {k.count/a.steps:g} |')
    out.append('')
    print(f'{e} done', file=sys.stderr, flush=True)
text = '\n'.join(out) + '\n'
print(text, end='')
if a.out: open(a.out, 'w').write(text)
