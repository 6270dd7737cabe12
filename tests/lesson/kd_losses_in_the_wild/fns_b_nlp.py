"""Real-world KD losses from NLP, speech and LLM projects, re-expressed in our own words (corpus B).

Signature as in ``fns_vision``. Token-level losses are mapped to ``[B, C]`` by treating every batch
row as one token position with a valid label, so "average over valid tokens" (or over
``num_items_in_batch``) becomes "average over the batch", and a causal shift of the labels does not
apply. Where an original reads teacher log-probabilities prepared by a data collator, they are built
here from ``teacher_logits`` the way that collator builds them (see each comment).
"""
import torch
import torch.nn.functional as F


def _ce(student_logits, labels):
    return F.cross_entropy(student_logits, labels)


# --- TextBrewer (airaria) -------------------------------------------------------------------

def _textbrewer_kd_ce(logits_s, logits_t, temperature):
    # kd_ce_loss: -(softmax(t / T) * log_softmax(s / T)).sum(-1).mean(); no T^2.
    p_t = F.softmax(logits_t / temperature, dim=-1)
    return -(p_t * F.log_softmax(logits_s / temperature, dim=-1)).sum(dim=-1).mean()


def textbrewer_kd_ce_default(student_logits, teacher_logits, labels, T, alpha):
    # DistillationConfig defaults: kd_loss_type='ce', kd_loss_weight=1, hard_label_weight=0, so the
    # total is the soft term alone (the adaptor's 'losses' are weighted 0).
    return _textbrewer_kd_ce(student_logits, teacher_logits, T) * 1.0


def textbrewer_kd_ce_with_hard_labels(student_logits, teacher_logits, labels, T, alpha):
    # kd_loss_weight=1 and hard_label_weight -> alpha: kd * 1 + (student CE) * alpha.
    return _textbrewer_kd_ce(student_logits, teacher_logits, T) * 1.0 + _ce(student_logits, labels) * alpha


def textbrewer_kd_mse(student_logits, teacher_logits, labels, T, alpha):
    # kd_loss_type='mse': F.mse_loss(s / T, t / T), mean over all entries; hard_label_weight 0.
    return F.mse_loss(student_logits / T, teacher_logits / T) * 1.0


def textbrewer_probability_shift(student_logits, teacher_logits, labels, T, alpha):
    # probability_shift=True: in each teacher row the largest logit and the label's logit swap
    # places, then kd_ce_loss as above; hard_label_weight 0.
    shifted = teacher_logits.clone()
    rows = torch.arange(shifted.size(0))
    top = shifted.argmax(dim=-1)
    top_value = shifted[rows, top].clone()
    label_value = shifted[rows, labels].clone()
    shifted[rows, top] = label_value
    shifted[rows, labels] = top_value
    return _textbrewer_kd_ce(student_logits, shifted, T)


# --- distil-whisper and Hugging Face research projects ------------------------------------------

def _masked_kl_token_mean(target_probs, log_pred, labels):
    # KLDivLoss(reduction='none'), padded tokens (label < 0) zeroed, sum / number of real tokens.
    divergence = torch.nn.KLDivLoss(reduction="none")(log_pred, target_probs)
    keep = (labels >= 0).unsqueeze(-1)
    return (divergence * keep).sum() / keep.sum()


def distil_whisper_train_step(student_logits, teacher_logits, labels, T, alpha):
    # train_step: KL of softened distributions, masked token mean, * T^2; loss = 0.8 * CE +
    # kl_weight * KL ("fix weight of CE loss and tune KL weight"); kl_weight -> alpha.
    teacher_distribution = F.softmax(teacher_logits / T, dim=-1)
    student_distribution = F.log_softmax(student_logits / T, dim=-1)
    kl = _masked_kl_token_mean(teacher_distribution, student_distribution, labels) * T**2
    return 0.8 * _ce(student_logits, labels) + alpha * kl


def movement_pruning_glue(student_logits, teacher_logits, labels, T, alpha):
    # masked_run_glue.py: kl_div(batchmean) * T^2; loss = alpha_distil * KL + alpha_ce * CE with
    # alpha_ce at its default 0.5; alpha_distil -> alpha.
    loss_logits = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits / T, dim=-1),
                           reduction="batchmean") * (T**2)
    return alpha * loss_logits + 0.5 * _ce(student_logits, labels)


def pkd_distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    # PKD src/KD_loss.py: KLDivLoss(reduction='mean') (batch*classes) * T*T; alpha * KD +
    # (1 - alpha) * CE. The original returns (total, kd, nll); the total is taken.
    d_loss = torch.nn.KLDivLoss(reduction="mean")(F.log_softmax(student_logits / T, dim=1),
                                                  F.softmax(teacher_logits / T, dim=1)) * T * T
    nll_loss = F.cross_entropy(student_logits, labels, reduction="mean")
    return alpha * d_loss + (1.0 - alpha) * nll_loss


def dynabert_logit_loss(student_logits, teacher_logits, labels, T, alpha):
    # DynaBERT soft_cross_entropy: -sum(softmax(teacher) * log_softmax(student), -1).mean(), no
    # temperature; width_lambda1 = 1, hidden-state term left out; the student's own CE unused.
    likelihood = F.log_softmax(student_logits, dim=-1)
    targets_prob = F.softmax(teacher_logits.detach(), dim=-1)
    return -torch.sum(targets_prob * likelihood, dim=-1).mean()


def deepspeed_compression_soft_ce(student_logits, teacher_logits, labels, T, alpha):
    # DeepSpeedExamples compression util.soft_cross_entropy: (-p * log q).mean() over batch AND
    # classes, no temperature; the 'one_stage' KD adds only attention/hidden MSE terms besides it.
    likelihood = F.log_softmax(student_logits, dim=-1)
    targets_prob = F.softmax(teacher_logits, dim=-1)
    return (-targets_prob * likelihood).mean()


# --- axolotl KD plugin (several generations) -------------------------------------------------

def _collator_teacher_logprobs(teacher_logits, T):
    # The KD data collator turns teacher log-probs generated at temperature 1 into log-probs at
    # kd_temperature by raising probabilities to 1/T and renormalising: log_softmax(t / T).
    return F.log_softmax(teacher_logits / T, dim=-1)


def axolotl_kd_first(student_logits, teacher_logits, labels, T, alpha):
    # First trainer.py: kd_loss_function gathers the student's top-K logits (K = all classes here)
    # and log-softmaxes them WITHOUT a temperature; sum p (log p - log q) / num_items_in_batch.
    # loss = kd_ce_alpha * CE + kd (kd_alpha is not used in this version); kd_ce_alpha -> alpha.
    target_logprobs = _collator_teacher_logprobs(teacher_logits, T)
    student_logprobs = student_logits - torch.logsumexp(student_logits, dim=-1, keepdim=True)
    kd = (target_logprobs.exp() * (target_logprobs - student_logprobs)).sum() / labels.shape[0]
    return alpha * _ce(student_logits, labels) + kd if alpha > 0 else kd


def _axolotl_topk_forward_kl(student_logits, target_logprobs, n_items, kd_temperature):
    # topk_logprob/forward_kl.py loss(): student logits / T, log-probs over the full vocabulary,
    # forward KL summed, * T^2 when T != 1, / num_items_in_batch.
    scaled = (student_logits / kd_temperature).float()
    student_logprobs = scaled - torch.logsumexp(scaled, dim=-1, keepdim=True)
    kd = (target_logprobs.exp() * (target_logprobs - student_logprobs)).sum()
    if kd_temperature != 1.0:
        kd = kd * kd_temperature**2
    return kd / float(n_items)


def axolotl_topk_kl_t2(student_logits, teacher_logits, labels, T, alpha):
    # Trainer of that generation: if kd_ce_alpha > 0: kd_ce_alpha * CE + kd_alpha * kd, else kd.
    # kd_alpha -> alpha, kd_ce_alpha -> 1 - alpha.
    kd = _axolotl_topk_forward_kl(student_logits, _collator_teacher_logprobs(teacher_logits, T),
                                  labels.shape[0], T)
    kd_ce_alpha = 1 - alpha
    if kd_ce_alpha > 0:
        return kd_ce_alpha * _ce(student_logits, labels) + alpha * kd
    return kd


def _zscore(x, base_temperature, eps=1e-9):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var.clamp_min(eps)) / base_temperature


def axolotl_topk_kl_zscore(student_logits, teacher_logits, labels, T, alpha):
    # kd_zscore_base_temp set (2.0 here): student top-K logits / T and the teacher's log-probs are
    # both z-scored per row and divided by the base temperature, forward KL, * T^2 when T != 1,
    # / num_items_in_batch; same trainer blend as above.
    student = _zscore((student_logits / T).float(), 2.0)
    teacher = _zscore(_collator_teacher_logprobs(teacher_logits, T), 2.0)
    t_logprobs = teacher - torch.logsumexp(teacher, dim=-1, keepdim=True)
    s_logprobs = student - torch.logsumexp(student, dim=-1, keepdim=True)
    kd = (t_logprobs.exp() * (t_logprobs - s_logprobs)).sum()
    if T != 1.0:
        kd = kd * T**2
    kd = kd / float(labels.shape[0])
    kd_ce_alpha = 1 - alpha
    if kd_ce_alpha > 0:
        return kd_ce_alpha * _ce(student_logits, labels) + alpha * kd
    return kd


def _axolotl_liger_sums(student_logits, teacher_logits, labels, T, alpha, beta):
    # kernels/liger.py: per chunk, CE summed (only when kd_ce_alpha != 0) and a top-K divergence
    # summed: beta 0 forward KL, 1 reverse KL, otherwise beta * KL(p||m) + (1 - beta) * KL(q||m)
    # with m = (1 - beta) q + beta p; the KD sum * T^2; weight_soft = kd_alpha, weight_hard =
    # kd_ce_alpha. kd_alpha -> alpha, kd_ce_alpha -> 1 - alpha.
    target_logprobs = _collator_teacher_logprobs(teacher_logits, T)
    scaled = (student_logits / T).float()
    student_logprobs = scaled - torch.logsumexp(scaled, dim=-1, keepdim=True)
    p, q = target_logprobs.exp(), student_logprobs.exp()
    if beta == 0.0:
        kd = (p * (target_logprobs - student_logprobs)).sum()
    elif beta == 1.0:
        kd = (q * (student_logprobs - target_logprobs)).sum()
    else:
        log_m = ((1 - beta) * q + beta * p).log()
        student_kl = F.kl_div(log_m, student_logprobs, reduction="sum", log_target=True)
        teacher_kl = F.kl_div(log_m, target_logprobs, reduction="sum", log_target=True)
        kd = beta * teacher_kl + (1 - beta) * student_kl
    kd_ce_alpha = 1 - alpha
    ce = F.cross_entropy(student_logits, labels, reduction="sum") if kd_ce_alpha else torch.zeros(())
    return alpha * (kd * T**2) + kd_ce_alpha * ce


def axolotl_liger_module_sum(student_logits, teacher_logits, labels, T, alpha):
    # The loss module alone (kd_beta 0): token sums, no division (models.py divides by
    # num_items_in_batch only when the trainer passes it).
    return _axolotl_liger_sums(student_logits, teacher_logits, labels, T, alpha, beta=0.0)


def axolotl_liger_jsd(student_logits, teacher_logits, labels, T, alpha):
    # Trainer path, kd_beta = 0.5: the sums above divided by num_items_in_batch in the model forward.
    return _axolotl_liger_sums(student_logits, teacher_logits, labels, T, alpha, beta=0.5) / labels.shape[0]


def axolotl_liger_reverse_kl(student_logits, teacher_logits, labels, T, alpha):
    # Trainer path, kd_beta = 1.0 (reverse KL), divided by num_items_in_batch.
    return _axolotl_liger_sums(student_logits, teacher_logits, labels, T, alpha, beta=1.0) / labels.shape[0]


# --- ms-swift GKD (TRL's generalized_jsd_loss, called without a temperature) -------------------

def _trl_jsd_per_token_mean(student_logits, teacher_logits, beta):
    log_q = F.log_softmax(student_logits, dim=-1)
    log_p = F.log_softmax(teacher_logits, dim=-1)
    if beta == 0:
        jsd = F.kl_div(log_q, log_p, reduction="none", log_target=True)
    elif beta == 1:
        jsd = F.kl_div(log_p, log_q, reduction="none", log_target=True)
    else:
        b = torch.tensor(beta, dtype=log_q.dtype)
        mixture = torch.logsumexp(torch.stack([log_q + torch.log(1 - b), log_p + torch.log(b)]), dim=0)
        jsd = b * F.kl_div(mixture, log_p, reduction="none", log_target=True) \
            + (1 - b) * F.kl_div(mixture, log_q, reduction="none", log_target=True)
    return jsd.sum() / student_logits.shape[0]


def msswift_gkd_beta05_sft(student_logits, teacher_logits, labels, T, alpha):
    # GKDTrainer.compute_loss: valid tokens gathered, generalized_jsd_loss(student, teacher,
    # beta=self.beta) with TRL's default temperature 1.0 (args.temperature only drives generation),
    # per-token mean, then + sft_alpha * student CE. beta 0.5 (default), sft_alpha -> alpha.
    return _trl_jsd_per_token_mean(student_logits, teacher_logits, 0.5) + alpha * _ce(student_logits, labels)


def msswift_gkd_beta0_sft(student_logits, teacher_logits, labels, T, alpha):
    # Same with beta = 0, which TRL special-cases as forward KL(p || q).
    return _trl_jsd_per_token_mean(student_logits, teacher_logits, 0.0) + alpha * _ce(student_logits, labels)


# --- DSKD (songmzhang) VariousDivergence ------------------------------------------------------

def _dskd_blend(per_row_kd, student_logits, labels, alpha):
    # forward(): CE and KD are token sums; (1 - kd_rate) * CE + kd_rate * KD, then / batch_denom
    # (one token per row here, so the number of rows). kd_rate -> alpha.
    ce_sum = F.cross_entropy(student_logits, labels, reduction="sum")
    return ((1.0 - alpha) * ce_sum + alpha * per_row_kd.sum()) / labels.shape[0]


def _dskd_scaled(student_logits, teacher_logits, T):
    return student_logits / T, teacher_logits / T


def dskd_forward_kl(student_logits, teacher_logits, labels, T, alpha):
    s, t = _dskd_scaled(student_logits, teacher_logits, T)
    kld = (F.softmax(t, -1) * (F.log_softmax(t, -1) - F.log_softmax(s, -1))).sum(-1)
    return _dskd_blend(kld, student_logits, labels, alpha)


def dskd_reverse_kl(student_logits, teacher_logits, labels, T, alpha):
    s, t = _dskd_scaled(student_logits, teacher_logits, T)
    kld = (F.softmax(s, -1) * (F.log_softmax(s, -1) - F.log_softmax(t, -1))).sum(-1)
    return _dskd_blend(kld, student_logits, labels, alpha)


def dskd_js_divergence(student_logits, teacher_logits, labels, T, alpha):
    # m = (p + q) / 2; (KL(p||m) + KL(q||m)) / 2, each log with + 1e-9.
    s, t = _dskd_scaled(student_logits, teacher_logits, T)
    q, p = F.softmax(s, -1), F.softmax(t, -1)
    m = (q + p) / 2
    kld = (p * (torch.log(p + 1e-9) - torch.log(m + 1e-9)) + q * (torch.log(q + 1e-9) - torch.log(m + 1e-9))) / 2
    return _dskd_blend(kld.sum(-1), student_logits, labels, alpha)


def dskd_skewed_forward_kl(student_logits, teacher_logits, labels, T, alpha):
    # KL(p || 0.1 p + 0.9 q) (skew_lambda 0.1).
    s, t = _dskd_scaled(student_logits, teacher_logits, T)
    q, p = F.softmax(s, -1), F.softmax(t, -1)
    mixed = 0.1 * p + 0.9 * q
    kld = (p * (F.log_softmax(t, -1) - torch.log(mixed))).sum(-1)
    return _dskd_blend(kld, student_logits, labels, alpha)


def dskd_skewed_reverse_kl(student_logits, teacher_logits, labels, T, alpha):
    # KL(q || 0.9 p + 0.1 q) (skew_lambda 0.1).
    s, t = _dskd_scaled(student_logits, teacher_logits, T)
    q, p = F.softmax(s, -1), F.softmax(t, -1)
    mixed = 0.9 * p + 0.1 * q
    kld = (q * (F.log_softmax(s, -1) - torch.log(mixed))).sum(-1)
    return _dskd_blend(kld, student_logits, labels, alpha)


def dskd_adaptive_kl(student_logits, teacher_logits, labels, T, alpha):
    # Adaptive KL (adaptive_kl_alpha 0.5): teacher probabilities sorted ascending; the gap |p - q| is
    # split into head and tail by the cumulative teacher mass < 0.5; both parts detached and used to
    # weight forward and reverse KL per row.
    s, t = _dskd_scaled(student_logits, teacher_logits, T)
    q, p = F.softmax(s, -1), F.softmax(t, -1)
    sorted_p, order = p.sort(-1)
    gap = (sorted_p - q.gather(-1, order)).abs()
    tail = torch.cumsum(sorted_p, -1).lt(0.5).float()
    g_head = (gap * (1 - tail)).sum(-1).detach()
    g_tail = (gap * tail).sum(-1).detach()
    fkl = (p * (F.log_softmax(t, -1) - F.log_softmax(s, -1))).sum(-1)
    rkl = (q * (F.log_softmax(s, -1) - F.log_softmax(t, -1))).sum(-1)
    akl = g_head / (g_head + g_tail) * fkl + g_tail / (g_head + g_tail) * rkl
    return _dskd_blend(akl, student_logits, labels, alpha)


# --- minimind (jingyaogong), two versions of trainer/train_distillation.py ------------------------

def minimind_distillation(student_logits, teacher_logits, labels, T, alpha):
    # distillation_loss: softmax(t / T) (no grad) against log_softmax(s / T), kl_div 'batchmean' over
    # the valid tokens, * T^2; loss = alpha * CE + (1 - alpha) * distill ("alpha = CE weight").
    with torch.no_grad():
        teacher_probs = F.softmax(teacher_logits / T, dim=-1).detach()
    kl = F.kl_div(F.log_softmax(student_logits / T, dim=-1), teacher_probs, reduction="batchmean")
    return alpha * _ce(student_logits, labels) + (1 - alpha) * (T**2) * kl


def minimind_distillation_hidden_size_kwarg(student_logits, teacher_logits, labels, T, alpha):
    # An earlier distillation_loss_fn passes hidden_size=-1 to F.softmax / F.log_softmax instead of
    # dim=-1, which raises TypeError (reported in the repository's issue #431).
    with torch.no_grad():
        teacher_probs = F.softmax(teacher_logits / T, hidden_size=-1).detach()
    student_log_probs = F.log_softmax(student_logits / T, hidden_size=-1)
    kl = F.kl_div(student_log_probs, teacher_probs, reduction="batchmean")
    return alpha * _ce(student_logits, labels) + (1 - alpha) * (T**2) * kl
