"What the benchmark scripts share: random uint8 CIFAR-shaped data through the fastkd loader, and a line naming the machine."
import os, platform
import torch
from fastai.data.core import DataLoaders
from fastkd.data import CifarDL, CifarTensors

def synthetic_dls(n:int, bs:int, augment:bool=True, device='cpu', seed:int=0) -> DataLoaders:
    "`n` training batches of `bs` random 32x32 uint8 images with 10 labels (fastkd loader, seeded), and one validation batch"
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n*bs + bs, 3, 32, 32), dtype=torch.uint8, generator=g); y = torch.randint(0, 10, (len(x),), generator=g)
    vocab = [str(i) for i in range(10)]
    return DataLoaders(CifarDL(CifarTensors(x[:n*bs], y[:n*bs], vocab), bs=bs, shuffle=True, augment=augment, device=device),
                       CifarDL(CifarTensors(x[n*bs:], y[n*bs:], vocab), bs=bs, device=device), device=device)

def machine() -> str:
    "'<cores>-core <arch> CPU (<model name>), <torch threads> threads'"
    cpu = ''
    if os.path.exists('/proc/cpuinfo'):
        cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '')
    return f'{os.cpu_count()}-core {platform.machine()} CPU ({cpu or platform.processor()}), {torch.get_num_threads()} threads'
