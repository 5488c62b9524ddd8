"""Cost of one training batch of every distillation experiment of the suite, relative to logit KD; hand-written loops for some.

    nice -n 10 .venv/bin/python benchmarks/bench_zoo.py [--warm 2] [--steps 5] [--reps 5] [--bs 128] [--out benchmarks/bench_zoo_cpu.txt]

Teacher `resnet20` (channels-last, as the suite's trained teacher), student `resnet8` in `student_learner` (bf16 autocast +
channels-last on the CPU), random uint8 32x32 images through the fastkd loader, a training set of `--n_train` samples (CRD's
memory bank and negatives are sized by it; only `warm + steps` batches are drawn). Each case is one `fit(1)` with the
callbacks of `EXPERIMENTS[name](teacher, student)` (groups `classic` and `zoo`, their settings), timed over `steps` training
batches after `warm` ones, then cancelled. Hand-written cases: a plain PyTorch loop with the same models, loader, optimizer,
precision, forward hooks and loss functions. After a warm-up round, cases run round-robin, `reps` rounds; a ratio is taken
within a round (a change of load hits both sides alike) and its median over rounds is reported, with its range.
By default one torch thread and the process's CPU time: on a machine shared with other work, elapsed time measures the
scheduler more than the step (`--threads 0 --clock wall` on an idle machine measures what a user waits).
"""
import argparse, os, sys, time, statistics
import torch, torch.nn.functional as F
import fastai
from fastai.callback.core import Callback, CancelFitException
from fastkd.all import *
from fastkd.experiments import EXPERIMENTS, select_experiments
from benchutil import synthetic_dls, machine

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
p.add_argument('--out', default=None, help='also write the output to this file')
a = p.parse_args()
assert a.warm >= 1 and a.steps >= 1, 'expected --warm >= 1 and --steps >= 1'
if a.threads: torch.set_num_threads(a.threads)
clock = time.process_time if a.clock == 'cpu' else time.perf_counter
torch.manual_seed(0)
cl = torch.channels_last
dls = synthetic_dls(a.n_train//a.bs, a.bs)
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
    learn = student_learner(dls, 'resnet8'); cbs = EXPERIMENTS[exp](teacher, learn.model)
    tm = BatchTimer(warm, steps)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=cbs + [tm])
    return tm.secs

POOLED = 'head.1'   # the suite's pooled feature for rkd and pkt
def hand_terms():
    "term name -> (hooked layer or None, loss(student logits, teacher logits, target, student feature, teacher feature)), the suite's settings"
    hp = {e: EXPERIMENTS[e].hparams for e in ('logit', 'dkd', 'rkd', 'pkt')}
    return {'CE only': (None, None),
            'KD': (None, lambda o,t,y,fs,ft: hp['logit']['kd_weight']*kd_loss(o, t, hp['logit']['T'])),
            'DKD': (None, lambda o,t,y,fs,ft: dkd_loss(o, t, y, hp['dkd']['alpha'], hp['dkd']['beta'], hp['dkd']['T'])),   # warm-up factor 1 in the first epoch (warmup=1)
            'RKD': (POOLED, lambda o,t,y,fs,ft: hp['rkd']['rkd_weight']*rkd_loss(fs, ft)),
            'PKT': (POOLED, lambda o,t,y,fs,ft: hp['pkt']['pkt_weight']*pkt_loss(fs, ft))}

def hand_case(term, warm, steps):
    "A plain loop: student fwd+bwd under bf16 autocast, teacher fwd under no_grad, CE + the term on fp32 logits/features, SGD step"
    layer,fn = hand_terms()[term]
    s = resnet8().to(memory_format=cl).train(); t_ = teacher.requires_grad_(False)
    so,to_,hs = {},{},[]
    if layer:
        hs = [dict(s.named_modules())[layer].register_forward_hook(lambda m,i,o: so.__setitem__('f', o)),
              dict(t_.named_modules())[layer].register_forward_hook(lambda m,i,o: to_.__setitem__('f', o))]
    opt = torch.optim.SGD(s.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    it = iter(dls.train)
    for i in range(warm + steps):
        if i == warm: t0 = clock()
        xb,yb = next(it)
        xb = xb.as_subclass(torch.Tensor).contiguous(memory_format=cl); yb = yb.as_subclass(torch.Tensor)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = s(xb)
            if fn:
                with torch.no_grad(): tout = t_(xb)
        out = out.float(); loss = F.cross_entropy(out, yb)
        if fn: loss = loss + fn(out, tout.float(), yb, so.get('f', out).float(), to_.get('f', out).float())
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        so.clear(); to_.clear()
    el = (clock() - t0)/steps
    for h in hs: h.remove()
    t_.requires_grad_(True)
    return el

exps = select_experiments(a.only)
if 'logit' not in exps: exps.insert(1, 'logit')
names = {}
for e in exps:
    cbs = EXPERIMENTS[e](teacher, resnet8())
    names[e] = f"{e}: {' + '.join(type(c).__name__ for c in cbs) or 'no callback'}"
cases = {names[e]: (lambda w,n,e=e: fastkd_case(e, w, n)) for e in exps}
if not a.no_hand:
    for k in hand_terms(): cases[f'hand-written loop: CE{"" if k == "CE only" else " + " + k}'] = lambda w,n,k=k: hand_case(k, w, n)
HAND = {'KD': 'logit', 'DKD': 'dkd', 'RKD': 'rkd', 'PKT': 'pkt', 'CE only': 'baseline'}

secs = {k: [] for k in cases}
t_all = time.perf_counter()
for f in cases.values(): f(1, 1)   # warm-up round: first-call costs (kernel selection, allocator growth) stay out of the timed rounds
print(f'warm-up round done, {time.perf_counter() - t_all:.0f} s', file=sys.stderr, flush=True)
for r in range(a.reps):
    for k,f in cases.items(): secs[k].append(f(a.warm, a.steps))
    print(f'round {r+1}/{a.reps} done, {time.perf_counter() - t_all:.0f} s', file=sys.stderr, flush=True)
ref = names['logit']
ratio = {k: [x/y for x,y in zip(v, secs[ref])] for k,v in secs.items()}   # within each round
med = lambda v: statistics.median(v)

nice = os.nice(0)
lines = [f'machine: {machine()}; torch {torch.__version__}, fastai {fastai.__version__}; bs {a.bs}, {a.warm} warm-up + {a.steps} timed batches '
         f'per case, {a.reps} rounds after a warm-up round, {a.clock} time; '
         f'{time.perf_counter() - t_all:.0f} s wall, {time.process_time():.0f} s CPU in all',
         'command: ' + (f'nice -n {nice} ' if nice else '') + '.venv/bin/python ' + ' '.join(sys.argv),
         '', f'| method | ratio to logit KD (median) | range over rounds | {a.clock} ms per batch (median) |', '|---|---|---|---|']
for k in cases: lines.append(f'| {k} | {med(ratio[k]):.2f} | {min(ratio[k]):.2f}–{max(ratio[k]):.2f} | {1000*med(secs[k]):.0f} |')
if not a.no_hand:
    lines += ['', '| method | fastkd / hand-written loop (median) |', '|---|---|']
    for h,e in HAND.items():
        if e in names:
            k = f'hand-written loop: CE{"" if h == "CE only" else " + " + h}'
            lines.append(f'| {names[e]} | {med([x/y for x,y in zip(secs[names[e]], secs[k])]):.2f} |')
text = '\n'.join(lines) + '\n'
print(text, end='')
if a.out:
    tmp = a.out + '.tmp'; open(tmp, 'w').write(text); os.replace(tmp, a.out)
