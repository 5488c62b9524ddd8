"""Benchmarks for the data notebook and the learner notebook, on the real CIFAR-10.

    FASTKD_DATA=../shared/data/cifar10 .venv/bin/python benchmarks/bench_data.py > benchmarks/bench_data.txt

1. fastkd's `cifar10_dls` train loader vs fastai's stock `ImageDataLoaders.from_folder` on the same
   folder with the same augmentation (zero-pad 4 + random 32x32 crop + horizontal flip) and
   normalization, batch 256: images per second over 40 batches (after 3 warm-up batches).
2. The fastkd loader's time per batch as a share of a resnet8 training step (bf16, channels-last).
3. bf16 autocast + channels-last vs fp32: resnet20 inference (teacher) and a resnet8 training step
   (student), batch 256.
Timings are interleaved and repeated; the median is reported, with the machine.
"""
import os, time, statistics, platform, itertools
import torch, torch.nn.functional as F
import fastai
from fastai.vision.all import ImageDataLoaders, CropPad, RandomCrop, FlipItem, Normalize, PadMode
from fastkd.data import cifar10_dls, cifar10_path, cifar_stats
from fastkd.models import resnet8, resnet20

N, REPS = 40, 5
torch.manual_seed(0)
path = cifar10_path()

def time_batches(dl, n=N, warm=3):
    it = iter(dl)
    for _ in range(warm): next(it)
    t = time.perf_counter()
    for _ in range(n): b = next(it)
    return (time.perf_counter()-t)/n

ours = cifar10_dls(path, bs=256, device='cpu')
stock = ImageDataLoaders.from_folder(path, train='train', valid='test', bs=256, device='cpu', num_workers=os.cpu_count(),
                                     item_tfms=[CropPad(40, pad_mode=PadMode.Zeros), RandomCrop(32), FlipItem(0.5)],
                                     batch_tfms=[Normalize.from_stats(*cifar_stats)])

def step_fn(model, amp):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    def step(x, y):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward(); opt.step(); opt.zero_grad()
    return step

x,y = ours.one_batch()
x, y = x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)
xcl = x.contiguous(memory_format=torch.channels_last)
s32, sbf = resnet8(), resnet8().to(memory_format=torch.channels_last)
t32, tbf = resnet20().eval(), resnet20().eval().to(memory_format=torch.channels_last)
st32, stbf = step_fn(s32, False), step_fn(sbf, True)

def timeit(f, n=5):
    f(); t = time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-t)/n

def infer(m, xx, amp):
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp): m(xx)

res = {k:[] for k in ['ours','stock','step_bf16','step_fp32','inf_bf16','inf_fp32']}
for r in range(REPS):
    res['ours'].append(time_batches(ours.train))
    res['stock'].append(time_batches(stock.train, n=10 if r else 10))
    res['step_bf16'].append(timeit(lambda: stbf(xcl, y)))
    res['step_fp32'].append(timeit(lambda: st32(x, y)))
    res['inf_bf16'].append(timeit(lambda: infer(tbf, xcl, True)))
    res['inf_fp32'].append(timeit(lambda: infer(t32, x, False)))
m = {k:statistics.median(v) for k,v in res.items()}
print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__}, fastai {fastai.__version__}; median of {REPS}")
print(f"| loader (batch 256, pad-4 crop + flip + normalize) | images/s | ms/batch |")
print(f"|---|---|---|")
print(f"| fastkd `cifar10_dls` (uint8 tensor cache, batch transforms) | {256/m['ours']:,.0f} | {1000*m['ours']:.1f} |")
print(f"| fastai `ImageDataLoaders.from_folder` ({os.cpu_count()} workers) | {256/m['stock']:,.0f} | {1000*m['stock']:.1f} |")
print(f"fastkd loader / fastai stock loader, images/s: {m['stock']/m['ours']:.0f}x")
print(f"fastkd loader time per batch / resnet8 bf16 training step: {100*m['ours']/m['step_bf16']:.1f}% ({1000*m['ours']:.1f} ms vs {1000*m['step_bf16']:.0f} ms)")
print(f"fastai stock loader time per batch / resnet8 bf16 training step: {100*m['stock']/m['step_bf16']:.0f}%")
print(f"resnet8 training step, fp32 / bf16+channels-last: {m['step_fp32']/m['step_bf16']:.2f}x ({1000*m['step_fp32']:.0f} ms vs {1000*m['step_bf16']:.0f} ms)")
print(f"resnet20 inference, fp32 / bf16+channels-last: {m['inf_fp32']/m['inf_bf16']:.2f}x ({1000*m['inf_fp32']:.0f} ms vs {1000*m['inf_bf16']:.0f} ms)")
