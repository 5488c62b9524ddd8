"""fastkd's training loop against hand-written PyTorch loops doing the same work (and fasterai, when importable).

    .venv/bin/python benchmarks/bench_kd.py [--n 40] [--bs 128] [--reps 5] [--device cpu|cuda] > benchmarks/bench_kd_cpu.txt
    PYTHONPATH=/path/to/fasterai-0.4.1 .venv/bin/python benchmarks/bench_kd.py ...   # adds the fasterai row

Same models (resnet20 teacher, resnet8 student), same in-memory uint8 data through the same fastkd
loader, same batch size, same precision (bf16 autocast + channels-last on the CPU, fp16 autocast +
GradScaler on CUDA), one process. Runs are interleaved; each measures a full pass of N training
batches plus one validation batch; the median of `reps` is reported, as ratios measured in this run.

Rows: hand-written loops (CE only; CE + KD; CE + KD + the three feature terms of fastkd's callbacks,
same layers, weights, fp32 casts and regressor) and the fastkd / fastai `Learner.fit` doing the same,
plus fasterai 0.4.1's `KnowledgeDistillationCallback(teacher, SoftTarget)` on fastkd's student_learner.
"""
import argparse, time, statistics
import torch, torch.nn as nn, torch.nn.functional as F
import fastai
from fastkd.all import *
from benchutil import synthetic_dls, machine

p = argparse.ArgumentParser()
p.add_argument('--n', type=int, default=40); p.add_argument('--bs', type=int, default=128)
p.add_argument('--reps', type=int, default=5); p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
a = p.parse_args()
dev = torch.device(a.device); cuda = dev.type == 'cuda'
torch.manual_seed(0)
dls = synthetic_dls(a.n, a.bs, device=dev)
teacher = resnet20().to(dev).eval()
sync = torch.cuda.synchronize if cuda else (lambda: None)
cl = torch.channels_last if not cuda else torch.contiguous_format
st = stage_names(teacher)   # ['layer1', 'layer2', 'layer3'] in both models

def fastkd_run(cbs_fn):
    learn = student_learner(dls, 'resnet8')
    cbs = cbs_fn()
    sync(); t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=cbs)
    sync(); return time.perf_counter() - t

def handwritten(kd=True, feats=False):
    "A minimal loop: student fwd+bwd, teacher fwd under no_grad, the same loss terms, SGD step; then one validation pass"
    s = resnet8().to(dev).to(memory_format=cl); t_ = teacher.to(memory_format=cl).requires_grad_(False)
    params = list(s.parameters())
    if feats:
        so,to_ = {},{}
        hs = [getattr(s, n).register_forward_hook(lambda m,i,o,n=n: so.__setitem__(n, o)) for n in st]
        hs += [getattr(t_, n).register_forward_hook(lambda m,i,o,n=n: to_.__setitem__(n, o)) for n in st]
        reg = ConvRegressor((32,16,16), (32,16,16)).to(dev); params += list(reg.parameters())
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scaler = torch.amp.GradScaler('cuda') if cuda else None
    ac = lambda: torch.autocast(dev.type, dtype=torch.float16 if cuda else torch.bfloat16)
    sync(); t0 = time.perf_counter()
    s.train()
    for xb,yb in dls.train:
        xb = xb.as_subclass(torch.Tensor).contiguous(memory_format=cl); yb = yb.as_subclass(torch.Tensor)
        with ac():
            out = s(xb)
            if kd:
                with torch.no_grad(): tout = t_(xb)
        loss = F.cross_entropy(out.float(), yb)
        if kd: loss = loss + 0.9*kd_loss(out.float(), tout.float(), 4.)
        if feats:
            fs,ft = [so[n].float() for n in st],[to_[n].float() for n in st]
            loss = loss + torch.stack([cosine_loss(a_, b_) for a_,b_ in zip(fs, ft)]).mean()
            loss = loss + fitnet_loss(reg(fs[1]), ft[1])
            loss = loss + 1000*torch.stack([at_loss(a_, b_) for a_,b_ in zip(fs, ft)]).sum()
        opt.zero_grad(set_to_none=True)
        if scaler: scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
        else: loss.backward(); opt.step()
    s.eval()
    with torch.no_grad(), ac():
        for xb,yb in dls.valid: F.cross_entropy(s(xb.as_subclass(torch.Tensor).contiguous(memory_format=cl)).float(), yb.as_subclass(torch.Tensor))
    sync(); el = time.perf_counter() - t0
    if feats:
        for h in hs: h.remove()
    t_.requires_grad_(True)   # as the user left it
    return el

four = lambda: [LogitDistillCB(teacher, T=4., weight=0.9), FeatureCosineCB(teacher, st, st),
                RegressorMSECB(teacher, ['layer2'], ['layer2']), AttentionTransferCB(teacher, st, st)]
cases = {
    'hand-written loop, CE only': lambda: handwritten(kd=False),
    'fastai fit (student_learner), CE only': lambda: fastkd_run(lambda: []),
    'hand-written KD loop': handwritten,
    'fastkd LogitDistillCB': lambda: fastkd_run(lambda: [LogitDistillCB(teacher, T=4., weight=0.9)]),
    'hand-written loop, KD + cosine + FitNets + AT': lambda: handwritten(feats=True),
    'fastkd, all four callbacks': lambda: fastkd_run(four),
}
try:
    from fasterai.distill.all import KnowledgeDistillationCallback, SoftTarget
    import fasterai
    cases['fasterai KnowledgeDistillationCallback(SoftTarget)'] = lambda: fastkd_run(lambda: [KnowledgeDistillationCallback(teacher, SoftTarget)])
except Exception as e:
    print(f'fasterai not available ({type(e).__name__}: {e}); its row is skipped')

for f in cases.values(): f()   # warm-up
res = {k:[] for k in cases}
for r in range(a.reps):
    for k,f in cases.items(): res[k].append(f())
m = {k:statistics.median(v) for k,v in res.items()}
if cuda: name = torch.cuda.get_device_name()
else: name = machine()
fa = f", fasterai {fasterai.__version__}" if 'fasterai' in globals() else ''
print(f'device: {name}; torch {torch.__version__}, fastai {fastai.__version__}{fa}; {a.n} batches of {a.bs}, median of {a.reps}')
print('| run | s per pass |'); print('|---|---|')
for k,v in m.items(): print(f'| {k} | {v:.3f} |')
R = lambda a_,b_: m[a_]/m[b_]
print(f'fastai fit / hand-written loop, CE only: {R("fastai fit (student_learner), CE only", "hand-written loop, CE only"):.2f}')
print(f'1. fastkd LogitDistillCB / hand-written KD loop: {R("fastkd LogitDistillCB", "hand-written KD loop"):.2f}')
k = 'fasterai KnowledgeDistillationCallback(SoftTarget)'
if k in m:
    print(f'2. fastkd LogitDistillCB / fasterai: {R("fastkd LogitDistillCB", k):.2f}')
    print(f'   fasterai / hand-written KD loop: {R(k, "hand-written KD loop"):.2f}')
print(f'3. all four callbacks / LogitDistillCB alone: {R("fastkd, all four callbacks", "fastkd LogitDistillCB"):.2f}')
print(f'   all four callbacks / hand-written loop with the same four terms: {R("fastkd, all four callbacks", "hand-written loop, KD + cosine + FitNets + AT"):.2f}')
print(f'   hand-written four terms / hand-written KD loop (the arithmetic of the feature terms): {R("hand-written loop, KD + cosine + FitNets + AT", "hand-written KD loop"):.2f}')
