"""Real-world KD losses from image-classification projects, re-expressed in our own words (corpus B).

Every function has the signature ``loss_fn(student_logits, teacher_logits, labels, T, alpha)`` and
returns a scalar tensor. The comment above each one says what the original computes and how its own
weights were mapped onto ``alpha``; sources and expected conventions are in ``corpus.py``. Nothing here
is copied: it is written from reading the originals (several of them PaddlePaddle code, restated in
torch).
"""
import torch
import torch.nn.functional as F


def _ce(student_logits, labels):
    return F.cross_entropy(student_logits, labels)


def _kl_rows(log_q, p):
    """KL(p || q) per row, from the student's log-probabilities and the teacher's probabilities."""
    return F.kl_div(log_q, p, reduction="none").sum(dim=1)


# --- Teacher-free KD (Tf-KD) -----------------------------------------------------------------

def tfkd_loss_kd_self(student_logits, teacher_logits, labels, T, alpha):
    # loss_kd_self: nn.KLDivLoss() with its default 'mean' (over batch AND classes), times T*T,
    # times params.multiplier (the comment says 1 in most runs, 10 or 50 in some; 10 taken here),
    # blended (1 - alpha) * CE + alpha * KL.
    kl = torch.nn.KLDivLoss()(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1))
    return (1.0 - alpha) * _ce(student_logits, labels) + alpha * kl * (T * T) * 10.0


# --- cls_KD (yzd-v): KD, NKD ------------------------------------------------------------------

def clskd_kd_soft_ce(student_logits, teacher_logits, labels, T, alpha):
    # KDLoss returns (1 - alpha, kd); the distiller multiplies the student's own CE by the first and
    # adds kd = -alpha * T^2 * mean over the batch of sum_c p log q (a soft cross-entropy, with
    # torch.log of the softmax rather than log_softmax).
    q = F.softmax(student_logits / T, dim=1)
    p = F.softmax(teacher_logits / T, dim=1)
    kd = -alpha * (T**2) * (p * torch.log(q)).sum(dim=1).mean()
    return (1 - alpha) * _ce(student_logits, labels) + kd


def _nkd(student_logits, teacher_logits, labels, T, drop_target):
    gamma = 1.5
    label = labels.view(-1, 1)
    n = student_logits.shape[0]
    # target part at temperature 1: -(teacher's target probability * student's target log-prob)
    log_q = F.log_softmax(student_logits, dim=1)
    p_target = F.softmax(teacher_logits, dim=1).gather(1, label).detach()
    target_part = -(p_target * log_q.gather(1, label)).mean()
    # non-target part at temperature T, times gamma * T^2
    keep = torch.ones_like(student_logits).scatter_(1, label, 0 if drop_target else 1).bool()
    s_rest = student_logits[keep].reshape(n, -1)
    t_rest = teacher_logits[keep].reshape(n, -1)
    non_target = (F.softmax(t_rest / T, dim=1) * F.log_softmax(s_rest / T, dim=1)).sum(dim=1).mean()
    return target_part - gamma * (T**2) * non_target


def clskd_nkd(student_logits, teacher_logits, labels, T, alpha):
    # NKDLoss (temp -> T, gamma 1.5) as in mmcls/models/dis_losses/nkd.py: the non-target mask
    # removes the label's column. The student's head CE (weight 1) is added by the distiller.
    return _ce(student_logits, labels) + _nkd(student_logits, teacher_logits, labels, T, True)


def clskd_nkd_mask_keeps_target(student_logits, teacher_logits, labels, T, alpha):
    # Version of mmcls/distillation/losses/nkd.py whose mask is built as ones.scatter_(.., 1): every
    # column stays, so the "non-target" soft cross-entropy runs over all classes.
    return _ce(student_logits, labels) + _nkd(student_logits, teacher_logits, labels, T, False)


# --- PaddleClas (paddle code restated in torch) -----------------------------------------------

def paddleclas_dml_with_gt(student_logits, teacher_logits, labels, T, alpha):
    # DMLLoss(act="softmax"): (KL(p || q) + KL(q || p)) / 2 with batchmean reductions, no
    # temperature; DistillationGTCELoss adds the student's CE, both weights 1.0 in the configs.
    q = F.softmax(student_logits, dim=-1)
    p = F.softmax(teacher_logits, dim=-1)
    sym = (F.kl_div(torch.log(q), p, reduction="batchmean") + F.kl_div(torch.log(p), q, reduction="batchmean")) / 2.0
    return _ce(student_logits, labels) + sym


def paddleclas_kldiv_with_gt(student_logits, teacher_logits, labels, T, alpha):
    # KLDivLoss: summed KL * T^2 / batch. Student CE weight 1, DistillationKLDivLoss weight -> alpha.
    kl = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                  reduction="sum") * (T**2) / student_logits.shape[0]
    return _ce(student_logits, labels) + alpha * kl


def _row_standardise(logits, multiplier):
    # paddle's layer_norm over the class axis without weight/bias (biased variance, eps 1e-7).
    return F.layer_norm(logits, logits.shape[1:], eps=1e-7) * multiplier


def paddleclas_skd(student_logits, teacher_logits, labels, T, alpha):
    # SKDLoss (multiplier 2.0, its own alpha -> alpha): both logits layer-normed and scaled, soft CE at
    # T times T^2 (batch mean), plus (1 - alpha) * CE of the *normalised* student logits.
    s = _row_standardise(student_logits, 2.0)
    t = _row_standardise(teacher_logits, 2.0)
    kd = -(F.softmax(t / T, dim=-1) * F.log_softmax(s / T, dim=-1)).sum(dim=1).mean() * T**2
    hard = -(F.one_hot(labels, s.shape[1]) * F.log_softmax(s, dim=-1)).sum(dim=1).mean()
    return kd * alpha + hard * (1 - alpha)


def paddleclas_wsl_with_gt(student_logits, teacher_logits, labels, T, alpha):
    # WSLLoss (weighted soft labels): per-row soft CE at T, weighted by 1 - exp(-ratio) where the
    # ratio of the student's to the teacher's detached label CE (temperature 1) is clipped at 0;
    # T^2 * mean. Student CE weight 1, WSL weight -> alpha.
    one_hot = F.one_hot(labels, student_logits.shape[1]).to(student_logits.dtype)
    ce_s = -(one_hot * F.log_softmax(student_logits.detach(), dim=-1)).sum(dim=1)
    ce_t = -(one_hot * F.log_softmax(teacher_logits.detach(), dim=-1)).sum(dim=1)
    ratio = torch.clamp(ce_s / (ce_t + 1e-7), min=0)
    soft = -(F.softmax(teacher_logits / T, dim=-1) * F.log_softmax(student_logits / T, dim=-1)).sum(dim=1)
    wsl = (T**2) * (soft * (1 - torch.exp(-ratio))).mean()
    return _ce(student_logits, labels) + alpha * wsl


def _pearson_rows(a, b, eps=1e-8):
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def _dist_relations(y_s, y_t):
    inter = 1 - _pearson_rows(y_s, y_t).mean()
    intra = 1 - _pearson_rows(y_s.t(), y_t.t()).mean()
    return inter + intra


def paddleclas_dist(student_logits, teacher_logits, labels, T, alpha):
    # DISTLoss (beta = gamma = 1): one minus the Pearson correlation of the softmax outputs, averaged
    # over rows (inter-class) plus the same over columns (intra-class). No temperature in this port.
    return _dist_relations(F.softmax(student_logits, dim=-1), F.softmax(teacher_logits, dim=-1))


def paddleclas_ce_pair_with_gt(student_logits, teacher_logits, labels, T, alpha):
    # DistillationCELoss: CELoss(student, teacher) sees a label with as many columns as the logits,
    # softmaxes it and takes a soft cross-entropy, mean over the batch. Plus the GT CE (weights 1).
    soft = -(F.softmax(teacher_logits, dim=-1) * F.log_softmax(student_logits, dim=-1)).sum(dim=1).mean()
    return _ce(student_logits, labels) + soft


def _two_bin(probs, gt):
    return torch.stack([(probs * gt).sum(1), (probs * (1 - gt)).sum(1)], dim=1)


def paddleclas_dkd(student_logits, teacher_logits, labels, T, alpha):
    # DKDLoss with its defaults alpha = beta = 1: binary target/non-target KL plus the KL over the
    # non-target classes (target masked by -1000), each summed, * T^2 / batch. Used alone here.
    gt = F.one_hot(labels, student_logits.shape[1]).to(student_logits.dtype)
    q2 = _two_bin(F.softmax(student_logits / T, dim=1), gt)
    p2 = _two_bin(F.softmax(teacher_logits / T, dim=1), gt)
    n = labels.shape[0]
    tckd = F.kl_div(torch.log(q2), p2, reduction="sum") * T**2 / n
    nckd = F.kl_div(F.log_softmax(student_logits / T - 1000.0 * gt, dim=1),
                    F.softmax(teacher_logits / T - 1000.0 * gt, dim=1), reduction="sum") * T**2 / n
    return 1.0 * tckd + 1.0 * nckd


# --- CTKD (fixed temperature path) ----------------------------------------------------------

def ctkd_fixed_temperature(student_logits, teacher_logits, labels, T, alpha):
    # DistillKL: KLDivLoss(batchmean) * T * T; loops.py: gamma * CE + alpha * KL + beta * other, with
    # the script's -r 0.1 (gamma) and -b 0; opt.alpha -> alpha; have_mlp off so temp = kd_T -> T.
    kl = torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(student_logits / T, dim=1),
                                                   F.softmax(teacher_logits / T, dim=1)) * T * T
    return 0.1 * _ce(student_logits, labels) + alpha * kl


# --- DeiT 'hard' distillation -----------------------------------------------------------------

def deit_hard_distillation(student_logits, teacher_logits, labels, T, alpha):
    # distillation_type='hard': CE against the teacher's argmax (tau unused); base * (1 - alpha) +
    # distillation * alpha. The distillation-token head is mapped to the same student logits.
    distill = F.cross_entropy(student_logits, teacher_logits.argmax(dim=1))
    return _ce(student_logits, labels) * (1 - alpha) + distill * alpha


# --- KD_Lib (SforAiDl): TAKD, SelfTraining, MeanTeacher ----------------------------------------

def kdlib_takd_default_mse(student_logits, teacher_logits, labels, T, alpha):
    # TAKD.calculate_kd_loss with its default loss_fn=nn.MSELoss(): squared error between the two
    # *log*-softmax outputs at T (mean over batch*classes) * distil_weight * T^2 + (1 - w) * CE.
    loss = (1 - alpha) * _ce(student_logits, labels)
    mse = torch.nn.MSELoss()(F.log_softmax(student_logits / T, dim=1), F.log_softmax(teacher_logits / T, dim=1))
    return loss + (alpha * T * T) * mse


def kdlib_self_training(student_logits, teacher_logits, labels, T, alpha):
    # SelfTraining (Tf-KD self): default nn.KLDivLoss() ('mean'), student log_softmax WITHOUT the
    # temperature, teacher softmax(t / T); no T^2; (1 - w) * CE + w * KL, distil_weight -> alpha.
    kl = torch.nn.KLDivLoss()(F.log_softmax(student_logits, dim=1), F.softmax(teacher_logits / T, dim=1))
    return (1 - alpha) * _ce(student_logits, labels) + alpha * kl


def kdlib_mean_teacher(student_logits, teacher_logits, labels, T, alpha):
    # MeanTeacher.calculate_kd_loss calls an nn.LogSoftmax(dim=1) module with an extra dim=1 keyword,
    # which raises TypeError before any loss is computed. Class and consistency logits are both
    # mapped to student_logits, the teacher's first output to teacher_logits.
    class_logit = consis_logit = student_logits
    num_classes = consis_logit.size()[1]
    res_loss = torch.sum((class_logit - consis_logit) ** 2) / num_classes
    log_softmax = torch.nn.LogSoftmax(dim=1)
    student_softmax = log_softmax(consis_logit, dim=1)
    teacher_softmax = log_softmax(teacher_logits, dim=1)
    consis = torch.nn.MSELoss()(student_softmax, teacher_softmax) / num_classes
    return _ce(class_logit, labels) + res_loss + consis


# --- data-free KD ---------------------------------------------------------------------------

def dfad_l1_logits(student_logits, teacher_logits, labels, T, alpha):
    # DFAD student step: F.l1_loss(s_logit, t_logit.detach()): mean absolute logit difference.
    return F.l1_loss(student_logits, teacher_logits.detach())


def zskt_student_divergence(student_logits, teacher_logits, labels, T, alpha):
    # ZeroShotKTSolver.divergence: F.kl_div(log_softmax(s / KL_T), softmax(t / KL_T)) with the
    # default 'mean' reduction (batch*classes), no T^2; AT_beta = 0 (no attention term).
    return F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1))


# --- Apple ml-cvnets ------------------------------------------------------------------------

def cvnets_soft_kl(student_logits, teacher_logits, labels, T, alpha):
    # SoftKLLoss: kl_div(log-probs, log-probs, batchmean, log_target=True) * T^2; labels unused.
    teacher_lprobs = F.log_softmax(teacher_logits / T, dim=1).detach()
    student_lprobs = F.log_softmax(student_logits / T, dim=-1)
    return F.kl_div(student_lprobs, teacher_lprobs, reduction="batchmean", log_target=True) * T**2


def cvnets_hard_distillation(student_logits, teacher_logits, labels, T, alpha):
    # HardDistillationLoss with its defaults topk=1, label_smoothing=0: CE against the teacher's
    # top-1 class; the ground-truth labels are not used.
    top1 = F.softmax(teacher_logits, dim=-1).detach().argmax(dim=-1)
    return F.cross_entropy(student_logits, top1, reduction="mean", label_smoothing=0.0)


# --- fasterai (first KnowledgeDistillation callback) -------------------------------------------

def fasterai_distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    # DistillationLoss: KLDivLoss(batchmean) * (T*T * 2.0 * alpha) + CE * (1 - alpha).
    kl = torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(student_logits / T, dim=-1),
                                                   F.softmax(teacher_logits / T, dim=-1))
    return kl * (T * T * 2.0 * alpha) + _ce(student_logits, labels) * (1.0 - alpha)


# --- attention-transfer (szagoruyko), two versions of utils.distillation ---------------------

def attention_transfer_distillation_v0(student_logits, teacher_logits, labels, T, alpha):
    # Older utils.py: F.kl_div with the then-default elementwise mean (batch*classes), softmaxes
    # without an explicit dim (dim 1 for 2-D input), times T*T * 2 * alpha, + (1 - alpha) * CE.
    kl = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1), reduction="mean")
    return kl * (T * T * 2.0 * alpha) + _ce(student_logits, labels) * (1.0 - alpha)


def attention_transfer_distillation_v1(student_logits, teacher_logits, labels, T, alpha):
    # Later utils.py: summed KL (size_average=False) * T^2 / batch; alpha * KL + (1 - alpha) * CE.
    p = F.log_softmax(student_logits / T, dim=1)
    q = F.softmax(teacher_logits / T, dim=1)
    l_kl = F.kl_div(p, q, reduction="sum") * (T**2) / student_logits.shape[0]
    return l_kl * alpha + _ce(student_logits, labels) * (1.0 - alpha)


# --- once-for-all (mit-han-lab) --------------------------------------------------------------

def ofa_kd_ce(student_logits, teacher_logits, labels, T, alpha):
    # run_manager train loop, kd_type 'ce': soft label = softmax(teacher) (no temperature);
    # mean over batch of sum(-soft * log_softmax(student)); loss = kd_ratio * kd + CE.
    # kd_ratio -> alpha; train_criterion mapped to plain CE (label smoothing off).
    soft_label = F.softmax(teacher_logits.detach(), dim=1)
    kd = torch.mean(torch.sum(-soft_label * F.log_softmax(student_logits, dim=1), 1))
    return alpha * kd + _ce(student_logits, labels)


def ofa_kd_mse(student_logits, teacher_logits, labels, T, alpha):
    # kd_type 'mse': F.mse_loss(student logits, teacher logits); loss = kd_ratio * kd + CE.
    kd = F.mse_loss(student_logits, teacher_logits.detach())
    return alpha * kd + _ce(student_logits, labels)


# --- slimmable networks (in-place distillation) -------------------------------------------------

def slimmable_inplace_distillation(student_logits, teacher_logits, labels, T, alpha):
    # CrossEntropyLossSoft gives -<soft_target, log_softmax(output)> per row; forward_loss takes the
    # mean. The soft target is softmax of the widest network's output (teacher_logits), T = 1.
    soft_target = F.softmax(teacher_logits, dim=1).detach()
    per_row = -torch.bmm(soft_target.unsqueeze(1), F.log_softmax(student_logits, dim=1).unsqueeze(2))
    return torch.mean(per_row)


# --- PS-KD (progressive self-knowledge distillation) -------------------------------------------

def pskd_progressive_targets(student_logits, teacher_logits, labels, T, alpha):
    # Targets are (1 - alpha_t) * one-hot + alpha_t * softmax(previous-epoch output) (mapped to
    # teacher_logits, temperature 1); Custom_CrossEntropy_PSKD: (-targets * log_softmax).mean(0).sum().
    # alpha_t -> alpha.
    one_hot = F.one_hot(labels, student_logits.shape[1]).to(student_logits.dtype)
    targets = (1 - alpha) * one_hot + alpha * F.softmax(teacher_logits, dim=1).detach()
    return (-targets * F.log_softmax(student_logits, dim=1)).mean(0).sum()


# --- code without a named repository (exact-string search hit) ----------------------------------

def style_kd_no_hard_term(student_logits, teacher_logits, labels, T, alpha):
    # A distillation_loss whose cross-entropy line is commented out: nn.KLDivLoss() ('mean') of
    # log_softmax(y / T) against softmax(teacher / T) times (T*T * 2.0 * alpha); nothing else.
    kl = torch.nn.KLDivLoss()(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1))
    return kl * (T * T * 2.0 * alpha)


# --- ProDA (microsoft) self-distillation stage ----------------------------------------------------

def proda_kl_div_on_probabilities(student_logits, teacher_logits, labels, T, alpha):
    # adaptation_modelv2.py: the student's softmax (NOT its log) is passed to F.kl_div as the input,
    # reduction 'none', then masked by (teacher != 250), which always holds for probabilities, and
    # averaged over every element; loss = loss + opt.distillation * loss_kd. A maintainer confirmed
    # in the issues that it should be log_softmax. Pixels -> rows, opt.distillation -> alpha, the
    # segmentation loss -> CE; no temperature.
    student = F.softmax(student_logits, dim=1)
    teacher = F.softmax(teacher_logits, dim=1)
    loss_kd = F.kl_div(student, teacher, reduction="none")
    mask = (teacher != 250).float()
    loss_kd = (loss_kd * mask).sum() / mask.sum()
    return _ce(student_logits, labels) + alpha * loss_kd
