"Loading a checkpoint never runs code: the callbacks' state file beside a fastai checkpoint is read with `weights_only=True`"
import os, re, pickle, warnings
from pathlib import Path
import pytest, torch, torch.nn as nn
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
import fastai.callback.progress
from fastkd.all import *
from fastkd.test_utils import tiny_pair, synth_dls
from conftest import ROOT

class _Evil:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))

def _learner(tmp_path, cbs=()):
    teacher,student = tiny_pair()
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat(), path=tmp_path, cbs=list(cbs))
    return learn,teacher

def _load(learn, name='model'):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        learn.load(name)
    return [str(o.message) for o in w if 'fastkd.pth' in str(o.message)]

def _fitted(tmp_path):
    "A Learner with a FitNets callback (a trained regressor), saved as `model`; the weights of both"
    teacher,_ = tiny_pair()
    cb = RegressorMSECB(teacher, ['block2'], ['block2'])
    learn,_ = _learner(tmp_path, [cb])
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    learn.save('model')
    return learn,cb,{k:v.clone() for k,v in learn.model.state_dict().items()}

def _scramble(learn, cb):
    with torch.no_grad():
        for p in learn.model.parameters(): p.zero_()
        for p in cb.extras.parameters(): p.fill_(7.)

@pytest.mark.parametrize('attached', [True, False])
def test_crafted_state_file_runs_nothing(tmp_path, attached):
    learn,cb,weights = _fitted(tmp_path)
    marker = tmp_path/'pwned'
    with open(distill_file(tmp_path/'models'/'model.pth'), 'wb') as f: pickle.dump({'RegressorMSECB_0': _Evil(marker)}, f)
    if not attached: learn.remove_cb(cb)   # a user who never distils: fastkd imported, no callback
    _scramble(learn, cb)
    msgs = _load(learn)
    assert not marker.exists(), 'loading the state file ran code'
    assert len(msgs) == 1 and '\n' not in msgs[0] and 'model.fastkd.pth' in msgs[0] and 'could run code' in msgs[0], msgs
    for k,v in learn.model.state_dict().items(): torch.testing.assert_close(v, weights[k])   # the model's weights loaded
    assert all(bool((p == 7.).all()) for p in cb.extras.parameters())                       # the callback's state as it was

def test_truncated_state_file(tmp_path):
    learn,cb,weights = _fitted(tmp_path)
    f = distill_file(tmp_path/'models'/'model.pth'); f.write_bytes(f.read_bytes()[:100])
    _scramble(learn, cb)
    msgs = _load(learn)
    assert len(msgs) == 1 and 'truncated or not a PyTorch file' in msgs[0] and '\n' not in msgs[0], msgs
    for k,v in learn.model.state_dict().items(): torch.testing.assert_close(v, weights[k])
    assert all(bool((p == 7.).all()) for p in cb.extras.parameters())

def test_foreign_state_file(tmp_path):
    learn,cb,_ = _fitted(tmp_path)
    f = distill_file(tmp_path/'models'/'model.pth')
    st = torch.load(f, weights_only=True)
    st['callbacks']['RegressorMSECB_0']['extras'] = {'0.weight': torch.ones(3, 3)}   # another configuration's regressor
    torch.save(st, f); _scramble(learn, cb)
    msgs = _load(learn)
    assert len(msgs) == 1 and 'does not fit' in msgs[0] and 'RegressorMSECB' in msgs[0], msgs
    assert all(bool((p == 7.).all()) for p in cb.extras.parameters())
    st['version'] = 99; torch.save(st, f)
    msgs = _load(learn)
    assert len(msgs) == 1 and 'state format 99' in msgs[0], msgs

def test_state_file_round_trip_and_old_format(tmp_path):
    learn,cb,_ = _fitted(tmp_path)
    sd = {k:v.clone() for k,v in cb.state_dict().items()}
    f = distill_file(tmp_path/'models'/'model.pth')
    st = torch.load(f, weights_only=True)
    assert st['format'] == 'fastkd-callback-state' and st['version'] == 1
    torch.save(st['callbacks'], f)   # the format fastkd 0.1 wrote: the states alone
    _scramble(learn, cb)
    assert _load(learn) == []
    for k,v in cb.state_dict().items(): torch.testing.assert_close(v, sd[k])

def test_no_code_path_unpickles():
    "Every `torch.load` of the package passes `weights_only=True`; nothing calls pickle"
    for p in (ROOT/'fastkd').rglob('*.py'):
        src = p.read_text()
        assert 'weights_only=False' not in src, p
        assert not re.search(r'\bpickle\.loads?\(', src), p
        for call in re.findall(r'torch\.load\([^\n]*', src): assert 'weights_only=True' in call, (p, call)

def test_state_of_other_callbacks(tmp_path):
    "A state file written for other callbacks than the ones attached: said in one line naming the file, nothing applied"
    learn,cb,_ = _fitted(tmp_path)
    teacher,_ = tiny_pair()
    other = VIDCB(teacher, ['block2'], ['block2'])
    learn.remove_cb(cb); learn.add_cb(other)
    msgs = _load(learn)
    assert len(msgs) == 1 and "holds the state of ['RegressorMSECB_0']" in msgs[0] and "['VIDCB_0']" in msgs[0], msgs
    assert other.extras is None and other.epochs_before == 0
