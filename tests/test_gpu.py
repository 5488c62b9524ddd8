"""GPU checks: skipped without CUDA (CI has no GPU); on a CUDA machine, `pytest tests/test_gpu.py` from the repo root.

1. All four classic distillation callbacks at once on CUDA under fastai's MixedPrecision, fp16 and bf16: one teacher forward
   per batch, the teacher's forward in half precision inside autocast, terms in fp32 and finite, teacher unchanged,
   no hooks left, valid_loss the plain cross-entropy.
2. The `smoke` preset of the suite end to end on CUDA (synthetic CIFAR-format folder).
A log of these checks on an NVIDIA H200: `benchmarks/gpu_check_h200.txt`."""
import copy
import pytest, torch, torch.nn.functional as F

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

@pytest.fixture
def fake(tmp_path):
    from fastkd.data import make_fake_cifar
    return make_fake_cifar(tmp_path/'fake', n_train=60, n_test=10)

@pytest.mark.parametrize('mode', ['fp16', 'bf16'])
def test_callbacks_under_mixed_precision(fake, mode):
    from fastai.torch_core import TensorImage
    from fastkd.all import cifar10_dls, resnet14, student_learner, stage_names, LogitDistillCB, FeatureCosineCB, RegressorMSECB, AttentionTransferCB
    from fastkd.test_utils import count_forwards, n_hooks
    dev = torch.device('cuda')
    dls = cifar10_dls(fake, bs=32, device='cuda')
    teacher = resnet14().to(dev)
    t_state = copy.deepcopy(teacher.state_dict())
    learn = student_learner(dls, 'resnet8', amp=False)
    learn = learn.to_fp16() if mode == 'fp16' else learn.to_bf16()
    st = stage_names(teacher); seen = {}
    class Spy(LogitDistillCB):
        def loss_term(self, s_pred, t_pred, s_feats, t_feats):
            seen.update(teacher=self.t_pred.dtype, term_in=t_pred.dtype, autocast=torch.is_autocast_enabled())
            return super().loss_term(s_pred, t_pred, s_feats, t_feats)
    cbs = [Spy(teacher, weight=0.9), FeatureCosineCB(teacher, st, st), RegressorMSECB(teacher, ['layer2'], ['layer2']),
           AttentionTransferCB(teacher, st, st)]
    c = count_forwards(teacher)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, cbs=cbs)
    assert c[0] == 2*len(dls.train), (c[0], len(dls.train)); c[1].remove()
    half = torch.float16 if mode == 'fp16' else torch.bfloat16
    assert seen == dict(teacher=half, term_in=torch.float32, autocast=False), seen
    assert all(torch.equal(v, t_state[k]) for k,v in teacher.state_dict().items())
    assert n_hooks(teacher) + n_hooks(learn.model) == 0
    for cb in cbs: assert all(v == v and abs(v) < float('inf') for v in cb.history), (cb.term_name, cb.history)
    xs,ys = dls.valid.dataset.x, dls.valid.dataset.y
    learn.model.eval()
    with torch.no_grad(): ce = F.cross_entropy(learn.model(dls.valid.after_batch(TensorImage(xs.to(dev)))).float(), ys.to(dev)).item()
    assert abs(learn.recorder.values[-1][1] - ce) < 2e-2, (learn.recorder.values[-1][1], ce)   # half-precision tolerance

def test_smoke_suite_on_cuda(fake, tmp_path):
    from fastkd.suite.registry import EXPERIMENTS
    from fastkd.suite.run import run_suite
    df = run_suite('smoke', seeds=[0], out=tmp_path/'res', path=fake, device='cuda', verbose=False)
    assert list(df.experiment) == ['teacher', *EXPERIMENTS]
    assert df.test_acc.between(0, 1).all()

@pytest.mark.parametrize('mode', ['fp16', 'bf16'])
def test_every_method_under_mixed_precision(fake, mode):
    "Every experiment's callbacks of the suite, all in one fit on CUDA: one teacher forward a batch, finite fp32 terms, teacher unchanged, no hooks left"
    from fastkd.all import cifar10_dls, resnet14, student_learner
    from fastkd.suite.registry import EXPERIMENTS
    from fastkd.test_utils import count_forwards, n_hooks
    dls = cifar10_dls(fake, bs=32, device='cuda')
    teacher = resnet14().cuda(); t_state = copy.deepcopy(teacher.state_dict())
    learn = student_learner(dls, 'resnet8', amp=False)
    learn = learn.to_fp16() if mode == 'fp16' else learn.to_bf16()
    cbs = [cb for n,e in EXPERIMENTS.items() for cb in e(teacher, learn.model)]
    cbs = [cb for i,cb in enumerate(cbs) if all(cb is not o for o in cbs[:i])]
    c = count_forwards(teacher)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, cbs=cbs)
    assert c[0] == 2*len(dls.train); c[1].remove()
    assert all(torch.equal(v, t_state[k]) for k,v in teacher.state_dict().items())
    assert n_hooks(teacher) + n_hooks(learn.model) == 0
    for cb in cbs: assert all(v == v and abs(v) < float('inf') for v in cb.history), (cb.term_name, cb.history)
