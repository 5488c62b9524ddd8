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

def native_bf16() -> bool:
    "Whether oneDNN runs bf16 natively on this CPU (AVX-512 bf16 / AMX); without it bf16 convolutions are emulated, ~10x slower than fp32"
    try: return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception: return False

def bench_precision(choice:str='auto') -> str:
    "'bf16' (autocast + channels-last, fastkd's CPU default) where the CPU has native bf16, else 'fp32' (channels-last); or `choice` itself"
    return choice if choice != 'auto' else ('bf16' if native_bf16() else 'fp32')

from fastai.callback.core import Callback
class ChannelsLast(Callback):
    "fp32 training in channels-last: `CPUMixedPrecision`'s memory format without its autocast"
    order = 10
    def before_fit(self): self.learn.model.to(memory_format=torch.channels_last)
    def before_batch(self):
        self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last) if getattr(x, 'ndim', 0) == 4 else x for x in self.xb)

def bench_student(dls, arch:str='resnet8', precision:str='bf16'):
    "fastkd's `student_learner`: bf16 autocast + channels-last (its CPU default), or fp32 + channels-last"
    from fastkd.learner import student_learner
    if precision == 'bf16': return student_learner(dls, arch)
    learn = student_learner(dls, arch, amp=False); learn.add_cb(ChannelsLast())
    return learn
