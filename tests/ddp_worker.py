"One process of tests/test_ddp.py: `torchrun --nproc_per_node 2 tests/ddp_worker.py OUT FAKE_CIFAR`"
import sys, os, copy, torch
from pathlib import Path
from fastai.distributed import rank_distrib
from fastkd.all import *
import fastkd.distributed   # CPU (gloo) DistributedDL
from fastkd.core import set_seed

out, fake = Path(sys.argv[1]), Path(sys.argv[2])
rank = rank_distrib()
set_seed(0)
dls = cifar10_dls(fake, bs=16, device='cpu', cache=False)
teacher = resnet8(); t0 = copy.deepcopy(teacher.state_dict())
learn = student_learner(dls, 'resnet8', amp=False, lr=0.05)
fit = RegressorMSECB(teacher, ['layer2'], ['layer2'])
with learn.distrib_ctx(cpu=True, sync_bn=False):
    learn.fit(3, 0.05, cbs=[LogitDistillCB(teacher), fit])
torch.save(dict(student=learn.model.state_dict(), regressor={k:v.detach() for k,v in fit.regressors.named_parameters()},
                buffers={k:v.detach() for k,v in fit.regressors.named_buffers()},   # broadcast from process 0, as DDP does the model's
                names=list(learn.recorder.metric_names[1:]), values=[[float(o) for o in v] for v in learn.recorder.values],
                teacher_unchanged=all(torch.equal(v, t0[k]) for k,v in teacher.state_dict().items()),
                losses=[float(v[0]) for v in learn.recorder.values], n_train=len(learn.dls.train.dataset)),
           out/f'rank{rank}.pt')
