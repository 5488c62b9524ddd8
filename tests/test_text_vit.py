"""fastkd beyond image CNNs (issue 25): text Learners (fastai's AWD_LSTM classifier) with the teacher's classes in another
order or another token vocab, layers called more than once per forward, layers returning tuples, ViT token features,
Hugging Face-style outputs, DeiT's hard distillation and distillation head. Tiny synthetic data, a second or two each."""
import random, warnings
from collections import Counter
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from fastai.learner import Learner
from fastai.callback.core import Callback
from fastai.losses import CrossEntropyLossFlat, MSELossFlat
from fastai.data.core import Datasets
from fastai.data.transforms import ItemGetter, Categorize
from fastai.text.data import Numericalize, make_vocab
from fastai.callback.rnn import ModelResetter, RNNCallback
from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_clas_config
from fastai.text.models.core import get_text_classifier
from fastkd.all import *
from fastkd.losses import kd_loss
from fastkd.test_utils import synth_dls, tiny_pair, n_hooks

WORDS = dict(pos=['good','great','fine'], neg=['bad','awful','poor'], neu=['the','a'])

def _fit(learn, *args, **kw):
    with learn.no_bar(), learn.no_logging(): return learn.fit(*args, **kw)

def text_dls(classes=None, words=None, rename=None, n=48, bs=8, seed=0):
    "Synthetic 3-class sentiment texts of 12 words; `classes`: the class vocab in that order (default: sorted); `words`: the token vocab's words in that order; `rename`: other class names"
    rng = random.Random(seed)
    def sample():
        y = rng.choice(sorted(WORDS))
        return dict(text=' '.join(rng.choice(WORDS[y] + ['movie','film']) for _ in range(12)), label=(rename or {}).get(y, y))
    items = [sample() for _ in range(n)]
    words = words or [w for ws in WORDS.values() for w in ws] + ['movie','film']
    vocab = make_vocab(Counter({w:len(words)-i for i,w in enumerate(words)}), min_freq=1)
    dsets = Datasets(items, tfms=[[lambda o: o['text'].split(), Numericalize(vocab=vocab)], [ItemGetter('label'), Categorize(vocab=classes, sort=classes is None)]],
                     splits=[list(range(3*n//4)), list(range(3*n//4, n))])
    return dsets.dataloaders(bs=bs, device='cpu')

def text_model(dls, seq_len=12, seed=0):
    torch.manual_seed(seed)
    return get_text_classifier(AWD_LSTM, len(dls.vocab[0]), 3, seq_len=seq_len, config=dict(awd_lstm_clas_config, emb_sz=8, n_hid=8, n_layers=1), drop_mult=0.5)

def text_learner(dls, model):
    "A plain `Learner` for fastai's text classifier (`ModelResetter`, `RNNCallback`: the loss sees the logits, the first of its outputs)"
    return Learner(dls, model, loss_func=CrossEntropyLossFlat(), cbs=[ModelResetter(), RNNCallback()])

class _Cap(Callback):
    "Keeps the first training batch's inputs, student output and teacher logits"
    order = 7
    def __init__(self, cb): self.cb,self.got = cb,None
    def after_loss(self):
        if self.got is None and self.training: self.got = dict(x=self.xb[0].clone(), t=self.cb.t_pred.detach().clone(), term=float(self.cb._sum), s=self.pred)

# --- 1. text: the class vocab of nested `dls.vocab`
def test_text_classes_in_another_order_are_reordered():
    sdls,tdls = text_dls(),text_dls(classes=['pos','neg','neu'])
    assert sdls.vocab[1] == ['neg','neu','pos'] and list(tdls.vocab[1]) == ['pos','neg','neu']
    tl = text_learner(tdls, text_model(tdls, seed=1))
    learn = text_learner(sdls, text_model(sdls))
    cb = LogitDistillCB(tl); cap = _Cap(cb)
    assert cb.teacher_vocab == ['pos','neg','neu']
    with pytest.warns(UserWarning, match='another order'): _fit(learn, 1, 0., cbs=[cb, cap])
    tl.model.eval()
    with torch.no_grad(): t = tl.model(cap.got['x'])[0]
    assert torch.allclose(cap.got['t'], t[:, [1, 2, 0]])   # teacher columns pos,neg,neu -> student's neg,neu,pos

def test_text_other_classes_are_refused():
    sdls,tdls = text_dls(),text_dls(rename=dict(neu='meh'))
    tl = text_learner(tdls, text_model(tdls, seed=1))
    learn = text_learner(sdls, text_model(sdls))
    with pytest.raises(ValueError, match="teacher's classes differ"): _fit(learn, 1, 0., cbs=[LogitDistillCB(tl)])
    assert n_hooks(learn.model) == 0 and n_hooks(tl.model) == 0

# --- 2. text: another token vocab
def test_text_other_token_vocab_refused_unless_teacher_tfm():
    sdls = text_dls()
    tdls = text_dls(words=['film','movie','a','the','poor','awful','bad','fine','great'])   # 'good' missing: the teacher's xxunk
    tl = text_learner(tdls, text_model(tdls, seed=1))
    learn = text_learner(sdls, text_model(sdls))
    with pytest.raises(ValueError, match="token vocab differs.*teacher_tfm='auto'"): _fit(learn, 1, 0., cbs=[LogitDistillCB(tl)])
    cb = LogitDistillCB(tl, teacher_tfm='auto'); cap = _Cap(cb)
    _fit(learn, 1, 0., cbs=[cb, cap])
    sv,tv = sdls.vocab[0],tdls.vocab[0]
    x = cap.got['x']
    mapped = torch.tensor([[tv.index(sv[i]) if sv[i] in tv else tv.index('xxunk') for i in row] for row in x.tolist()])
    assert (mapped == tv.index('xxunk')).any() or 'good' not in [sv[i] for i in x.flatten().tolist()]
    tl.model.eval()
    with torch.no_grad(): t = tl.model(mapped)[0]
    assert torch.allclose(cap.got['t'], t)
    tfm = teacher_input(tl, learn)
    assert torch.equal(tfm(x)[0], mapped)

def test_text_same_token_vocab_runs():
    sdls = text_dls()
    tl = text_learner(text_dls(), text_model(sdls, seed=1))
    learn = text_learner(sdls, text_model(sdls))
    with warnings.catch_warnings(): warnings.simplefilter('error'); _fit(learn, 1, 1e-3, cbs=[LogitDistillCB(tl)])

# --- 3. a layer called more than once per forward
def test_text_encoder_called_per_chunk_is_refused():
    dls = text_dls()
    t,s = text_model(dls, seq_len=4, seed=1),text_model(dls, seq_len=4)   # 12 tokens: the AWD_LSTM runs 3 times
    learn = text_learner(dls, s)
    with pytest.raises(ValueError, match=r"layer '0.module' is called 3 times in one forward pass.*expected a layer called once"):
        _fit(learn, 1, 0., cbs=[FeatureCosineCB(t, ['0.module'], ['0.module'])])
    assert n_hooks(s) == 0 and n_hooks(t) == 0
    _fit(learn, 1, 0., cbs=[FeatureCosineCB(t, ['1.layers.0'], ['1.layers.0'])])   # the head's first layer: called once

class _Twice(nn.Module):
    def __init__(self, c=8, n=4):
        super().__init__()
        self.stem,self.block,self.head = nn.Conv2d(3, c, 3, padding=1),nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU()),nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n))
    def forward(self, x): return self.head(self.block(self.block(self.stem(x))))   # one block, shared

def test_shared_block_called_twice_is_refused():
    t,_ = tiny_pair(); learn = Learner(synth_dls(), _Twice(), loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match=r"student layer 'block' is called 2 times"):
        _fit(learn, 1, 0., cbs=[FeatureCosineCB(t, ['block'], ['block1'])])

# --- 11. layers returning tuples; show_layers / stage_names on text; layers never called
def test_tuple_output_layer_is_refused():
    dls = text_dls()
    t,s = text_model(dls, seed=1),text_model(dls)
    learn = text_learner(dls, s)
    with pytest.raises(ValueError, match=r"student layer '0.module.rnns.0' returns a tuple, not a tensor"):
        _fit(learn, 1, 0., cbs=[FeatureCosineCB(t, ['0.module.rnns.0'], ['0.module.rnns.0'])])
    assert n_hooks(s) == 0 and n_hooks(t) == 0

def test_show_layers_and_stage_names_on_text(capsys):
    dls = text_dls(); m = text_model(dls); learn = text_learner(dls, m)
    xb = dls.one_batch()[0]
    show_layers(m, xb); out = capsys.readouterr().out
    assert 'no spatial stages' in out and '0.module.rnns.0' in out and 'calls' in out
    show_layers(learn); assert '1.layers.0' in capsys.readouterr().out   # the Learner's own batch
    rows = dict((n, s) for n,_,s in layer_shapes(m, xb))
    assert rows['1.layers.0'] == (50,) and rows['0.module.rnns.0'] == 'tuple'
    with pytest.raises(ValueError, match='not images.*show_layers'): stage_names(learn)

timm = pytest.importorskip('timm')

def vit(patch=4, dim=16, seed=0, n=4):
    torch.manual_seed(seed)
    return timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=8, patch_size=patch, embed_dim=dim, depth=2, num_heads=2, num_classes=n)

def test_uncalled_attention_submodule_names_both_causes():
    t = vit(); learn = Learner(synth_dls(), vit(dim=8, seed=1), loss_func=CrossEntropyLossFlat())
    assert t.blocks[0].attn.fused_attn
    with pytest.raises(ValueError, match=r"never called.*fused attention.*gradient checkpointing"):
        _fit(learn, 1, 0., cbs=[FeatureCosineCB(t, ['blocks.0.attn'], ['blocks.0.attn.attn_drop'])])

# --- 4. ViT token features
def test_vit_tokens_with_other_counts_are_refused():
    t,s = vit(patch=2, dim=16),vit(patch=4, dim=8, seed=1)   # 17 and 5 tokens
    learn = Learner(synth_dls(), s, loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match=r"token features \(5, 8\) \(5 tokens of 8\).*expected the same token count"):
        _fit(learn, 1, 0., cbs=[FeatureCosineCB(t, ['blocks.1'], ['blocks.1'])])
    _fit(learn, 1, 0., cbs=[FeatureCosineCB(t, ['fc_norm'], ['fc_norm'])])           # pooled features: fine
    _fit(learn, 1, 0., cbs=[RelationalKDCB(t, ['blocks.1'], ['blocks.1'])])         # a relation method flattens features: fine

def test_vit_tokens_same_count_and_vit_to_cnn():
    t,s = vit(dim=16),vit(dim=8, seed=1)
    learn = Learner(synth_dls(), s, loss_func=CrossEntropyLossFlat())
    _fit(learn, 1, 1e-3, cbs=[FeatureCosineCB(t, ['blocks.1'], ['blocks.1']), LogitDistillCB(t)])
    cnn = tiny_pair()[1]
    learn = Learner(synth_dls(), cnn, loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match=r"teacher layer 'blocks.1' gives token features.*conv feature maps"):
        _fit(learn, 1, 0., cbs=[FeatureCosineCB(t, ['block2'], ['blocks.1'])])
    _fit(learn, 1, 1e-3, cbs=[LogitDistillCB(t)])   # ViT -> CNN on the logits

# --- Hugging Face-style outputs; 13. hard distillation, the student output the term applies to
class _HF(nn.Module):
    "A Hugging Face-style model: returns an object with `.logits`"
    def __init__(self, m): super().__init__(); self.m = m
    def forward(self, x):
        class Out: pass
        o = Out(); o.logits,o.hidden = self.m(x),None
        return o

class _TwoHeads(nn.Module):
    "DeiT-style: (class-token logits, distillation-token logits)"
    def __init__(self, m, n=4): super().__init__(); self.m,self.dist = m,nn.Linear(n, n)
    def forward(self, x): z = self.m(x); return z,self.dist(z)

def _first_ce(p, y): return F.cross_entropy(p[0], y)

def test_hf_teacher_and_hard_distillation():
    t,s = tiny_pair()
    learn = Learner(synth_dls(), s, loss_func=CrossEntropyLossFlat())
    cb = LogitDistillCB(_HF(t), hard=True); cap = _Cap(cb)
    _fit(learn, 1, 0., cbs=[cb, cap])
    t.eval()
    with torch.no_grad(): tz = t(cap.got['x'])
    assert torch.allclose(cap.got['t'], tz)
    s.eval()
    term = cb.loss_term(s(cap.got['x']), tz, [], [])
    assert torch.allclose(term, F.cross_entropy(s(cap.got['x']), tz.argmax(1)))
    with pytest.raises(ValueError, match='standardize=False'): LogitDistillCB(t, hard=True, standardize=True)
    learn = Learner(synth_dls(), tiny_pair()[1], loss_func=MSELossFlat())
    with pytest.raises(ValueError, match='hard=False'): _fit(learn, 1, 0., cbs=[LogitDistillCB(t, hard=True)])

def test_student_output_picks_the_distillation_head():
    t,s = tiny_pair()
    st = _TwoHeads(s)
    learn = Learner(synth_dls(), st, loss_func=_first_ce)
    cb = LogitDistillCB(t, T=2., student_output=1); cap = _Cap(cb)
    _fit(learn, 1, 0., cbs=[cb, cap])
    (cls,dist),tz = cap.got['s'],cap.got['t']
    assert abs(cap.got['term'] - float(kd_loss(dist, tz, 2.))) < 1e-5 and abs(cap.got['term'] - float(kd_loss(cls, tz, 2.))) > 1e-4
    cb = LogitDistillCB(t, hard=True, student_output=1); cap = _Cap(cb)
    _fit(learn, 1, 0., cbs=[cb, cap])
    (cls,dist),tz = cap.got['s'],cap.got['t']
    assert abs(cap.got['term'] - float(F.cross_entropy(dist, tz.argmax(1)))) < 1e-5
    # the teacher's output by key; a missing index is refused in one line
    class _Dict(nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, x): return dict(feats=x.mean((2,3)), scores=self.m(x))
    cb = LogitDistillCB(_Dict(t), teacher_output='scores', student_output=1); cap = _Cap(cb)
    _fit(learn, 1, 0., cbs=[cb, cap])
    t.eval()
    with torch.no_grad(): assert torch.allclose(cap.got['t'], t(cap.got['x']))
    with pytest.raises(ValueError, match=r"student_output=2, but the student returns a tuple of 2"):
        _fit(learn, 1, 0., cbs=[LogitDistillCB(t, student_output=2)])
    with pytest.raises(ValueError, match=r"teacher_output='logits', but the teacher returns a dict with keys \['feats', 'scores'\]"):
        _fit(learn, 1, 0., cbs=[LogitDistillCB(_Dict(t), teacher_output='logits', student_output=1)])
    assert n_hooks(st) == 0
