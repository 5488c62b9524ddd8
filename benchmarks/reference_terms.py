"""The 19 distillation terms as their reference implementations compute them, for `bench_zoo.py`'s hand-written loops.

Benchmark code, not part of fastkd: each function or module below re-types the operations of the reference code for a
term and its trainable modules (same operations in the same order, same module structure and initialization), with the
repository and file it follows named above it. Where a reference line cannot run on channels-last maps (`.view` of a
non-contiguous tensor) it is `.reshape`, which computes the same values. The references:

- mdistiller: github.com/megvii-research/mdistiller, `mdistiller/distillers/*.py` (KD, DKD, ReviewKD, CRD, OFD)
- RepDistiller: github.com/HobbitLong/RepDistiller, `distiller_zoo/*.py`, `crd/*.py`, `models/util.py`
- DIST: github.com/hunto/DIST_KD, `classification/lib/models/losses/dist_kd.py`
- logit standardization: github.com/sunshangquan/logit-standardization-KD, `mdistiller/distillers/KD.py` (`normalize`, `kd_loss`)
- NKD: github.com/yzd-v/cls_KD, `mmcls/models/dis_losses/nkd.py`
- CC's kernel: github.com/AberHu/Knowledge-Distillation-Zoo, `kd_losses/cc.py`; its heads: RepDistiller's `LinearEmbed`
- OFD: github.com/clovaai/overhaul-distillation, `CIFAR-100/distiller.py` (connector, margin, partial L2)

Each `REFERENCES[name](cb)` reads the settings (layers, weights, temperatures) from the fastkd callback `cb` of the suite's
experiment, so both sides of `bench_zoo.py` compute the same term, and returns a `Ref`: the trainable modules (or None)
and `loss(logits_s, logits_t, target, feats_s, feats_t, sample_idx)`, the weighted term.
"""
import math
from dataclasses import dataclass
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

@dataclass
class Ref:
    loss: object                 # loss(logits_s, logits_t, target, feats_s, feats_t, sample_idx) -> weighted term
    modules: nn.Module = None    # trainable modules, optimized with the student
    on_logits: bool = False      # reads only logits (no hooks)

# --- logits ---------------------------------------------------------------------------------------------
# mdistiller/distillers/KD.py `kd_loss` (and logit-standardization-KD's version, with `normalize` when logit_stand)
def ls_normalize(logit):
    mean = logit.mean(dim=-1, keepdims=True)
    stdv = logit.std(dim=-1, keepdims=True)
    return (logit - mean) / (1e-7 + stdv)

def ref_kd_loss(logits_student_in, logits_teacher_in, temperature, logit_stand=False):
    logits_student = ls_normalize(logits_student_in) if logit_stand else logits_student_in
    logits_teacher = ls_normalize(logits_teacher_in) if logit_stand else logits_teacher_in
    log_pred_student = F.log_softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)
    loss_kd = F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean()
    return loss_kd * temperature**2

# mdistiller/distillers/DKD.py
def _gt_mask(logits, target): return torch.zeros_like(logits).scatter_(1, target.reshape(-1).unsqueeze(1), 1).bool()
def _other_mask(logits, target): return torch.ones_like(logits).scatter_(1, target.reshape(-1).unsqueeze(1), 0).bool()
def _cat_mask(t, mask1, mask2):
    return torch.cat([(t * mask1).sum(dim=1, keepdims=True), (t * mask2).sum(1, keepdims=True)], dim=1)

def ref_dkd_loss(logits_student, logits_teacher, target, alpha, beta, temperature):
    gt_mask, other_mask = _gt_mask(logits_student, target), _other_mask(logits_student, target)
    pred_student = F.softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)
    pred_student = _cat_mask(pred_student, gt_mask, other_mask)
    pred_teacher = _cat_mask(pred_teacher, gt_mask, other_mask)
    log_pred_student = torch.log(pred_student)
    tckd_loss = F.kl_div(log_pred_student, pred_teacher, reduction='sum') * (temperature**2) / target.shape[0]
    pred_teacher_part2 = F.softmax(logits_teacher / temperature - 1000.0 * gt_mask, dim=1)
    log_pred_student_part2 = F.log_softmax(logits_student / temperature - 1000.0 * gt_mask, dim=1)
    nckd_loss = F.kl_div(log_pred_student_part2, pred_teacher_part2, reduction='sum') * (temperature**2) / target.shape[0]
    return alpha * tckd_loss + beta * nckd_loss

# DIST_KD classification/lib/models/losses/dist_kd.py
def _cos(a, b, eps=1e-8): return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)
def _pearson(a, b, eps=1e-8): return _cos(a - a.mean(1).unsqueeze(1), b - b.mean(1).unsqueeze(1), eps)
def _inter(y_s, y_t): return 1 - _pearson(y_s, y_t).mean()
def _intra(y_s, y_t): return _inter(y_s.transpose(0, 1), y_t.transpose(0, 1))
def ref_dist_loss(z_s, z_t, beta, gamma, tau):
    y_s, y_t = (z_s / tau).softmax(dim=1), (z_t / tau).softmax(dim=1)
    return beta * tau**2 * _inter(y_s, y_t) + gamma * tau**2 * _intra(y_s, y_t)

# cls_KD mmcls/models/dis_losses/nkd.py `NKDLoss.forward`
def ref_nkd_loss(logit_s, logit_t, gt_label, temp, gamma):
    label = gt_label.view(len(gt_label), 1)
    N, c = logit_s.shape
    s_i, t_i = F.log_softmax(logit_s, dim=1), F.softmax(logit_t, dim=1)
    s_t, t_t = torch.gather(s_i, 1, label), torch.gather(t_i, 1, label).detach()
    loss_t = -(t_t * s_t).mean()
    mask = torch.ones_like(logit_s).scatter_(1, label, 0).bool()
    logit_s, logit_t = logit_s[mask].reshape(N, -1), logit_t[mask].reshape(N, -1)
    S_i, T_i = F.log_softmax(logit_s / temp, dim=1), F.softmax(logit_t / temp, dim=1)
    loss_non = -gamma * temp**2 * (T_i * S_i).sum(dim=1).mean()
    return loss_t + loss_non

# --- features -------------------------------------------------------------------------------------------
# fastkd's own pooled-feature cosine has no outside reference: fastkd's pooling to one shape (`match_features`, nothing
# when the shapes match), then the textbook form with torch's `cosine_similarity`
def ref_cosine(fs, ft):
    from fastkd.losses import match_features
    fs, ft = match_features(fs, ft)
    return 1 - F.cosine_similarity(fs.flatten(1), ft.flatten(1), dim=1).mean()

# RepDistiller models/util.py `ConvReg` (the equal-size case) and distiller_zoo/FitNet.py `HintLoss` (MSE)
class ConvReg(nn.Module):
    def __init__(self, s_C, t_C):
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(s_C, t_C, kernel_size=3, stride=1, padding=1), nn.BatchNorm2d(t_C), nn.ReLU(inplace=True)
    def forward(self, x): return self.relu(self.bn(self.conv(x)))

# RepDistiller distiller_zoo/AT.py
def ref_at(f, p=2): return F.normalize(f.pow(p).mean(1).reshape(f.size(0), -1))
def ref_at_loss(f_s, f_t, p=2):
    s_H, t_H = f_s.shape[2], f_t.shape[2]
    if s_H > t_H: f_s = F.adaptive_avg_pool2d(f_s, (t_H, t_H))
    elif s_H < t_H: f_t = F.adaptive_avg_pool2d(f_t, (s_H, s_H))
    return (ref_at(f_s, p) - ref_at(f_t, p)).pow(2).mean()

# RepDistiller distiller_zoo/RKD.py
def _rkd_pdist(e, squared=False, eps=1e-12):
    e_square = e.pow(2).sum(dim=1)
    prod = e @ e.t()
    res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps)
    if not squared: res = res.sqrt()
    res = res.clone()
    res[range(len(e)), range(len(e))] = 0
    return res

def ref_rkd_loss(f_s, f_t, w_d=25, w_a=50):
    student, teacher = f_s.reshape(f_s.shape[0], -1), f_t.reshape(f_t.shape[0], -1)
    with torch.no_grad():
        t_d = _rkd_pdist(teacher); t_d = t_d / t_d[t_d > 0].mean()
    d = _rkd_pdist(student); d = d / d[d > 0].mean()
    loss_d = F.smooth_l1_loss(d, t_d)
    with torch.no_grad():
        norm_td = F.normalize(teacher.unsqueeze(0) - teacher.unsqueeze(1), p=2, dim=2)
        t_angle = torch.bmm(norm_td, norm_td.transpose(1, 2)).view(-1)
    norm_sd = F.normalize(student.unsqueeze(0) - student.unsqueeze(1), p=2, dim=2)
    s_angle = torch.bmm(norm_sd, norm_sd.transpose(1, 2)).view(-1)
    return w_d * loss_d + w_a * F.smooth_l1_loss(s_angle, t_angle)

# RepDistiller distiller_zoo/PKT.py `cosine_similarity_loss`
def ref_pkt_loss(output_net, target_net, eps=0.0000001):
    output_net = output_net / (torch.sqrt(torch.sum(output_net ** 2, dim=1, keepdim=True)) + eps)
    output_net[output_net != output_net] = 0
    target_net = target_net / (torch.sqrt(torch.sum(target_net ** 2, dim=1, keepdim=True)) + eps)
    target_net[target_net != target_net] = 0
    model_similarity = (torch.mm(output_net, output_net.transpose(0, 1)) + 1.0) / 2.0
    target_similarity = (torch.mm(target_net, target_net.transpose(0, 1)) + 1.0) / 2.0
    model_similarity = model_similarity / torch.sum(model_similarity, dim=1, keepdim=True)
    target_similarity = target_similarity / torch.sum(target_similarity, dim=1, keepdim=True)
    return torch.mean(target_similarity * torch.log((target_similarity + eps) / (model_similarity + eps)))

# RepDistiller distiller_zoo/SP.py `similarity_loss`
def ref_sp_loss(f_s, f_t):
    bsz = f_s.shape[0]
    f_s, f_t = f_s.reshape(bsz, -1), f_t.reshape(bsz, -1)
    G_s = torch.nn.functional.normalize(torch.mm(f_s, torch.t(f_s)))
    G_t = torch.nn.functional.normalize(torch.mm(f_t, torch.t(f_t)))
    G_diff = G_t - G_s
    return (G_diff * G_diff).view(-1, 1).sum(0) / (bsz * bsz)

# RepDistiller distiller_zoo/NST.py (full_loss=True)
def _poly_kernel(a, b): return (a.unsqueeze(1) * b.unsqueeze(2)).sum(-1).pow(2)
def ref_nst_loss(f_s, f_t):
    s_H, t_H = f_s.shape[2], f_t.shape[2]
    if s_H > t_H: f_s = F.adaptive_avg_pool2d(f_s, (t_H, t_H))
    elif s_H < t_H: f_t = F.adaptive_avg_pool2d(f_t, (s_H, s_H))
    f_s = F.normalize(f_s.reshape(f_s.shape[0], f_s.shape[1], -1), dim=2)
    f_t = F.normalize(f_t.reshape(f_t.shape[0], f_t.shape[1], -1), dim=2)
    return _poly_kernel(f_t, f_t).mean().detach() + _poly_kernel(f_s, f_s).mean() - 2 * _poly_kernel(f_s, f_t).mean()

# RepDistiller models/util.py `LinearEmbed` (CC's heads) and Knowledge-Distillation-Zoo kd_losses/cc.py (the kernel)
class LinearEmbed(nn.Module):
    def __init__(self, dim_in, dim_out=128):
        super().__init__(); self.linear = nn.Linear(dim_in, dim_out)
    def forward(self, x): return self.linear(x.reshape(x.shape[0], -1))

def _cc_corr(feat, gamma, P_order):
    feat = F.normalize(feat, p=2, dim=-1)
    sim_mat = torch.matmul(feat, feat.t())
    corr_mat = torch.zeros_like(sim_mat)
    for p in range(P_order + 1):
        corr_mat += math.exp(-2 * gamma) * (2 * gamma)**p / math.factorial(p) * torch.pow(sim_mat, p)
    return corr_mat
def ref_cc_loss(feat_s, feat_t, gamma, P_order): return F.mse_loss(_cc_corr(feat_s, gamma, P_order), _cc_corr(feat_t, gamma, P_order))

# RepDistiller distiller_zoo/VID.py `VIDLoss`
class VIDLoss(nn.Module):
    def __init__(self, num_input_channels, num_mid_channel, num_target_channels, init_pred_var=5.0, eps=1e-5):
        super().__init__()
        conv1x1 = lambda i, o: nn.Conv2d(i, o, kernel_size=1, padding=0, bias=False, stride=1)
        self.regressor = nn.Sequential(conv1x1(num_input_channels, num_mid_channel), nn.ReLU(),
                                       conv1x1(num_mid_channel, num_mid_channel), nn.ReLU(),
                                       conv1x1(num_mid_channel, num_target_channels))
        self.log_scale = nn.Parameter(np.log(np.exp(init_pred_var - eps) - 1.0) * torch.ones(num_target_channels))
        self.eps = eps
    def forward(self, input, target):
        s_H, t_H = input.shape[2], target.shape[2]
        if s_H > t_H: input = F.adaptive_avg_pool2d(input, (t_H, t_H))
        elif s_H < t_H: target = F.adaptive_avg_pool2d(target, (s_H, s_H))
        pred_mean = self.regressor(input)
        pred_var = (torch.log(1.0 + torch.exp(self.log_scale)) + self.eps).view(1, -1, 1, 1)
        return torch.mean(0.5 * ((pred_mean - target)**2 / pred_var + torch.log(pred_var)))

# mdistiller/distillers/ReviewKD.py `ABF`, `hcl_loss` and the review loop of `forward_train`
class ABF(nn.Module):
    def __init__(self, in_channel, mid_channel, out_channel, fuse):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channel, mid_channel, kernel_size=1, bias=False), nn.BatchNorm2d(mid_channel))
        self.conv2 = nn.Sequential(nn.Conv2d(mid_channel, out_channel, kernel_size=3, stride=1, padding=1, bias=False), nn.BatchNorm2d(out_channel))
        self.att_conv = nn.Sequential(nn.Conv2d(mid_channel * 2, 2, kernel_size=1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)
    def forward(self, x, y=None, shape=None, out_shape=None):
        n, _, h, w = x.shape
        x = self.conv1(x)
        if self.att_conv is not None:
            y = F.interpolate(y, (shape, shape), mode="nearest")
            z = self.att_conv(torch.cat([x, y], dim=1))
            x = x * z[:, 0].view(n, 1, h, w) + y * z[:, 1].view(n, 1, h, w)
        if x.shape[-1] != out_shape: x = F.interpolate(x, (out_shape, out_shape), mode="nearest")
        return self.conv2(x), x

def ref_hcl_loss(fstudent, fteacher):
    loss_all = 0.0
    for fs, ft in zip(fstudent, fteacher):
        n, c, h, w = fs.shape
        loss = F.mse_loss(fs, ft, reduction="mean")
        cnt, tot = 1.0, 1.0
        for l in [4, 2, 1]:
            if l >= h: continue
            cnt /= 2.0
            loss += F.mse_loss(F.adaptive_avg_pool2d(fs, (l, l)), F.adaptive_avg_pool2d(ft, (l, l)), reduction="mean") * cnt
            tot += cnt
        loss_all = loss_all + loss / tot
    return loss_all

class ReviewKDModules(nn.Module):
    "mdistiller's `abfs` (deepest first) and its review loop"
    def __init__(self, in_channels, out_channels, shapes, out_shapes):
        super().__init__()
        mid_channel = min(512, in_channels[-1])
        abfs = nn.ModuleList([ABF(c, mid_channel, out_channels[i], i < len(in_channels) - 1) for i, c in enumerate(in_channels)])
        self.abfs, self.shapes, self.out_shapes = abfs[::-1], shapes[::-1], out_shapes[::-1]
    def forward(self, feats):
        x = feats[::-1]
        results = []
        out_features, res_features = self.abfs[0](x[0], out_shape=self.out_shapes[0])
        results.append(out_features)
        for features, abf, shape, out_shape in zip(x[1:], self.abfs[1:], self.shapes[1:], self.out_shapes[1:]):
            out_features, res_features = abf(features, res_features, shape, out_shape)
            results.insert(0, out_features)
        return results

# mdistiller/distillers/CRD.py (= RepDistiller crd/memory.py, crd/criterion.py): Normalize, Embed, ContrastLoss, ContrastMemory
class CRDNormalize(nn.Module):
    def __init__(self, power=2): super().__init__(); self.power = power
    def forward(self, x): return x.div(x.pow(self.power).sum(1, keepdim=True).pow(1.0 / self.power))

class Embed(nn.Module):
    def __init__(self, dim_in=1024, dim_out=128):
        super().__init__(); self.linear, self.l2norm = nn.Linear(dim_in, dim_out), CRDNormalize(2)
    def forward(self, x): return self.l2norm(self.linear(x.reshape(x.shape[0], -1)))

def ref_contrast_loss(x, num_data):
    eps, bsz, m = 1e-7, x.shape[0], x.size(1) - 1
    Pn = 1 / float(num_data)
    P_pos = x.select(1, 0)
    log_D1 = torch.div(P_pos, P_pos.add(m * Pn + eps)).log_()
    P_neg = x.narrow(1, 1, m)
    log_D0 = torch.div(P_neg.clone().fill_(m * Pn), P_neg.add(m * Pn + eps)).log_()
    return -(log_D1.sum(0) + log_D0.view(-1, 1).sum(0)) / bsz

class ContrastMemory(nn.Module):
    "The negatives `idx` come from the data set in the references (`CIFAR100InstanceSample`, mode 'exact'): passed in"
    def __init__(self, inputSize, output_size, K, T=0.07, momentum=0.5):
        super().__init__()
        self.K = K
        self.register_buffer("params", torch.tensor([K, T, -1, -1, momentum]))
        stdv = 1.0 / math.sqrt(inputSize / 3)
        self.register_buffer("memory_v1", torch.rand(output_size, inputSize).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_v2", torch.rand(output_size, inputSize).mul_(2 * stdv).add_(-stdv))
    def forward(self, v1, v2, y, idx):
        K, T = int(self.params[0].item()), self.params[1].item()
        Z_v1, Z_v2, momentum = self.params[2].item(), self.params[3].item(), self.params[4].item()
        batchSize, outputSize, inputSize = v1.size(0), self.memory_v1.size(0), self.memory_v1.size(1)
        weight_v1 = torch.index_select(self.memory_v1, 0, idx.view(-1)).detach().view(batchSize, K + 1, inputSize)
        out_v2 = torch.exp(torch.div(torch.bmm(weight_v1, v2.view(batchSize, inputSize, 1)), T))
        weight_v2 = torch.index_select(self.memory_v2, 0, idx.view(-1)).detach().view(batchSize, K + 1, inputSize)
        out_v1 = torch.exp(torch.div(torch.bmm(weight_v2, v1.view(batchSize, inputSize, 1)), T))
        if Z_v1 < 0:
            self.params[2] = out_v1.mean() * outputSize; Z_v1 = self.params[2].clone().detach().item()
        if Z_v2 < 0:
            self.params[3] = out_v2.mean() * outputSize; Z_v2 = self.params[3].clone().detach().item()
        out_v1, out_v2 = torch.div(out_v1, Z_v1).contiguous(), torch.div(out_v2, Z_v2).contiguous()
        with torch.no_grad():
            l_pos = torch.index_select(self.memory_v1, 0, y.view(-1))
            l_pos.mul_(momentum); l_pos.add_(torch.mul(v1, 1 - momentum))
            self.memory_v1.index_copy_(0, y, l_pos.div(l_pos.pow(2).sum(1, keepdim=True).pow(0.5)))
            ab_pos = torch.index_select(self.memory_v2, 0, y.view(-1))
            ab_pos.mul_(momentum); ab_pos.add_(torch.mul(v2, 1 - momentum))
            self.memory_v2.index_copy_(0, y, ab_pos.div(ab_pos.pow(2).sum(1, keepdim=True).pow(0.5)))
        return out_v1, out_v2

class CRDModules(nn.Module):
    def __init__(self, s_dim, t_dim, feat_dim, n_data, K, T, momentum, labels):
        super().__init__()
        self.embed_s, self.embed_t = Embed(s_dim, feat_dim), Embed(t_dim, feat_dim)
        self.contrast = ContrastMemory(feat_dim, n_data, K, T, momentum)
        self.n_data, self.K, self.labels = n_data, K, labels
        # RepDistiller dataset/cifar100.py `CIFAR100InstanceSample` keeps the samples of the other classes, per class
        self.counts = torch.bincount(labels); self.starts = self.counts.cumsum(0) - self.counts; self.by_class = labels.argsort(stable=True)
    def contrast_idx(self, y):
        """`CIFAR100InstanceSample.__getitem__` (mode 'exact', is_sample): the sample itself, then K negatives of other classes,
        with replacement. The references draw them in the loader's worker processes, one `np.random.choice` per sample;
        here one vectorized draw of the same distribution, so the loop is not charged for the per-sample Python"""
        c = self.labels[y]; cnt, start = self.counts[c][:, None], self.starts[c][:, None]
        r = (torch.rand(len(y), self.K) * (self.n_data - cnt)).long()
        return torch.cat([y[:, None], self.by_class[r + cnt * (r >= start)]], 1)
    def forward(self, f_s, f_t, idx, contrast_idx):
        out_s, out_t = self.contrast(self.embed_s(f_s), self.embed_t(f_t), idx, contrast_idx)
        return ref_contrast_loss(out_s, self.n_data) + ref_contrast_loss(out_t, self.n_data)

# overhaul-distillation CIFAR-100/distiller.py: `build_feature_connector`, `get_margin_from_BN`, `distillation_loss`
def build_feature_connector(t_channel, s_channel):
    C = [nn.Conv2d(s_channel, t_channel, kernel_size=1, stride=1, padding=0, bias=False), nn.BatchNorm2d(t_channel)]
    for m in C:
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.data.normal_(0, math.sqrt(2. / n))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1); m.bias.data.zero_()
    return nn.Sequential(*C)

def get_margin_from_BN(bn):
    from scipy.stats import norm
    margin = []
    std, mean = bn.weight.data, bn.bias.data
    for (s, m) in zip(std, mean):
        s = abs(s.item()); m = m.item()
        if s == 0: margin.append(min(m, 0.)); continue   # not in the reference: the untrained teacher's zero-initialized BN weights would divide by 0
        if norm.cdf(-m / s) > 0.001:
            margin.append(- s * math.exp(- (m / s) ** 2 / 2) / math.sqrt(2 * math.pi) / norm.cdf(-m / s) + m)
        else: margin.append(-3 * s)
    return torch.FloatTensor(margin).to(std.device)

def ofd_distillation_loss(source, target, margin):
    target = torch.max(target, margin)
    loss = torch.nn.functional.mse_loss(source, target, reduction="none")
    loss = loss * ((source > target) | (target > 0)).float()
    return loss.sum()

class OFDModules(nn.Module):
    def __init__(self, s_channels, t_channels, bns):
        super().__init__()
        self.Connectors = nn.ModuleList([build_feature_connector(t, s) for t, s in zip(t_channels, s_channels)])
        for i, bn in enumerate(bns): self.register_buffer('margin%d' % (i + 1), get_margin_from_BN(bn).unsqueeze(1).unsqueeze(2).unsqueeze(0).detach())
    def forward(self, s_feats, t_feats):
        feat_num, loss_distill = len(s_feats), 0
        for i in range(feat_num):
            s = self.Connectors[i](s_feats[i])
            loss_distill += ofd_distillation_loss(s, t_feats[i].detach(), getattr(self, 'margin%d' % (i + 1))) / 2 ** (feat_num - i - 1)
        return loss_distill / s_feats[0].shape[0]

# RepDistiller distiller_zoo/AB.py `ABLoss` (its connectors are the identity for equal shapes, as in the suite)
def ab_criterion_alternative_l2(source, target, margin):
    loss = ((source + margin) ** 2 * ((source > -margin) & (target <= 0)).float() +
            (source - margin) ** 2 * ((source <= margin) & (target > 0)).float())
    return torch.abs(loss).sum()
def ref_ab_loss(g_s, g_t, margin):
    feat_num, bsz = len(g_s), g_s[0].shape[0]
    w = [2 ** (i - feat_num + 1) for i in range(feat_num)]
    return sum(wi * ab_criterion_alternative_l2(s, t, margin) / bsz for wi, s, t in zip(w, g_s, g_t))

# RepDistiller distiller_zoo/FSP.py
def _compute_fsp(g):
    fsp_list = []
    for i in range(len(g) - 1):
        bot, top = g[i], g[i + 1]
        b_H, t_H = bot.shape[2], top.shape[2]
        if b_H > t_H: bot = F.adaptive_avg_pool2d(bot, (t_H, t_H))
        elif b_H < t_H: top = F.adaptive_avg_pool2d(top, (b_H, b_H))
        bot, top = bot.unsqueeze(1), top.unsqueeze(2)
        bot = bot.reshape(bot.shape[0], bot.shape[1], bot.shape[2], -1)
        top = top.reshape(top.shape[0], top.shape[1], top.shape[2], -1)
        fsp_list.append((bot * top).mean(-1))
    return fsp_list
def ref_fsp_loss(g_s, g_t):
    return sum((s - t).pow(2).mean() for s, t in zip(_compute_fsp(g_s), _compute_fsp(g_t)))

# --- the suite's settings, read from fastkd's callback -------------------------------------------------
def _shapes(model, layers, bs=2):
    "Per-sample output shapes of `layers` of `model` on a CIFAR batch"
    got, hs = {}, [model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: got.__setitem__(n, tuple(o.shape[1:]))) for n in layers]
    was = model.training; model.eval()
    with torch.no_grad(): model(torch.zeros(bs, 3, 32, 32))
    model.train(was)
    for h in hs: h.remove()
    return [got[n] for n in layers]

def references(cb, student, teacher, labels=None) -> Ref:
    "The reference computation of `cb`'s term (`cb`: a fastkd callback of the suite's experiment, read for its settings)"
    kind, w = type(cb).__name__, cb.weight
    sh_s = _shapes(student, cb.student_layers) if cb.student_layers else None
    sh_t = _shapes(teacher, cb.teacher_layers) if cb.teacher_layers else None
    if kind == 'LogitDistillCB':
        return Ref(lambda o, t, y, fs, ft, i: w * ref_kd_loss(o, t, cb.T, cb.standardize), on_logits=True)
    if kind == 'DecoupledKDCB':
        return Ref(lambda o, t, y, fs, ft, i: w * min(1., 1.) * ref_dkd_loss(o, t, y, cb.alpha, cb.beta, cb.T), on_logits=True)
    if kind == 'DISTCB': return Ref(lambda o, t, y, fs, ft, i: w * ref_dist_loss(o, t, cb.beta, cb.gamma, cb.T), on_logits=True)
    if kind == 'NKDCB': return Ref(lambda o, t, y, fs, ft, i: w * ref_nkd_loss(o, t, y, cb.T, cb.gamma), on_logits=True)
    if kind == 'FeatureCosineCB':
        return Ref(lambda o, t, y, fs, ft, i: w * sum(ref_cosine(s, u) for s, u in zip(fs, ft)) / len(fs))
    if kind == 'RegressorMSECB':
        regs = nn.ModuleList([ConvReg(a[0], b[0]) for a, b in zip(sh_s, sh_t)])
        return Ref(lambda o, t, y, fs, ft, i: w * sum(F.mse_loss(r(s), u) for r, s, u in zip(regs, fs, ft)) / len(fs), regs)
    if kind == 'AttentionTransferCB':
        return Ref(lambda o, t, y, fs, ft, i: w * sum(ref_at_loss(s, u, cb.p) for s, u in zip(fs, ft)))
    if kind == 'RelationalKDCB': return Ref(lambda o, t, y, fs, ft, i: w * sum(ref_rkd_loss(s, u, cb.w_dist, cb.w_angle) for s, u in zip(fs, ft)))
    if kind == 'PKTCB': return Ref(lambda o, t, y, fs, ft, i: w * sum(ref_pkt_loss(s, u) for s, u in zip(fs, ft)))
    if kind == 'SimilarityCB': return Ref(lambda o, t, y, fs, ft, i: w * sum(ref_sp_loss(s, u) for s, u in zip(fs, ft)))
    if kind == 'NSTCB': return Ref(lambda o, t, y, fs, ft, i: w * sum(ref_nst_loss(s, u) for s, u in zip(fs, ft)))
    if kind == 'CorrelationCB':
        heads = nn.ModuleList([nn.ModuleList([LinearEmbed(math.prod(a), cb.embed_dim), LinearEmbed(math.prod(b), cb.embed_dim)]) for a, b in zip(sh_s, sh_t)])
        return Ref(lambda o, t, y, fs, ft, i: w * sum(ref_cc_loss(h[0](s), h[1](u), cb.gamma, cb.p_order) for h, s, u in zip(heads, fs, ft)), heads)
    if kind == 'VIDCB':
        vids = nn.ModuleList([VIDLoss(a[0], b[0], b[0], cb.init_pred_var, cb.eps) for a, b in zip(sh_s, sh_t)])
        return Ref(lambda o, t, y, fs, ft, i: w * sum(v(s, u) for v, s, u in zip(vids, fs, ft)), vids)
    if kind == 'ReviewKDCB':
        mods = ReviewKDModules([a[0] for a in sh_s], [b[0] for b in sh_t], [a[1] for a in sh_s], [b[1] for b in sh_t])
        return Ref(lambda o, t, y, fs, ft, i: w * 1. * ref_hcl_loss(mods(fs), ft), mods)   # warm-up factor min(epoch/warmup, 1) = 1
    if kind == 'CRDCB':
        mods = CRDModules(math.prod(sh_s[0]), math.prod(sh_t[0]), cb.feat_dim, len(labels), min(cb.nce_k, len(labels) - 1), cb.nce_t, cb.nce_m, labels)
        return Ref(lambda o, t, y, fs, ft, i: w * mods(fs[0], ft[0], i, mods.contrast_idx(i)), mods)
    if kind == 'OFDCB':
        bns = [teacher.get_submodule(n) for n in cb.teacher_layers]
        mods = OFDModules([a[0] for a in sh_s], [b[0] for b in sh_t], bns)
        return Ref(lambda o, t, y, fs, ft, i: w * mods(fs, ft), mods)
    if kind == 'ABCB': return Ref(lambda o, t, y, fs, ft, i: w * ref_ab_loss(fs, ft, cb.margin))
    if kind == 'FSPCB': return Ref(lambda o, t, y, fs, ft, i: w * ref_fsp_loss(fs, [u.detach() for u in ft]))
    raise KeyError(f'no reference for {kind}')
