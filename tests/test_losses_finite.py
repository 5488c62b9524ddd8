"""Every public loss of `fastkd.losses` is finite, value and gradient, on the inputs real networks produce (issue 25).

Property-based (hypothesis): feature maps with dead (all-zero) channels, after a ReLU or not, constant and all-zero maps,
identical samples in a batch, a student equal to its teacher, 1×1 maps, batches of 1 to 3 (2 to 3 for the losses that
relate samples), channels-last memory, scales from 1e-3 to 1e4; logits saturated at ±1e4, all equal, identical rows, equal
to the teacher's, dense (N,C,H,W) ones; CRD scores from e^-40 to e^40; in fp32 and bf16. Where the repository has a
reference transcription (benchmarks/reference_terms.py: mdistiller, RepDistiller, the authors' code), the loss also
equals it in float64, value and student gradient, on the same inputs wherever the reference itself is finite.

The examples are derandomized (the same ones every run); FASTKD_HYPOTHESIS_EXAMPLES=2000 explores more.

Not finite by definition, so not drawn: `crd_nce_loss` at a score of exactly 0 (its positive term is −log 0 = ∞, as in
RepDistiller; CRD's scores are exponentials, > 0) and `vid_loss` at a variance of 0 (log 0; VID's variances are softplus + ε)."""
import os, importlib.util
from pathlib import Path
import pytest, torch, torch.nn.functional as F
from hypothesis import given, settings, HealthCheck, strategies as st
from fastkd.losses import (kd_loss, binary_kd_loss, standardize_logits, cosine_loss, fitnet_loss, at_loss, dkd_loss,
                           dist_loss, nkd_loss, vid_loss, hcl_loss, crd_nce_loss, rkd_loss, pkt_loss, sp_loss, nst_loss,
                           cc_loss, ofd_loss, ab_loss, fsp_loss, match_features, _grams)
import fastkd.losses

_spec = importlib.util.spec_from_file_location('reference_terms', Path(__file__).resolve().parents[1]/'benchmarks'/'reference_terms.py')
R = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(R)

EXAMPLES = int(os.environ.get('FASTKD_HYPOTHESIS_EXAMPLES', 40))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 40,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FLOATS = (torch.float32, torch.bfloat16)

def _leaf(x, dtype, cl=False):
    x = x.to(dtype)
    if cl and x.ndim == 4: x = x.contiguous(memory_format=torch.channels_last)
    return x.detach().requires_grad_()

def _value_and_grads(fn, args):
    "`fn(*args)` and its gradients with respect to the float tensors among `args` (lists of tensors included): None where unused"
    leaves = [a for x in args for a in (x if isinstance(x, list) else [x]) if torch.is_tensor(a) and a.requires_grad]
    v = fn(*args)
    return v,torch.autograd.grad(v, leaves, allow_unused=True)

def assert_finite(fn, *args):
    v,gs = _value_and_grads(fn, args)
    assert v.ndim == 0 and v.isfinite(), f"value {v}"
    for i,g in enumerate(gs): assert g is None or g.isfinite().all(), f"gradient {i}: {g}"

def _finite(v, gs): return bool(v.isfinite().all()) and all(g is None or bool(g.isfinite().all()) for g in gs)

def assert_matches_reference(fn, ref, s, *rest, rtol=1e-6, atol=1e-9):
    "`fn` and the reference `ref` in float64: equal value and gradient w.r.t. the student `s`, wherever the reference is finite"
    def run(f):
        x = s.detach().to(torch.float64).requires_grad_()
        v = f(x, *rest).reshape(())
        return v,torch.autograd.grad(v, x, allow_unused=True)
    rv,rg = run(ref)
    if not _finite(rv, rg): return
    v,g = run(fn)
    torch.testing.assert_close(v, rv, rtol=rtol, atol=atol)
    torch.testing.assert_close(g[0] if g[0] is not None else torch.zeros_like(s, dtype=torch.float64),
                               rg[0] if rg[0] is not None else torch.zeros_like(s, dtype=torch.float64), rtol=rtol, atol=atol)

# --- inputs ---------------------------------------------------------------------------------------------------------
def _gen(draw): return torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))

@st.composite
def fmap(draw, n, c, h, w):
    "A float64 (N,C,H,W) map as a network makes one, degenerate cases included"
    x = torch.randn(n, c, h, w, generator=_gen(draw), dtype=torch.float64) * draw(st.sampled_from([1., 1e-3, 30., 1e4]))
    if draw(st.booleans()): x = x.relu()                                             # after a ReLU
    dead = draw(st.lists(st.booleans(), min_size=c, max_size=c))                      # dead channels
    x = x.masked_fill(torch.tensor(dead).view(1, c, 1, 1), 0.)
    if draw(st.booleans()): x = x.mean((2, 3), keepdim=True).expand_as(x).clone()    # constant maps
    if draw(st.booleans()): x = x[:1].expand_as(x).clone()                            # identical samples
    if draw(st.integers(0, 5)) == 0: x = torch.zeros_like(x)                          # all zero
    return x

@st.composite
def feature_pair(draw, same_shape=False, min_n=1, square=False):
    "Student and teacher maps (float64), the dtype and memory format to run in: channels and (×2) spatial size may differ"
    n,cs,h = draw(st.integers(min_n, 3)),draw(st.integers(1, 5)),draw(st.integers(1, 4))
    w = h if square else draw(st.integers(1, 4))
    equal = draw(st.booleans())                                                       # the student equals its teacher
    ct,k = (cs,1) if same_shape or equal else (draw(st.integers(1, 5)),draw(st.sampled_from([1, 1, 2])))
    s = draw(fmap(n, cs, h, w))
    t = s.clone() if equal else draw(fmap(n, ct, h*k, w*k))
    return s,t,draw(st.sampled_from(FLOATS)),draw(st.booleans())

@st.composite
def logits(draw, shape):
    g,kind = _gen(draw),draw(st.sampled_from(['randn', 'saturated', 'all equal', 'identical rows']))
    if kind == 'randn': return torch.randn(shape, generator=g, dtype=torch.float64) * draw(st.sampled_from([1., 10., 1e4]))
    if kind == 'saturated': return torch.randint(-1, 2, shape, generator=g).double() * 1e4   # ±1e4 and 0
    if kind == 'all equal': return torch.full(shape, draw(st.sampled_from([0., 3., 1e4, -1e4])), dtype=torch.float64)
    return torch.randn(shape[1:], generator=g, dtype=torch.float64).expand(shape).clone() * draw(st.sampled_from([1., 1e4]))

@st.composite
def logit_pair(draw):
    "Student and teacher logits (float64), (N,C) or dense (N,C,H,W), targets, a temperature and the dtype to run in"
    n,c,dense = draw(st.integers(1, 3)),draw(st.integers(2, 6)),draw(st.integers(0, 4)) == 0
    shape = (n, c, 2, 1) if dense else (n, c)
    s = draw(logits(shape))
    t = s.clone() if draw(st.booleans()) else draw(logits(shape))
    y = torch.randint(0, c, (n, 2, 1) if dense else (n,), generator=_gen(draw))
    return s,t,y,draw(st.sampled_from([1., 4.])),draw(st.sampled_from(FLOATS))

# --- logits ---------------------------------------------------------------------------------------------------------
def _standardized(z): return standardize_logits(z.movedim(1, -1)).movedim(-1, 1)   # the classes in dim 1, dense ones too
LOGIT_LOSSES = {   # name: (loss(s, t, y, T), reference(s, t, y, T) or None)
    'kd_loss': (lambda s,t,y,T: kd_loss(s, t, T), lambda s,t,y,T: R.ref_kd_loss(s, t, T)),
    'standardize_logits': (lambda s,t,y,T: kd_loss(_standardized(s), _standardized(t), T),
                           lambda s,t,y,T: R.ref_kd_loss(s, t, T, logit_stand=True)),
    'binary_kd_loss': (lambda s,t,y,T: binary_kd_loss(s, t, T), None),
    'dkd_loss': (lambda s,t,y,T: dkd_loss(s, t, y, T=T), lambda s,t,y,T: R.ref_dkd_loss(s, t, y, 1., 8., T)),
    'dist_loss': (lambda s,t,y,T: dist_loss(s, t, T=T), lambda s,t,y,T: R.ref_dist_loss(s, t, 1., 1., T)),
    'nkd_loss': (lambda s,t,y,T: nkd_loss(s, t, y, T=T), lambda s,t,y,T: R.ref_nkd_loss(s, t, y, T, 1.5)),
}

@pytest.mark.parametrize('name', LOGIT_LOSSES)
@SETTINGS
@given(data=logit_pair())
def test_logit_loss_finite(name, data):
    s,t,y,T,dtype = data
    fn,ref = LOGIT_LOSSES[name]
    assert_finite(lambda a,b: fn(a, b, y, T), _leaf(s, dtype), _leaf(t, dtype))
    if ref is None or s.ndim > 2: return
    # mdistiller's DKD masks the target with a logit 1000 lower: a mask only while |z|/T stays well below 1000
    if name == 'dkd_loss' and max(s.abs().max(), t.abs().max())/T > 200: return
    assert_matches_reference(lambda a: fn(a, t, y, T), lambda a: ref(a, t, y, T), s)

# --- CRD's scores ---------------------------------------------------------------------------------------------------
@SETTINGS
@given(n=st.integers(1, 3), k=st.integers(1, 4), n_data=st.sampled_from([1, 7, 50_000]), dtype=st.sampled_from(FLOATS),
       kind=st.sampled_from(['random', 'all equal', 'identical rows']), logs=st.lists(st.floats(-40, 40), min_size=15, max_size=15))
def test_crd_nce_loss_finite(n, k, n_data, dtype, kind, logs):
    u = torch.tensor(logs[:n*(k+1)], dtype=torch.float64).view(n, k+1)
    if kind == 'all equal': u = torch.full_like(u, logs[0])
    if kind == 'identical rows': u = u[:1].expand_as(u).clone()
    x = u.exp()                                                          # CRD's scores: exp(v·m/τ)/Z > 0
    assert_finite(lambda a: crd_nce_loss(a, n_data), _leaf(x, dtype))
    assert_matches_reference(lambda a: crd_nce_loss(a, n_data), lambda a: R.ref_contrast_loss(a, n_data), x)

# --- features -------------------------------------------------------------------------------------------------------
def _vid(s, t, a): return vid_loss(s, F.softplus(a) + 1e-5, t)                   # VIDCB's variances: softplus + ε
def _vid_reference(a):
    "RepDistiller's `VIDLoss` with an identity regressor and `a` as its `log_scale`: the variances `log(1 + e^a) + ε`"
    v = R.VIDLoss(len(a), len(a), len(a)).double(); v.regressor = torch.nn.Identity(); v.log_scale = torch.nn.Parameter(a.double())
    return v
def _ofd_margin(a): return -a.abs()                                             # OFD's margins are ≤ 0
def _cosine_defined(s, t):
    "No sample's pooled feature has a norm below 1e-8, where the cosine is an ε's choice: `cosine_similarity` floors each norm at\
    1e-8 without passing the floor's gradient on, and we with (both finite)"
    return all(bool((x.flatten(1).norm(dim=1) > 1e-8).all()) for x in match_features(s, t))
FEATURE_LOSSES = {   # name: (loss(s, t, a) with `a` a per-channel (C,) vector, reference(s, t, a) or None, drawing options
                     # and `ref_if(s, t)`, where the reference is compared)
    'cosine_loss': (lambda s,t,a: cosine_loss(s, t), lambda s,t,a: R.ref_cosine(s, t), dict(ref_if=_cosine_defined)),
    'fitnet_loss': (lambda s,t,a: fitnet_loss(s, t), lambda s,t,a: F.mse_loss(s, t), dict(same_shape=True)),
    'at_loss': (lambda s,t,a: at_loss(s, t), lambda s,t,a: R.ref_at_loss(s, t), dict(square=True)),
    'rkd_loss': (lambda s,t,a: rkd_loss(s, t), lambda s,t,a: R.ref_rkd_loss(s, t), dict(min_n=2)),
    'pkt_loss': (lambda s,t,a: pkt_loss(s, t), lambda s,t,a: R.ref_pkt_loss(s.flatten(1), t.flatten(1)), dict(min_n=2)),
    'sp_loss': (lambda s,t,a: sp_loss(s, t), lambda s,t,a: R.ref_sp_loss(s, t), dict(min_n=2)),
    'nst_loss': (lambda s,t,a: nst_loss(s, t), lambda s,t,a: R.ref_nst_loss(s, t), dict(square=True)),
    'cc_loss': (lambda s,t,a: cc_loss(s, t), lambda s,t,a: R.ref_cc_loss(s.flatten(1), t.flatten(1), 0.4, 2), dict(min_n=2)),
    'hcl_loss': (lambda s,t,a: hcl_loss([s], [t]), lambda s,t,a: R.ref_hcl_loss([s], [t]), dict(same_shape=True, square=True)),
    'vid_loss': (_vid, lambda s,t,a: _vid_reference(a)(s, t), dict(same_shape=True)),
    'ofd_loss': (lambda s,t,a: ofd_loss(s, t, _ofd_margin(a)),
                 lambda s,t,a: R.ofd_distillation_loss(s, t, _ofd_margin(a).view(1, -1, 1, 1))/s.shape[0], dict(same_shape=True)),
    'ab_loss': (lambda s,t,a: ab_loss(s, t), lambda s,t,a: R.ref_ab_loss([s], [t], 1.), dict(same_shape=True)),
}

@pytest.mark.parametrize('name', FEATURE_LOSSES)
@SETTINGS
@given(data=st.data())
def test_feature_loss_finite(name, data):
    fn,ref,opts = FEATURE_LOSSES[name]
    opts = dict(opts); ref_if = opts.pop('ref_if', lambda s,t: True)
    s,t,dtype,cl = data.draw(feature_pair(**opts))
    a = torch.randn(s.shape[1], generator=_gen(data.draw), dtype=torch.float64) * data.draw(st.sampled_from([1., 30.]))
    assert_finite(fn, _leaf(s, dtype, cl), _leaf(t, dtype, cl), _leaf(a, dtype))
    if ref is not None and ref_if(s, t): assert_matches_reference(lambda x: fn(x, t, a), lambda x: ref(x, t, a), s)

@SETTINGS
@given(data=st.data())
def test_fsp_loss_finite(data):
    "FSP relates two layers: a second map per side, with its own channels and (×½) spatial size"
    s1,t1,dtype,cl = data.draw(feature_pair(same_shape=True, square=True))
    n,h = s1.shape[0],s1.shape[2]
    c2,h2 = data.draw(st.integers(1, 5)),data.draw(st.sampled_from([h, max(h//2, 1)]))
    s2 = data.draw(fmap(n, c2, h2, h2)); t2 = s2.clone() if data.draw(st.booleans()) else data.draw(fmap(n, c2, h2, h2))
    assert_finite(lambda a,b,c,d: fsp_loss([a, b], [c, d]), *[_leaf(x, dtype, cl) for x in (s1, s2, t1, t2)])
    assert_matches_reference(lambda x: fsp_loss([x, s2], [t1, t2]), lambda x: R.ref_fsp_loss([x, s2], [t1, t2]), s1)

def test_every_loss_covered():
    "Every public loss of fastkd.losses is drawn above (a new one must be added here)"
    helpers = {'match_features', 'attention_map', 'fsp_matrix'}   # parts of cosine_loss, at_loss and fsp_loss, tested through them
    assert set(fastkd.losses.__all__) - helpers == set(LOGIT_LOSSES) | set(FEATURE_LOSSES) | {'crd_nce_loss', 'fsp_loss'}

# --- NST: the dead-channel fix (issue 25, item 8) ----------------------------------------------------------------------
def _row_norms_before(g, eps=1e-12): return g.diagonal(dim1=1, dim2=2).sqrt().clamp_min(eps)
def nst_before(fs, ft):
    "`nst_loss` as it was before the fix (NaN gradient at an all-zero channel), the CIFAR-10 results' implementation"
    fs,ft = fastkd.losses._to_common_hw(fs, ft)
    g_ss,g_st,g_tt = _grams(fs.flatten(2), ft.detach().flatten(2))
    ns,nt = _row_norms_before(g_ss),_row_norms_before(g_tt)
    k = lambda g,a,b: (g/(a[:,:,None]*b[:,None,:])).pow(2).mean()
    return k(g_tt, nt, nt) + k(g_ss, ns, ns) - 2*k(g_st, ns, nt)

def test_nst_dead_channel():
    "The issue's case: a ReLU map of a small spatial size has all-zero channels; value and gradient finite, equal to RepDistiller's"
    torch.manual_seed(0)
    for shape in [(3,32,2,2), (3,32,1,1), (2,8,4,4)]:
        s = F.relu(torch.randn(shape, dtype=torch.float64)); s[:, 0] = 0             # at least one dead channel
        t = torch.randn(shape, dtype=torch.float64)
        assert (s.flatten(2).abs().sum(2) == 0).any()
        assert not _value_and_grads(nst_before, (s.float().requires_grad_(), t.float()))[1][0].isfinite().all()   # the bug
        for dtype in (torch.float32, torch.bfloat16, torch.float64): assert_finite(nst_loss, _leaf(s, dtype), t.to(dtype))
        assert_matches_reference(lambda x: nst_loss(x, t), lambda x: R.ref_nst_loss(x, t), s)
        v,(g,) = _value_and_grads(nst_loss, (s.detach().requires_grad_(), t))
        assert (g[:, 0] == 0).all()                                                 # a dead channel gets no gradient, as in the reference

def cosine_before(fs, ft):
    "`cosine_loss` before issue 25: the floor on the product |s|²·|t|², so acting on small features (|s|·|t| < 1e-8) too"
    fs,ft = match_features(fs, ft)
    dims = tuple(range(1, fs.ndim))
    dot,ns,nt = (fs*ft).sum(dims),fs.pow(2).sum(dims),ft.pow(2).sum(dims)
    return (1 - dot*torch.rsqrt((ns*nt).clamp_min(1e-16))).mean()

def test_cosine_small_features():
    "Two equal features of norm 5e-5: a cosine of 1 (loss 0), as torch's `cosine_similarity`; it was 0.25 with the floor on the product"
    s = torch.full((2,1,1,1), 5e-5)
    torch.testing.assert_close(cosine_before(s, s), torch.tensor(0.75))
    torch.testing.assert_close(cosine_loss(s, s), torch.tensor(0.), atol=1e-6, rtol=0)

@pytest.mark.parametrize('cl', [False, True])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('name', ['nst_loss', 'cosine_loss'])
def test_fixes_change_nothing_on_ordinary_inputs(name, cl, dtype):
    "On maps without an all-zero channel (NST), or with |s|, |t| and |s|·|t| ≥ 1e-8 (cosine), the fixes change nothing: value and gradient as before,\
    so the committed CIFAR-10 runs stand"
    new,old = dict(nst_loss=(nst_loss, nst_before), cosine_loss=(cosine_loss, cosine_before))[name]
    torch.manual_seed(0)
    for shs,sht in [((4,16,8,8),(4,32,8,8)), ((2,3,2,2),(2,5,4,4)), ((3,32,2,2),(3,32,2,2)), ((2,4,1,1),(2,4,1,1))]:
        s,t = torch.randn(shs, dtype=dtype),torch.randn(sht, dtype=dtype)
        for x in (s, F.relu(s) + 1e-3, 1e-3*s):
            if cl: x,t = x.contiguous(memory_format=torch.channels_last),t.contiguous(memory_format=torch.channels_last)
            v0,(g0,) = _value_and_grads(old, (x.detach().requires_grad_(), t))
            v1,(g1,) = _value_and_grads(new, (x.detach().requires_grad_(), t))
            assert g0.isfinite().all()
            torch.testing.assert_close(v1, v0, rtol=0, atol=1e-6); torch.testing.assert_close(g1, g0, rtol=0, atol=1e-6)
            assert torch.equal(v1, v0) and torch.equal(g1, g0)                      # in fact bit for bit
