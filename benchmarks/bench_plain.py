"""A bf16 forward on fastai's typed `TensorImage` against the same forward on a plain tensor (channels-last, no_grad).

    .venv/bin/python benchmarks/bench_plain.py > benchmarks/bench_plain.txt

Batch 128 and 8; the two inputs alternate, 25 times each after a warm-up; medians. The reason for
`fastkd.learner.PlainTensors`.
"""
import os, platform, time, statistics
import torch
from fastai.torch_core import TensorImage
from fastkd.models import resnet8, resnet20
cl = torch.channels_last
print(f'machine: {os.cpu_count()}-core {platform.machine()} CPU; torch {torch.__version__}')
print('| model | batch | plain tensor, ms | TensorImage, ms | TensorImage / plain |'); print('|---|---|---|---|---|')
for bs in (128, 8):
    x = torch.randn(bs, 3, 32, 32).contiguous(memory_format=cl)
    for name,m in [('resnet8', resnet8().eval()), ('resnet20', resnet20().eval())]:
        m = m.to(memory_format=cl)
        def f(inp):
            with torch.autocast('cpu', dtype=torch.bfloat16), torch.no_grad(): m(inp)
        ins = {'plain':x, 'typed':TensorImage(x)}
        for inp in ins.values(): f(inp); f(inp)
        ts = {k:[] for k in ins}
        for _ in range(25):
            for k,inp in ins.items():
                t = time.perf_counter(); f(inp); ts[k].append(time.perf_counter() - t)
        p,t = (1000*statistics.median(ts[k]) for k in ('plain','typed'))
        print(f'| {name} | {bs} | {p:.2f} | {t:.2f} | {t/p:.2f} |')
