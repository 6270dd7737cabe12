"""Real-world KD losses from image-classification projects, re-expressed in our own words.

Every function has the signature ``loss_fn(student_logits, teacher_logits, labels, T, alpha)``
and returns a scalar tensor. The comment above each one says what the original computes and how
its own weights were mapped onto ``alpha``; the sources and the expected conventions are in
``corpus.py``. None of this text or code is copied: it is written from reading the originals.
"""
import torch
import torch.nn.functional as F


def _ce(student_logits, labels):
    return F.cross_entropy(student_logits, labels)


def _kl_batchmean(student_logits, teacher_logits, T):
    """KL(softmax(t/T) || softmax(s/T)) summed over classes, averaged over the batch."""
    log_q = F.log_softmax(student_logits / T, dim=1)
    p = F.softmax(teacher_logits / T, dim=1)
    return F.kl_div(log_q, p, reduction="batchmean")


# --- PyTorch tutorial "Knowledge Distillation Tutorial" (two versions) -----------------------

def pytorch_tutorial_v1(student_logits, teacher_logits, labels, T, alpha):
    # First published version: the "soft targets loss" is -sum p log q per batch row (soft
    # cross-entropy, the teacher's entropy included), divided by the batch size, times T^2.
    # soft_target_loss_weight -> alpha, ce_loss_weight -> 1 - alpha.
    p = F.softmax(teacher_logits / T, dim=-1)
    log_q = F.log_softmax(student_logits / T, dim=-1)
    soft = -(p * log_q).sum() / log_q.size(0) * T**2
    return alpha * soft + (1 - alpha) * _ce(student_logits, labels)


def pytorch_tutorial_v2(student_logits, teacher_logits, labels, T, alpha):
    # Later version: the same line rewritten as sum p (log p - log q), i.e. a true KL.
    p = F.softmax(teacher_logits / T, dim=-1)
    log_q = F.log_softmax(student_logits / T, dim=-1)
    soft = (p * (p.log() - log_q)).sum() / log_q.size(0) * T**2
    return alpha * soft + (1 - alpha) * _ce(student_logits, labels)


# --- keras.io example "Knowledge Distillation" (Keras, re-expressed in torch) ----------------

_KERAS_EPS = 1e-7


def _keras_kl_divergence(y_true, y_pred):
    # keras.losses.KLDivergence: both sides clipped to [eps, 1], summed over the last axis,
    # then averaged over the batch (the default "sum over batch size" reduction).
    y_true = y_true.clamp(_KERAS_EPS, 1.0)
    y_pred = y_pred.clamp(_KERAS_EPS, 1.0)
    return (y_true * torch.log(y_true / y_pred)).sum(dim=-1).mean()


def kerasio_example_2020(student_logits, teacher_logits, labels, T, alpha):
    # alpha * student_loss + (1 - alpha) * KLDivergence(teacher probs, student probs): alpha sits
    # on the hard-label term, and this version has no T^2.
    soft = _keras_kl_divergence(F.softmax(teacher_logits / T, dim=1),
                                F.softmax(student_logits / T, dim=1))
    return alpha * _ce(student_logits, labels) + (1 - alpha) * soft


def kerasio_example_swapped_roles(student_logits, teacher_logits, labels, T, alpha):
    # A stored version assigns self.teacher = student and self.student = teacher in __init__.
    # The network called "teacher" (really the student) runs outside the gradient tape, so its
    # logits get no gradient; the "student loss" is the real teacher's cross-entropy, and the KL
    # is taken with the real student's distribution as y_true: KL(q || p), a reverse KL.
    real_student = student_logits.detach()
    hard = _ce(teacher_logits, labels)
    soft = _keras_kl_divergence(F.softmax(real_student / T, dim=1),
                                F.softmax(teacher_logits / T, dim=1))
    return alpha * hard + (1 - alpha) * soft


def kerasio_example_t2(student_logits, teacher_logits, labels, T, alpha):
    # Later version of the page: the KL term is multiplied by T^2; alpha still on the hard term.
    soft = _keras_kl_divergence(F.softmax(teacher_logits / T, dim=1),
                                F.softmax(student_logits / T, dim=1)) * T**2
    return alpha * _ce(student_logits, labels) + (1 - alpha) * soft


# --- keras.distillation (Keras 3), re-expressed in torch --------------------------------------

def _keras_sparse_ce_on_probabilities(labels, outputs):
    # SparseCategoricalCrossentropy(from_logits=False): the outputs are treated as probabilities,
    # renormalised by their sum and clipped, then -log of the label's entry, averaged.
    outputs = outputs / outputs.sum(dim=-1, keepdim=True)
    outputs = outputs.clamp(_KERAS_EPS, 1 - _KERAS_EPS)
    return -torch.log(outputs.gather(1, labels[:, None])).mean()


def _keras_categorical_ce_on_probabilities(target, outputs):
    # keras.losses.categorical_crossentropy with its default from_logits=False.
    outputs = outputs / outputs.sum(dim=-1, keepdim=True)
    outputs = outputs.clamp(_KERAS_EPS, 1 - _KERAS_EPS)
    return -(target * torch.log(outputs)).sum(dim=-1)


def keras_distiller_first_default(student_logits, teacher_logits, labels, T, alpha):
    # First keras.distillation.Distiller: alpha * student_loss + (1 - alpha) * distillation, with
    # the default student_loss_fn SparseCategoricalCrossentropy(from_logits=False) applied to the
    # student's logits, and LogitsDistillation(kl_divergence) = mean KL times T^2.
    soft = _keras_kl_divergence(F.softmax(teacher_logits / T, dim=-1),
                                F.softmax(student_logits / T, dim=-1)) * T**2
    hard = _keras_sparse_ce_on_probabilities(labels, student_logits)
    return alpha * hard + (1 - alpha) * soft


def keras_strategies_categorical_ce(student_logits, teacher_logits, labels, T, alpha):
    # LogitsDistillation(loss_type="categorical_crossentropy") of the strategies.py version:
    # teacher softmax as target, student logits / T with from_logits=True, mean over the batch,
    # and explicitly no T^2. The Distiller of that time put alpha on the student loss.
    p = F.softmax(teacher_logits / T, dim=-1)
    soft = -(p * F.log_softmax(student_logits / T, dim=-1)).sum(dim=-1).mean()
    return alpha * _ce(student_logits, labels) + (1 - alpha) * soft


def keras_distiller_logits_kl(student_logits, teacher_logits, labels, T, alpha):
    # Later Distiller: student_loss_weight * student_loss + (1 - student_loss_weight) * the
    # distillation losses; LogitsDistillation("kl_divergence") multiplies the mean KL by T^2.
    # student_loss_weight -> alpha; compile(loss=SparseCategoricalCrossentropy(from_logits=True)).
    soft = _keras_kl_divergence(F.softmax(teacher_logits / T, dim=-1),
                                F.softmax(student_logits / T, dim=-1)) * T**2
    return alpha * _ce(student_logits, labels) + (1 - alpha) * soft


def keras_distiller_feature_mse_final(student_logits, teacher_logits, labels, T, alpha):
    # FeatureDistillation(loss="mse") with no layer names: keras mse (mean over the last axis),
    # then mean over the batch, on the final outputs; no temperature anywhere.
    soft = ((teacher_logits - student_logits) ** 2).mean(dim=-1).mean()
    return alpha * _ce(student_logits, labels) + (1 - alpha) * soft


def keras_logits_distillation_cce_string(student_logits, teacher_logits, labels, T, alpha):
    # LogitsDistillation(loss="categorical_crossentropy") of the later version: the string gives
    # the plain keras function (from_logits=False), which is applied to the *scaled logits*
    # (teacher / T as target, student / T as "probabilities"); no softmax and no T^2.
    per_row = _keras_categorical_ce_on_probabilities(teacher_logits / T, student_logits / T)
    return alpha * _ce(student_logits, labels) + (1 - alpha) * per_row.mean()


# --- torchdistill KDLoss (both code paths) ----------------------------------------------------

def torchdistill_kd_with_alpha(student_logits, teacher_logits, labels, T, alpha):
    # alpha * hard + beta * T^2 * soft with beta = 1 - alpha (default), reduction batchmean.
    soft = _kl_batchmean(student_logits, teacher_logits, T)
    return alpha * _ce(student_logits, labels) + (1 - alpha) * T**2 * soft


def torchdistill_kd_without_alpha(student_logits, teacher_logits, labels, T, alpha):
    # alpha=None (or 0, or no targets): the soft KL is returned alone, without T^2.
    return _kl_batchmean(student_logits, teacher_logits, T)


# --- knowledge-distillation-pytorch and close relatives ---------------------------------------

def haitongli_loss_fn_kd(student_logits, teacher_logits, labels, T, alpha):
    # nn.KLDivLoss() with its default 'mean' (divides by batch * classes), times alpha * T * T,
    # plus (1 - alpha) * cross-entropy.
    kl = torch.nn.KLDivLoss()(F.log_softmax(student_logits / T, dim=1),
                              F.softmax(teacher_logits / T, dim=1))
    return kl * (alpha * T * T) + _ce(student_logits, labels) * (1.0 - alpha)


def mepeichun_distillation(student_logits, teacher_logits, labels, T, alpha):
    # A widely copied course variant of the above with an extra factor 2.0 on the soft term.
    kl = torch.nn.KLDivLoss()(F.log_softmax(student_logits / T, dim=1),
                              F.softmax(teacher_logits / T, dim=1))
    return kl * (T * T * 2.0 * alpha) + _ce(student_logits, labels) * (1.0 - alpha)


def deit_soft_distillation(student_logits, teacher_logits, labels, T, alpha):
    # kl_div in log space (log_target=True), summed, times T*T, divided by numel = batch*classes.
    # base_loss * (1 - alpha) + distillation * alpha; base criterion mapped to cross-entropy.
    kl = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.log_softmax(teacher_logits / T, dim=1),
                  reduction="sum", log_target=True)
    distillation = kl * (T * T) / student_logits.numel()
    return _ce(student_logits, labels) * (1 - alpha) + distillation * alpha


def intel_distiller_policy(student_logits, teacher_logits, labels, T, alpha):
    # The policy caches a *new tensor* built from the student's output (a leaf with
    # requires_grad=True), so the soft term's gradient never reaches the student. Summed KL
    # divided by the batch, no T^2; weights student=1-alpha, distill=alpha.
    cached = student_logits.detach().clone().requires_grad_(True)
    soft_targets = F.softmax(teacher_logits / T, dim=1).detach()
    soft = F.kl_div(F.log_softmax(cached / T, dim=1), soft_targets, reduction="sum")
    soft = soft / soft_targets.shape[0]
    return (1 - alpha) * _ce(student_logits, labels) + alpha * soft


def repdistiller_distill_kl(student_logits, teacher_logits, labels, T, alpha):
    # DistillKL: summed KL * T^2 / batch. train_student: gamma * CE + alpha * KL (+ beta * other,
    # zero here); gamma -> 1 - alpha.
    kl = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                  reduction="sum") * T**2 / student_logits.shape[0]
    return (1 - alpha) * _ce(student_logits, labels) + alpha * kl


def mdistiller_kd(student_logits, teacher_logits, labels, T, alpha):
    # kl_div(reduction="none").sum(1).mean() * T^2; ce_weight -> 1 - alpha, kd_weight -> alpha.
    kd = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                  reduction="none").sum(1).mean() * T**2
    return (1 - alpha) * _ce(student_logits, labels) + alpha * kd


def mdistiller_dkd(student_logits, teacher_logits, labels, T, alpha):
    # Decoupled KD: a binary KL on (target, non-target) mass plus a KL over the non-target
    # classes, each summed, times T^2, divided by the batch; DKD's own weights 1 and 8, CE weight
    # 1, warm-up finished. The signature's alpha has no counterpart and is ignored.
    gt = torch.zeros_like(student_logits).scatter_(1, labels[:, None], 1).bool()
    q = F.softmax(student_logits / T, dim=1)
    p = F.softmax(teacher_logits / T, dim=1)
    q_two = torch.stack([(q * gt).sum(1), (q * ~gt).sum(1)], dim=1)
    p_two = torch.stack([(p * gt).sum(1), (p * ~gt).sum(1)], dim=1)
    tckd = F.kl_div(torch.log(q_two), p_two, reduction="sum") * T**2 / labels.shape[0]
    log_q_rest = F.log_softmax(student_logits / T - 1000.0 * gt, dim=1)
    p_rest = F.softmax(teacher_logits / T - 1000.0 * gt, dim=1)
    nckd = F.kl_div(log_q_rest, p_rest, reduction="sum") * T**2 / labels.shape[0]
    return _ce(student_logits, labels) + 1.0 * tckd + 8.0 * nckd


def _z_score(logits):
    return (logits - logits.mean(dim=-1, keepdim=True)) / (1e-7 + logits.std(dim=-1, keepdim=True))


def logit_standardization_kd(student_logits, teacher_logits, labels, T, alpha):
    # mdistiller KD with LOGIT_STAND on: both sides z-scored per row before / T and softmax.
    kd = F.kl_div(F.log_softmax(_z_score(student_logits) / T, dim=1),
                  F.softmax(_z_score(teacher_logits) / T, dim=1), reduction="none").sum(1).mean()
    return (1 - alpha) * _ce(student_logits, labels) + alpha * kd * T**2


def aberhu_soft_target(student_logits, teacher_logits, labels, T, alpha):
    # train_st.py: cls_loss + lambda_st * (summed KL * T*T / batch); lambda_st -> alpha, the
    # classification loss keeps weight 1.
    st = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                  reduction="sum") * (T * T) / student_logits.size(0)
    return _ce(student_logits, labels) + alpha * st


def aberhu_logits_mse(student_logits, teacher_logits, labels, T, alpha):
    # "Do deep nets really need to be deep?": mse_loss on raw logits (mean over batch*classes);
    # train_logits.py: cls_loss + lambda_logits * logits_loss; lambda -> alpha; T unused.
    return _ce(student_logits, labels) + alpha * F.mse_loss(student_logits, teacher_logits.detach())


def kdlib_vanilla_kd(student_logits, teacher_logits, labels, T, alpha):
    # VanillaKD with its default loss_fn=nn.MSELoss(): squared error between the softened
    # probabilities, mean over batch*classes, times distil_weight * T * T.
    p = F.softmax(teacher_logits / T, dim=1)
    q = F.softmax(student_logits / T, dim=1)
    loss = (1 - alpha) * _ce(student_logits, labels)
    return loss + (alpha * T * T) * torch.nn.MSELoss()(p, q)


def mmdet_localization_distillation(student_logits, teacher_logits, labels, T, alpha):
    # kl_div(reduction="none").mean(1) * T*T per sample, then the 'mean' reduction over samples,
    # loss_weight 1. No hard term in this loss; alpha ignored.
    target = F.softmax(teacher_logits / T, dim=1).detach()
    per_sample = F.kl_div(F.log_softmax(student_logits / T, dim=1), target,
                          reduction="none").mean(1) * (T * T)
    return per_sample.mean()


def mmrazor_kldivergence_v0(student_logits, teacher_logits, labels, T, alpha):
    # Early mmrazor "KLDivergence": actually sum(-p * log q) * tau^2 / N (a soft cross-entropy).
    # loss_weight -> alpha, added to the student's own classification loss (weight 1).
    p = F.softmax(teacher_logits.detach() / T, dim=1)
    soft = torch.sum(-p * F.log_softmax(student_logits / T, dim=1)) * T**2
    return _ce(student_logits, labels) + alpha * soft / student_logits.shape[0]


def mmrazor_kldivergence_v1(student_logits, teacher_logits, labels, T, alpha):
    # mmrazor 1.x: tau^2 * kl_div(..., reduction='batchmean') * loss_weight; same mapping.
    soft = T**2 * _kl_batchmean(student_logits, teacher_logits.detach(), T)
    return _ce(student_logits, labels) + alpha * soft


def timm_logit_distillation_complementary(student_logits, teacher_logits, labels, T, alpha):
    # Only task_loss_weight given: task * CE + (1 - task) * KL(log_target) * T^2;
    # task_loss_weight -> alpha.
    kd = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.log_softmax(teacher_logits / T, dim=-1),
                  reduction="batchmean", log_target=True) * T**2
    return alpha * _ce(student_logits, labels) + (1 - alpha) * kd


def timm_logit_distillation_defaults(student_logits, teacher_logits, labels, T, alpha):
    # Neither weight given: both default to 1.0; alpha has no counterpart.
    kd = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.log_softmax(teacher_logits / T, dim=-1),
                  reduction="batchmean", log_target=True) * T**2
    return 1.0 * _ce(student_logits, labels) + 1.0 * kd


def matchmaker_kldiv_teacher_list(student_logits, teacher_logits, labels, T, alpha):
    # KLDivLoss(batchmean) given softmax *probabilities* as input instead of log-probabilities:
    # sum p (log p - q) / batch. No temperature, no hard term.
    kl = torch.nn.KLDivLoss(reduction="batchmean")
    return kl(student_logits.softmax(-1), teacher_logits.softmax(-1))


def distillclip_soft_label(student_logits, teacher_logits, labels, T, alpha):
    # KLDivLoss(reduction='sum') on softmax(s/T).log() and softmax(t/T), times T^2: summed over
    # the batch as well as the classes.
    kl = torch.nn.KLDivLoss(reduction="sum")
    return kl(F.softmax(student_logits / T, dim=1).log(), F.softmax(teacher_logits / T, dim=1)) * T**2


def inheritune_distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    # KLDivLoss(batchmean) on the softened distributions; no T^2; the function alone.
    return torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(student_logits / T, dim=-1),
                                                     F.softmax(teacher_logits / T, dim=-1))


def ddranking_soft_cross_entropy(student_logits, teacher_logits, labels, T, alpha):
    # SoftCrossEntropyLoss: sum(-log_softmax(s/T) * softmax(t/T)) / batch; no T^2.
    per = -F.log_softmax(student_logits / T, dim=1) * F.softmax(teacher_logits / T, dim=1)
    return per.sum() / student_logits.size(0)


def colbert_distillation(student_logits, teacher_logits, labels, T, alpha):
    # Teacher scores are multiplied by distillation_alpha (an inverse temperature on the teacher
    # only; mapped as 1 / T), student scores are used as they are; KL in log space, batchmean.
    target = F.log_softmax(teacher_logits * (1.0 / T), dim=-1)
    log_scores = F.log_softmax(student_logits, dim=-1)
    return torch.nn.KLDivLoss(reduction="batchmean", log_target=True)(log_scores, target)


def dino_cross_entropy(student_logits, teacher_logits, labels, T, alpha):
    # DINOLoss for one (teacher view, student view) pair: the student is sharpened by its own
    # fixed temperature 0.1, the teacher by the teacher temperature (mapped to T) after centring
    # (centre still zero at the start); cross-entropy summed over classes, mean over the batch.
    q = F.softmax(teacher_logits / T, dim=-1).detach()
    return torch.sum(-q * F.log_softmax(student_logits / 0.1, dim=-1), dim=-1).mean()
