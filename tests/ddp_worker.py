"One process of tests/test_ddp.py: `torchrun --nproc_per_node 2 tests/ddp_worker.py OUT FAKE_CIFAR`"
import sys, os, copy, torch
from pathlib import Path
from fastai.distributed import rank_distrib
from fastkd.all import *
import fastkd.distributed   # CPU (gloo) DistributedDL

out, fake = Path(sys.argv[1]), Path(sys.argv[2])
rank = rank_distrib()
set_seed(0)
dls = cifar10_dls(fake, bs=16, device='cpu', cache=False)
teacher = resnet8(); t0 = copy.deepcopy(teacher.state_dict())
learn = student_learner(dls, 'resnet8', amp=False, lr=0.05)
fit = RegressorMSECB(teacher, ['layer2'], ['layer2'])
with learn.distrib_ctx(cpu=True, sync_bn=False):
    learn.fit(3, 0.05, cbs=[LogitDistillCB(teacher), fit])
torch.save(dict(student=learn.model.state_dict(), regressor={k:v.detach() for k,v in fit.regressors.named_parameters()},   # BN running stats stay per process, as DDP's own would without broadcast
                teacher_unchanged=all(torch.equal(v, t0[k]) for k,v in teacher.state_dict().items()),
                losses=[float(v[0]) for v in learn.recorder.values], n_train=len(learn.dls.train.dataset)),
           out/f'rank{rank}.pt')
