"""Real-world KD losses from compression toolkits and tutorials, re-expressed in our own words (corpus B).

Signature as in ``fns_vision``. Keras and PaddlePaddle code is restated in torch.
"""
import torch
import torch.nn.functional as F

# --- mmrazor (functions the first corpus does not hold) -----------------------------------------

def mmrazor_kd_soft_ce(student_logits, teacher_logits, labels, T, alpha):
    # KDSoftCELoss: preds_S = preds_S.detach() first, then mmcls soft_cross_entropy of
    # (student / tau) against softmax(teacher / tau), mean over the batch, * tau^2 (mult_tem_square
    # True), loss_weight 1. Because of the detach the student receives no gradient from it.
    preds_s = student_logits.detach() / T
    soft_label = F.softmax(teacher_logits / T, dim=-1)
    per_row = (-soft_label * F.log_softmax(preds_s, dim=-1)).sum(dim=-1)
    return per_row.mean() * (T**2)


def mmrazor_dist_tau(student_logits, teacher_logits, labels, T, alpha):
    # DISTLoss(tau -> T): softmax(logits / tau); tau^2 * (1 - row Pearson) + tau^2 * (1 - column
    # Pearson), inter/intra weights 1, loss_weight 1.
    y_s = (student_logits / T).softmax(dim=1)
    y_t = (teacher_logits.detach() / T).softmax(dim=1)
    return T**2 * _one_minus_pearson(y_s, y_t) + T**2 * _one_minus_pearson(y_s.t(), y_t.t())


def _one_minus_pearson(a, b, eps=1e-8):
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return 1 - ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)).mean()


# --- compressors (elephantmipt) ----------------------------------------------------------------

def compressors_kl_div_loss(student_logits, teacher_logits, labels, T, alpha):
    # kl_div_loss: nn.KLDivLoss() (default 'mean', batch*classes) of the softened distributions
    # * T^2; used as the logits loss on its own.
    return torch.nn.KLDivLoss()(F.log_softmax(student_logits / T, dim=1),
                                F.softmax(teacher_logits / T, dim=1)) * (T**2)


def compressors_mse_loss_mlm(student_logits, teacher_logits, labels, T, alpha):
    # mse_loss_mlm with an all-ones attention mask: MSELoss(mean) of the raw logits.
    return torch.nn.MSELoss(reduction="mean")(student_logits, teacher_logits)


# --- keras.io "Knowledge distillation recipes" (function matching), in torch ---------------------

def kerasio_function_matching(student_logits, teacher_logits, labels, T, alpha):
    # Distiller.train_step: keras.losses.KLDivergence()(softmax(teacher / T), softmax(student / T)):
    # both clipped to [1e-7, 1], summed over classes, averaged over the batch; no T^2, labels unused.
    y_true = F.softmax(teacher_logits / T, dim=1).clamp(1e-7, 1.0)
    y_pred = F.softmax(student_logits / T, dim=1).clamp(1e-7, 1.0)
    return (y_true * torch.log(y_true / y_pred)).sum(dim=-1).mean()


# --- PaddleSlim single_distiller.soft_label, in torch -------------------------------------------

def paddleslim_soft_label(student_logits, teacher_logits, labels, T, alpha):
    # softmax(student / student_temperature), softmax(teacher / teacher_temperature) (both -> T),
    # then paddle cross_entropy(soft_label=True, use_softmax=False): -sum(label * log(input)) per
    # row, mean over the batch; no T^2. The teacher variable has stop_gradient set.
    student = F.softmax(student_logits / T, dim=-1)
    teacher = F.softmax(teacher_logits.detach() / T, dim=-1)
    return torch.mean(-(teacher * torch.log(student)).sum(dim=-1))
