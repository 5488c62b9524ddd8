"""Cost of each experiment of the `cpu` preset relative to logit KD, and where the time goes.

    .venv/bin/python benchmarks/bench_experiments.py [--n 12] [--reps 3] [--only classic] > benchmarks/bench_experiments.txt
    .venv/bin/python benchmarks/bench_experiments.py --profile cosine      # torch.profiler table of one fit

The suite's settings (resnet20 teacher, resnet8 student, batch 256, bf16 autocast + channels-last on the CPU,
the experiments' callbacks and weights from `fastkd.suite.registry`), N batches of random uint8 images through
the fastkd loader; one `fit(1)` per run, runs interleaved, median of `reps`.
"""
import argparse, time, statistics
import torch
from fastkd.all import *
from benchutil import synthetic_dls, machine
from fastkd.suite.registry import EXPERIMENTS, select_experiments

p = argparse.ArgumentParser()
p.add_argument('--n', type=int, default=12); p.add_argument('--bs', type=int, default=256)
p.add_argument('--reps', type=int, default=3); p.add_argument('--profile', default=None)
p.add_argument('--only', nargs='+', default=['classic'], help='experiments or groups of the suite (default: classic)')
a = p.parse_args()
torch.manual_seed(0)
dls = synthetic_dls(a.n, a.bs)
teacher = resnet20().eval()

def run(e):
    learn = student_learner(dls, 'resnet8'); cbs = EXPERIMENTS[e](teacher, learn.model)
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=cbs)
    return time.perf_counter() - t

if a.profile:
    from torch.profiler import profile, ProfilerActivity
    run(a.profile)
    learn = student_learner(dls, 'resnet8'); cbs = EXPERIMENTS[a.profile](teacher, learn.model)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=cbs)
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=15))
    raise SystemExit

exps = select_experiments(a.only)
for e in exps: run(e)   # warm-up
res = {e:[] for e in exps}
for r in range(a.reps):
    for e in exps: res[e].append(run(e))
m = {e:statistics.median(v) for e,v in res.items()}
print(f'machine: {machine()}; torch {torch.__version__}; {a.n} batches of {a.bs}, median of {a.reps}')
print('| experiment | ms per training batch (one fit: N batches + 1 validation batch, over N) | / baseline | / logit KD |'); print('|---|---|---|---|')
for e in exps: print(f'| {e} | {1000*m[e]/a.n:.0f} | {m[e]/m["baseline"]:.2f} | {m[e]/m["logit"]:.2f} |')
