"""fastkd's training loop against a hand-written PyTorch KD loop (and fasterai, when installed).

    .venv/bin/python nbs/scripts/bench_kd.py [--n 40] [--bs 128] [--reps 5] [--device cpu|cuda]

Same models (resnet20 teacher, resnet8 student), same in-memory uint8 data through the same fastkd
loader, same batch size, same precision (bf16 autocast + channels-last on the CPU, fp16 autocast +
GradScaler on CUDA), one process. Runs are interleaved, each measures a full pass of N training
batches plus one validation batch; the median of `reps` is reported, as ratios measured in this run.

1. fastkd `LogitDistillCB` fit / hand-written KD loop (student fwd+bwd, teacher fwd under no_grad,
   KD loss, SGD step)
2. fastkd / fasterai's `KnowledgeDistillationCallback` with `SoftTarget` on the same Learner and data
   (only if `fasterai` imports; install it in a separate environment, it is no dependency of fastkd)
3. all four fastkd callbacks at once / `LogitDistillCB` alone
"""
import argparse, time, statistics, platform, os, contextlib
import torch, torch.nn.functional as F
import fastai
from fastkd.all import *

p = argparse.ArgumentParser()
p.add_argument('--n', type=int, default=40); p.add_argument('--bs', type=int, default=128)
p.add_argument('--reps', type=int, default=5); p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
a = p.parse_args()
dev = torch.device(a.device); cuda = dev.type == 'cuda'
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
x = torch.randint(0, 256, (a.n*a.bs + a.bs, 3, 32, 32), dtype=torch.uint8, generator=g); y = torch.randint(0, 10, (len(x),), generator=g)
vocab = [str(i) for i in range(10)]
def make_dls():
    from fastai.data.core import DataLoaders
    tr = CifarDL(CifarTensors(x[:a.n*a.bs], y[:a.n*a.bs], vocab), bs=a.bs, shuffle=True, augment=True, device=dev)
    va = CifarDL(CifarTensors(x[a.n*a.bs:], y[a.n*a.bs:], vocab), bs=a.bs, device=dev)
    return DataLoaders(tr, va, device=dev)
dls = make_dls()
teacher = resnet20().to(dev).eval()
sync = torch.cuda.synchronize if cuda else (lambda: None)

def fastkd_run(cbs_fn):
    learn = student_learner(dls, 'resnet8')
    cbs = cbs_fn()
    sync(); t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05, cbs=cbs)
    sync(); return time.perf_counter() - t

def handwritten():
    s = resnet8().to(dev)
    cl = torch.channels_last if not cuda else torch.contiguous_format
    s = s.to(memory_format=cl); t_ = teacher.to(memory_format=cl)
    opt = torch.optim.SGD(s.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scaler = torch.amp.GradScaler('cuda') if cuda else None
    ac = lambda: torch.autocast(dev.type, dtype=torch.float16 if cuda else torch.bfloat16)
    sync(); t0 = time.perf_counter()
    s.train()
    for xb,yb in dls.train:
        xb = xb.as_subclass(torch.Tensor).contiguous(memory_format=cl); yb = yb.as_subclass(torch.Tensor)
        with ac():
            out = s(xb)
            with torch.no_grad(): tout = t_(xb)
        loss = F.cross_entropy(out.float(), yb) + 0.9*kd_loss(out.float(), tout.float(), 4.)
        opt.zero_grad(set_to_none=True)
        if scaler: scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
        else: loss.backward(); opt.step()
    s.eval()
    with torch.no_grad(), ac():
        for xb,yb in dls.valid: F.cross_entropy(s(xb.as_subclass(torch.Tensor).contiguous(memory_format=cl)).float(), yb.as_subclass(torch.Tensor))
    sync(); return time.perf_counter() - t0

st = stage_names(teacher)
cases = {
    'handwritten KD loop': handwritten,
    'fastkd LogitDistillCB': lambda: fastkd_run(lambda: [LogitDistillCB(teacher, T=4., weight=0.9)]),
    'fastkd, all four callbacks': lambda: fastkd_run(lambda: [LogitDistillCB(teacher, T=4., weight=0.9), FeatureCosineCB(teacher, st, st),
                                                              RegressorMSECB(teacher, ['layer2'], ['layer2']), AttentionTransferCB(teacher, st, st)]),
}
try:
    from fasterai.distill.all import KnowledgeDistillationCallback, SoftTarget
    cases['fasterai KnowledgeDistillationCallback'] = lambda: fastkd_run(lambda: [KnowledgeDistillationCallback(teacher, SoftTarget)])
except Exception as e:
    print(f'fasterai not available ({type(e).__name__}: {e}); its row is skipped')

for f in cases.values(): f()   # warm-up
res = {k:[] for k in cases}
for r in range(a.reps):
    for k,f in cases.items(): res[k].append(f())
m = {k:statistics.median(v) for k,v in res.items()}
name = torch.cuda.get_device_name() if cuda else f'{os.cpu_count()}-core {platform.machine()} CPU'
print(f'device: {name}; torch {torch.__version__}, fastai {fastai.__version__}; {a.n} batches of {a.bs}, median of {a.reps}')
print('| run | s per pass | ratio to the hand-written loop |'); print('|---|---|---|')
for k,v in m.items(): print(f'| {k} | {v:.3f} | {v/m["handwritten KD loop"]:.2f} |')
print(f'fastkd LogitDistillCB / hand-written loop: {m["fastkd LogitDistillCB"]/m["handwritten KD loop"]:.2f}')
print(f'all four callbacks / LogitDistillCB alone: {m["fastkd, all four callbacks"]/m["fastkd LogitDistillCB"]:.2f}')
if 'fasterai KnowledgeDistillationCallback' in m:
    print(f'fastkd / fasterai: {m["fastkd LogitDistillCB"]/m["fasterai KnowledgeDistillationCallback"]:.2f}')
