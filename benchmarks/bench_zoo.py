"""Every method of the suite against a hand-written loop computing its term with the reference implementation's code, and its cost relative to logit KD.

    nice -n 10 .venv/bin/python benchmarks/bench_zoo.py [--warm 2] [--steps 5] [--reps 5] [--bs 128] [--precision auto] [--out benchmarks/bench_zoo_cpu.txt]

Teacher `resnet20` (channels-last, as the suite's trained teacher), student `resnet8` in `student_learner`, random uint8
32x32 images through the fastkd loader, a training set of `--n_train` samples (CRD's memory bank and negatives are sized by
it; only `warm + steps` batches are drawn). Precision: bf16 autocast + channels-last (fastkd's CPU default) where the CPU
runs bf16 natively, else fp32 + channels-last (`--precision auto`; without AVX-512 bf16/AMX, bf16 convolutions are emulated
and ~10x slower than fp32), the same on both sides. Each fastkd case is one `fit(1)` with the callbacks of
`EXPERIMENTS[name](teacher, student)` (groups `classic` and `zoo`, their settings), timed over `steps` training batches after
`warm` ones, then cancelled. Each hand-written case is a plain PyTorch loop with the same models, loader, optimizer,
precision and forward hooks on the same layers, its term computed by the reference implementation's code for the term and
its trainable modules (`reference_terms.py`: mdistiller, RepDistiller, the authors' repositories), with the callback's
settings. After a warm-up round, cases run round-robin, `reps` rounds; a ratio is taken within a round (a change of load
hits both sides alike) and its median over rounds is reported, with its range.
By default one torch thread and the process's CPU time: on a machine shared with other work, elapsed time measures the
scheduler more than the step (`--threads 0 --clock wall` on an idle machine measures what a user waits).
"""
import argparse, contextlib, os, sys, time, statistics
import torch, torch.nn as nn, torch.nn.functional as F
import fastai
from fastai.callback.core import Callback, CancelFitException
from fastkd.all import *
from fastkd.suite.registry import EXPERIMENTS, select_experiments, add_experiment
from benchutil import synthetic_dls, machine, bench_precision, bench_student
from reference_terms import references

p = argparse.ArgumentParser()
p.add_argument('--warm', type=int, default=2, help='untimed training batches at the start of each case')
p.add_argument('--steps', type=int, default=5, help='timed training batches of each case')
p.add_argument('--reps', type=int, default=5, help='rounds over all cases')
p.add_argument('--bs', type=int, default=128)
p.add_argument('--n_train', type=int, default=45056, help='training-set size (CIFAR-10 train split: 45,000)')
p.add_argument('--only', nargs='+', default=['classic', 'zoo'], help='experiments or groups of the suite')
p.add_argument('--no-hand', action='store_true', help='leave the hand-written loops out')
p.add_argument('--threads', type=int, default=1, help='torch threads (0: torch\'s default)')
p.add_argument('--clock', choices=['cpu', 'wall'], default='cpu', help="'cpu': the process's CPU time (robust to other load on the machine with 1 thread); 'wall': elapsed time")
p.add_argument('--precision', choices=['auto', 'bf16', 'fp32'], default='auto', help="'auto': bf16 autocast + channels-last where the CPU runs bf16 natively, else fp32 + channels-last (both sides alike)")
p.add_argument('--variants', action='store_true', help="also time, where their base experiment is selected, `reviewkd_fusion_amp`: ReviewKD with `fusion_amp=True` (the fusion modules under the training's autocast, as the references run them), and `crd_bf16_scores`: CRD with `score_dtype=torch.bfloat16` (the hand-written side keeps the reference's fp32)")
p.add_argument('--out', default=None, help='also write the output to this file')
a = p.parse_args()
assert a.warm >= 1 and a.steps >= 1, 'expected --warm >= 1 and --steps >= 1'
if a.threads: torch.set_num_threads(a.threads)
clock = time.process_time if a.clock == 'cpu' else time.perf_counter
torch.manual_seed(0)
cl = torch.channels_last
dls = synthetic_dls(a.n_train//a.bs, a.bs)
prec = bench_precision(a.precision)
labels = dls.train.dataset.y.long()   # CRD's negatives: other classes
teacher = resnet20().eval().to(memory_format=cl)

class BatchTimer(Callback):
    "Seconds per training batch over batches `warm`..`warm+steps-1` (each with its loading and every callback event), then stop the fit"
    order = 200   # its `after_batch` runs after every other callback's
    def __init__(self, warm, steps): self.warm,self.steps,self.secs = warm,steps,None
    def after_batch(self):
        if not self.training: return
        if self.iter == self.warm - 1: self.t0 = clock()
        elif self.iter == self.warm + self.steps - 1:
            self.secs = (clock() - self.t0)/self.steps; raise CancelFitException()

def fastkd_case(exp, warm, steps):
    learn = bench_student(dls, 'resnet8', prec); cbs = EXPERIMENTS[exp](teacher, learn.model)
    tm = BatchTimer(warm, steps)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=cbs + [tm])
    return tm.secs

def hand_case(exp, warm, steps):
    """A plain loop: student fwd+bwd, teacher fwd under no_grad (bf16 autocast where `prec` is bf16), forward hooks on the
    experiment's layers, CE + the experiment's term(s) computed by the reference code (`reference_terms.py`) on fp32
    logits/features, its trainable modules optimized with the student, SGD step"""
    s = resnet8().to(memory_format=cl).train(); t_ = teacher.requires_grad_(False)
    cbs = EXPERIMENTS[exp](teacher, s)
    refs = [references(cb, s, t_, labels) for cb in cbs]
    mods = nn.ModuleList([r.modules for r in refs if r.modules is not None]).train()
    so,to_,hs = {},{},[]
    for m,store,names in ((s, so, {n for cb in cbs for n in cb.student_layers}), (t_, to_, {n for cb in cbs for n in cb.teacher_layers})):
        hs += [m.get_submodule(n).register_forward_hook(lambda _m,i,o,n=n,d=store: d.__setitem__(n, o)) for n in names]
    opt = torch.optim.SGD([*s.parameters(), *mods.parameters()], lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    it = iter(dls.train)
    for i in range(warm + steps):
        if i == warm: t0 = clock()
        xb,yb = next(it)
        xb = xb.as_subclass(torch.Tensor).contiguous(memory_format=cl); yb = yb.as_subclass(torch.Tensor)
        idx = torch.randint(0, len(labels), (len(yb),))   # stands in for the batch's sample indices (CRD)
        with (torch.autocast('cpu', dtype=torch.bfloat16) if prec == 'bf16' else contextlib.nullcontext()):
            out = s(xb)
            if refs:
                with torch.no_grad(): tout = t_(xb)
        out = out.float(); loss = F.cross_entropy(out, yb)
        for cb,r in zip(cbs, refs):
            fs,ft = [so[n].float() for n in cb.student_layers],[to_[n].float() for n in cb.teacher_layers]
            loss = loss + r.loss(out, tout.float(), yb, fs, ft, idx)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        so.clear(); to_.clear()
    el = (clock() - t0)/steps
    for h in hs: h.remove()
    t_.requires_grad_(True)
    return el

exps = select_experiments(a.only)
if 'logit' not in exps: exps.insert(1, 'logit')
if a.variants:   # not suite experiments: registered here only, with their base experiment's settings, for the base experiments selected
    from fastkd.methods.reviewkd import ReviewKDCB
    from fastkd.methods.crd import CRDCB
    from fastkd.layers import stage_names
    if 'reviewkd' in exps:
        r = EXPERIMENTS['reviewkd']
        add_experiment('reviewkd_fusion_amp', 'reviewkd, fusion_amp=True', lambda t,s,review_weight,warmup: [ReviewKDCB(
            t, stage_names(s)+['head.0'], stage_names(t)+['head.0'], weight=review_weight, warmup=warmup, fusion_amp=True)], r.hparams, r.source, (), r.kind)
        exps.append('reviewkd_fusion_amp')
    if 'crd' in exps:
        r = EXPERIMENTS['crd']
        add_experiment('crd_bf16_scores', 'crd, score_dtype=torch.bfloat16', lambda t,s,crd_weight,nce_k: [CRDCB(
            t, 'head.1', 'head.1', nce_k=nce_k, weight=crd_weight, score_dtype=torch.bfloat16)], r.hparams, r.source, (), r.kind)
        exps.append('crd_bf16_scores')
names = {}
for e in exps:
    cbs = EXPERIMENTS[e](teacher, resnet8())
    names[e] = f"{e}: {' + '.join(type(c).__name__ for c in cbs) or 'no callback'}"
cases = {('fastkd', e): (lambda w,n,e=e: fastkd_case(e, w, n)) for e in exps}
if not a.no_hand:
    for e in exps: cases[('hand', e)] = lambda w,n,e=e: hand_case(e, w, n)

secs = {k: [] for k in cases}
t_all = time.perf_counter()
for f in cases.values(): f(1, 1)   # warm-up round: first-call costs (kernel selection, allocator growth) stay out of the timed rounds
print(f'warm-up round done, {time.perf_counter() - t_all:.0f} s', file=sys.stderr, flush=True)
for r in range(a.reps):
    for k,f in cases.items(): secs[k].append(f(a.warm, a.steps))
    print(f'round {r+1}/{a.reps} done, {time.perf_counter() - t_all:.0f} s', file=sys.stderr, flush=True)
med = lambda v: statistics.median(v)
def rel(k, base):
    "Medians over rounds of ratios taken within each round"
    v = [x/y for x,y in zip(secs[k], secs[base])]
    return med(v),min(v),max(v)

nice,load = os.nice(0),os.getloadavg()
lines = [f'machine: {machine()}; torch {torch.__version__}, fastai {fastai.__version__}; {prec} (' +
         ('bf16 autocast + channels-last' if prec == 'bf16' else 'fp32 + channels-last: this CPU has no native bf16') +
         f'); bs {a.bs}, {a.warm} warm-up + {a.steps} timed batches per case, {a.reps} rounds after a warm-up round, {a.clock} time; '
         f'{time.perf_counter() - t_all:.0f} s wall, {time.process_time():.0f} s CPU in all; load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}',
         'command: ' + (f'nice -n {nice} ' if nice else '') + ''.join(f'{k}={os.environ[k]} ' for k in sorted(os.environ) if k.startswith('MALLOC_')) +
         '.venv/bin/python ' + ' '.join(sys.argv), '']
if a.no_hand:
    lines += [f'| experiment | fastkd, relative to logit KD (median) | range over rounds | {a.clock} ms per batch (median) |', '|---|---|---|---|']
    for e in exps:
        m,lo,hi = rel(('fastkd', e), ('fastkd', 'logit'))
        lines.append(f'| {names[e]} | {m:.2f} | {lo:.2f}–{hi:.2f} | {1000*med(secs[("fastkd", e)]):.0f} |')
else:
    lines += [f'| experiment | fastkd / hand-written loop (median) | range over rounds | fastkd, relative to logit KD | hand-written, relative to hand-written KD | fastkd {a.clock} ms per batch | hand-written {a.clock} ms per batch |',
              '|---|---|---|---|---|---|---|']
    for e in exps:
        m,lo,hi = rel(('fastkd', e), ('hand', e))
        lines.append(f'| {names[e]} | {m:.2f} | {lo:.2f}–{hi:.2f} | {rel(("fastkd", e), ("fastkd", "logit"))[0]:.2f} | {rel(("hand", e), ("hand", "logit"))[0]:.2f} | '
                     f'{1000*med(secs[("fastkd", e)]):.0f} | {1000*med(secs[("hand", e)]):.0f} |')
text = '\n'.join(lines) + '\n'
print(text, end='')
if a.out:
    tmp = a.out + '.tmp'; open(tmp, 'w').write(text); os.replace(tmp, a.out)
