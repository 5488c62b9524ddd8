"""GPU checks (run where CUDA is present; CI has no GPU). From the repo root:

    python nbs/scripts/gpu_check.py

1. All four distillation callbacks at once on CUDA under fastai's MixedPrecision, fp16 and bf16:
   one teacher forward per batch, the teacher's forward in half precision inside autocast, terms in
   fp32 and finite, teacher unchanged, no hooks left, valid_loss the plain cross-entropy.
2. The `smoke` preset of the suite end to end on CUDA (synthetic CIFAR-format folder).
"""
import copy, tempfile, os
from pathlib import Path
import torch, torch.nn.functional as F
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastkd.all import *
from fastkd.test_utils import *
from fastai.torch_core import TensorImage
from fastkd.experiments import run_suite, EXPERIMENTS

assert torch.cuda.is_available(), 'no CUDA device'
dev = torch.device('cuda')
print('device:', torch.cuda.get_device_name(), 'torch', torch.__version__)
tmp = Path(tempfile.mkdtemp()); os.environ['FASTKD_CACHE'] = str(tmp/'cache')
fake = make_fake_cifar(tmp/'fake', n_train=60, n_test=10)

for mode in ('fp16', 'bf16'):
    dls = cifar10_dls(fake, bs=32, device='cuda')
    teacher = resnet14().to(dev)
    t_state = copy.deepcopy(teacher.state_dict())
    learn = student_learner(dls, 'resnet8', amp=False).to_fp16() if mode == 'fp16' else student_learner(dls, 'resnet8', amp=False).to_bf16()
    st = stage_names(teacher); seen = {}
    class Spy(LogitDistillCB):
        def loss_term(self, s_pred, t_pred, s_feats, t_feats):
            seen.update(teacher=self.t_pred.dtype, term_in=t_pred.dtype, autocast=torch.is_autocast_enabled())
            return super().loss_term(s_pred, t_pred, s_feats, t_feats)
    cbs = [Spy(teacher, weight=0.9), FeatureCosineCB(teacher, st, st), RegressorMSECB(teacher, ['layer2'], ['layer2']),
           AttentionTransferCB(teacher, st, st)]
    c = count_forwards(teacher)
    with learn.no_bar(): learn.fit_one_cycle(2, cbs=cbs)
    assert c[0] == 2*len(dls.train), (c[0], len(dls.train)); c[1].remove()
    half = torch.float16 if mode == 'fp16' else torch.bfloat16
    assert seen == dict(teacher=half, term_in=torch.float32, autocast=False), seen
    assert all(torch.equal(v, t_state[k]) for k,v in teacher.state_dict().items())
    assert n_hooks(teacher) + n_hooks(learn.model) == 0
    for cb in cbs: assert all(map(lambda v: v == v and abs(v) < float('inf'), cb.history)), (cb.term_name, cb.history)
    xs,ys = dls.valid.dataset.x, dls.valid.dataset.y
    learn.model.eval()
    with torch.no_grad(): ce = F.cross_entropy(learn.model(dls.valid.after_batch(TensorImage(xs.to(dev)))).float(), ys.to(dev)).item()
    assert abs(learn.recorder.values[-1][1] - ce) < 2e-2, (learn.recorder.values[-1][1], ce)   # half precision tolerance
    print(f'{mode}: ok; terms per epoch:', {cb.term_name: [round(v,4) for v in cb.history] for cb in cbs})

df = run_suite('smoke', seeds=[0], out=tmp/'res', path=fake, device='cuda', verbose=False)
assert list(df.experiment) == ['teacher', *EXPERIMENTS]
print(df[['experiment','test_acc','s_per_epoch']].to_string(index=False))
print('GPU checks passed')
