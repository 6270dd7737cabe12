"""Real-world KD losses from language-model, retrieval and tooling projects, in our own words.

Signature as in ``fns_vision``. Token-level losses are mapped to ``[B, C]`` by treating each
batch row as one sequence of length one with a valid label (so "average over valid tokens"
becomes "average over the batch"). Where the original has a ``labels == -100`` mask, the mask is
kept and is simply all ones for ordinary class labels.
"""
import torch
import torch.nn.functional as F


def _ce(student_logits, labels):
    return F.cross_entropy(student_logits, labels)


def _token_mask(labels):
    return (labels != -100).int()


# --- TRL GKDTrainer.generalized_jsd_loss, three generations ----------------------------------

def _gkd_reduce(jsd, labels):
    # jsd is [B, 1, C]; with labels, the sum is divided by the number of valid tokens.
    mask = labels[:, None] != -100
    return jsd[mask].sum() / mask.sum()


def trl_gkd_first(beta):
    """First version: the 'mixture' is interpolated in log space (issue #2202)."""
    def loss(student_logits, teacher_logits, labels, T, alpha):
        log_q = F.log_softmax(student_logits[:, None] / T, dim=-1)
        log_p = F.log_softmax(teacher_logits[:, None] / T, dim=-1)
        mixed = beta * log_q + (1 - beta) * log_p
        kl_teacher = F.kl_div(mixed, log_p, reduction="none", log_target=True)
        kl_student = F.kl_div(mixed, log_q, reduction="none", log_target=True)
        jsd = beta * kl_teacher + (1 - beta) * kl_student
        return jsd.sum() / (jsd.size(0) * jsd.size(1))
    return loss


def trl_gkd_second(beta):
    """Mixture beta * student + (1 - beta) * teacher in probability space (before PR #3043)."""
    def loss(student_logits, teacher_logits, labels, T, alpha):
        log_q = F.log_softmax(student_logits[:, None] / T, dim=-1)
        log_p = F.log_softmax(teacher_logits[:, None] / T, dim=-1)
        b = torch.tensor(beta, dtype=log_q.dtype)
        mixture = torch.logsumexp(torch.stack([log_q + torch.log(b), log_p + torch.log(1 - b)]), dim=0)
        kl_teacher = F.kl_div(mixture, log_p, reduction="none", log_target=True)
        kl_student = F.kl_div(mixture, log_q, reduction="none", log_target=True)
        return _gkd_reduce(b * kl_teacher + (1 - b) * kl_student, labels)
    return loss


def trl_gkd_third(beta):
    """After PR #3043: beta=0 forward KL, beta=1 reverse KL, mixture (1-beta) q + beta p."""
    def loss(student_logits, teacher_logits, labels, T, alpha):
        log_q = F.log_softmax(student_logits[:, None] / T, dim=-1)
        log_p = F.log_softmax(teacher_logits[:, None] / T, dim=-1)
        if beta == 0:
            jsd = F.kl_div(log_q, log_p, reduction="none", log_target=True)
        elif beta == 1:
            jsd = F.kl_div(log_p, log_q, reduction="none", log_target=True)
        else:
            b = torch.tensor(beta, dtype=log_q.dtype)
            mixture = torch.logsumexp(torch.stack([log_q + torch.log(1 - b), log_p + torch.log(b)]), dim=0)
            kl_teacher = F.kl_div(mixture, log_p, reduction="none", log_target=True)
            kl_student = F.kl_div(mixture, log_q, reduction="none", log_target=True)
            jsd = b * kl_teacher + (1 - b) * kl_student
        return _gkd_reduce(jsd, labels)
    return loss


# --- "forward KL" losses of the LLM recipes: soft cross-entropy, temperature ignored ----------

def _soft_ce_per_valid_token(student_logits, teacher_logits, labels):
    # -sum_v p_v log q_v per token, masked, averaged over valid tokens (DistiLLM / MiniLLM /
    # torchtune / OpenRLHF all share this shape).
    p = F.softmax(teacher_logits, dim=-1, dtype=torch.float32)
    inf_mask = torch.isinf(student_logits)
    log_q = F.log_softmax(student_logits, dim=-1, dtype=torch.float32)
    x = torch.masked_fill(p * log_q, inf_mask, 0).sum(dim=-1).view(-1)
    mask = _token_mask(labels).view(-1)
    return -(x * mask).sum() / mask.sum()


def torchtune_forward_kl(student_logits, teacher_logits, labels, T, alpha):
    # ForwardKLLoss + the KD recipe: (1 - kd_ratio) * class_loss + kd_ratio * kd_loss.
    kd = _soft_ce_per_valid_token(student_logits, teacher_logits, labels)
    return (1 - alpha) * _ce(student_logits, labels) + alpha * kd


def minillm_finetune_kd(student_logits, teacher_logits, labels, T, alpha):
    # minillm/finetune.py get_distil_loss: same soft cross-entropy; kd_ratio -> alpha.
    kd = _soft_ce_per_valid_token(student_logits, teacher_logits, labels)
    return (1 - alpha) * _ce(student_logits, labels) + alpha * kd


def openrlhf_kd(student_logits, teacher_logits, labels, T, alpha):
    # KDLoss + KDTrainer: gpt_loss * (1 - kd_coef) + distil_loss * kd_coef.
    kd = _soft_ce_per_valid_token(student_logits, teacher_logits, labels)
    return _ce(student_logits, labels) * (1 - alpha) + kd * alpha


# --- DistiLLM losses (finetune.py: (1 - kd_ratio) * lm_loss + kd_ratio * distil_loss) ------

def _masked_token_mean(per_token, labels):
    mask = _token_mask(labels).view(-1)
    return (per_token.view(-1) * mask).sum() / mask.sum()


def _distillm(divergence):
    def loss(student_logits, teacher_logits, labels, T, alpha):
        distil = _masked_token_mean(divergence(student_logits, teacher_logits), labels)
        return (1 - alpha) * _ce(student_logits, labels) + alpha * distil
    return loss


def _fkl_tokens(s, t):
    return -(F.softmax(t, dim=-1) * F.log_softmax(s, dim=-1)).sum(-1)


def _rkl_tokens(s, t):
    q, log_q, log_p = F.softmax(s, dim=-1), F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
    return -(q * log_p - q * log_q).sum(-1)


def _skewed_fkl_tokens(s, t, lam=0.1):
    p, q = F.softmax(t, dim=-1), F.softmax(s, dim=-1)
    return -(p * torch.log(lam * p + (1 - lam) * q)).sum(-1)


def _skewed_rkl_tokens(s, t, lam=0.1):
    p, q = F.softmax(t, dim=-1), F.softmax(s, dim=-1)
    mixed_log = torch.log((1 - lam) * p + lam * q)
    return -(q * mixed_log - q * F.log_softmax(s, dim=-1)).sum(-1)


def _js_tokens(s, t, lam=0.9):
    p, q = F.softmax(t, dim=-1), F.softmax(s, dim=-1)
    mixed_log = torch.log((1 - lam) * p + lam * q)
    student_part = -(q * mixed_log - q * F.log_softmax(s, dim=-1)).sum(-1)
    teacher_part = -(p * mixed_log - p * F.log_softmax(t, dim=-1)).sum(-1)
    return lam * student_part + (1 - lam) * teacher_part


def _tv_tokens(s, t):
    return 0.5 * (F.softmax(t, dim=-1) - F.softmax(s, dim=-1)).abs().sum(-1)


distillm_fkl = _distillm(_fkl_tokens)
distillm_rkl = _distillm(_rkl_tokens)
distillm_sfkl = _distillm(_skewed_fkl_tokens)
distillm_srkl = _distillm(_skewed_rkl_tokens)
distillm_jsd = _distillm(_js_tokens)
distillm_tvd = _distillm(_tv_tokens)


# --- Hugging Face transformers ------------------------------------------------------------------

def _hf_kl_t2(student_logits, teacher_logits, T):
    kl = torch.nn.KLDivLoss(reduction="batchmean")
    return kl(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits / T, dim=-1)) * T**2


def hf_distilbert_ce_mlm(student_logits, teacher_logits, labels, T, alpha):
    # research_projects/distillation: alpha_ce * loss_ce + alpha_mlm * loss_mlm, where loss_ce is
    # the batchmean KL times T^2; alpha_ce -> alpha, alpha_mlm -> 1 - alpha.
    return alpha * _hf_kl_t2(student_logits, teacher_logits, T) + (1 - alpha) * _ce(student_logits, labels)


def hf_distilbert_readme_weights(student_logits, teacher_logits, labels, T, alpha):
    # The README's training command: --alpha_ce 5.0 --alpha_mlm 2.0 (the cosine term on hidden
    # states has no counterpart here and is left out); alpha ignored.
    return 5.0 * _hf_kl_t2(student_logits, teacher_logits, T) + 2.0 * _ce(student_logits, labels)


def hf_distilbert_mse(student_logits, teacher_logits, labels, T, alpha):
    # The alpha_mse term: MSELoss(reduction="sum") on the raw logits divided by the number of
    # rows ("reproducing batchmean"); alpha_ce = 0, alpha_mse -> alpha, alpha_mlm -> 1 - alpha.
    mse = torch.nn.MSELoss(reduction="sum")(student_logits, teacher_logits) / student_logits.size(0)
    return alpha * mse + (1 - alpha) * _ce(student_logits, labels)


def hf_image_distillation_guide_v1(student_logits, teacher_logits, labels, T, alpha):
    # Task guide, first version: lambda * student loss + (1 - lambda) * KL * T^2.
    return alpha * _ce(student_logits, labels) + (1 - alpha) * _hf_kl_t2(student_logits, teacher_logits, T)


def hf_image_distillation_guide_v2(student_logits, teacher_logits, labels, T, alpha):
    # Later version of the same guide: (1 - lambda) * student loss + lambda * KL * T^2.
    return (1 - alpha) * _ce(student_logits, labels) + alpha * _hf_kl_t2(student_logits, teacher_logits, T)


def philschmid_distillation_trainer(student_logits, teacher_logits, labels, T, alpha):
    # DistillationTrainer: alpha * student_loss + (1 - alpha) * KL * T^2.
    return alpha * _ce(student_logits, labels) + (1 - alpha) * _hf_kl_t2(student_logits, teacher_logits, T)


def nlp_with_transformers_trainer(student_logits, teacher_logits, labels, T, alpha):
    # Book chapter 8 DistillationTrainer: alpha * loss_ce + (1 - alpha) * T^2 * KL.
    loss_kd = T**2 * torch.nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits / T, dim=-1))
    return alpha * _ce(student_logits, labels) + (1.0 - alpha) * loss_kd


def sentence_transformers_distill_kldiv(student_logits, teacher_logits, labels, T, alpha):
    # DistillKLDivLoss: KLDivLoss(batchmean) on score distributions, times T^2; no hard term.
    return _hf_kl_t2(student_logits, teacher_logits, T)


# --- NVIDIA Model Optimizer ------------------------------------------------------------------

def modelopt_logits_distillation(student_logits, teacher_logits, labels, T, alpha):
    # LogitsDistillationLoss (batchmean KL * T^2) with StaticLossBalancer(kd_loss_weight): the
    # KD loss gets kd_loss_weight, the student loss the rest; kd_loss_weight -> alpha.
    kd = F.kl_div(F.log_softmax(student_logits / T, dim=-1),
                  F.softmax(teacher_logits / T, dim=-1).detach(), reduction="batchmean") * T**2
    return alpha * kd + (1 - alpha) * _ce(student_logits, labels)


def megatron_logits_kl(reverse):
    """Megatron plugin LogitsKLLoss without tensor parallelism, skip_lm_loss: per-token summed KL
    (reverse=True swaps the roles), masked mean over tokens, temperature without T^2."""
    def loss(student_logits, teacher_logits, labels, T, alpha):
        s = student_logits.float() / T
        t = teacher_logits.detach().float() / T
        if reverse:
            per_token = F.kl_div(F.log_softmax(t, dim=-1), F.softmax(s, dim=-1), reduction="none").sum(-1)
        else:
            per_token = F.kl_div(F.log_softmax(s, dim=-1), F.softmax(t, dim=-1), reduction="none").sum(-1)
        return _masked_token_mean(per_token, labels)
    return loss


# --- Others ------------------------------------------------------------------------------------

def distillkit_logits(student_logits, teacher_logits, labels, T, alpha):
    # kl_div(batchmean) over [batch, tokens, vocab] divides by the batch only, then the script
    # divides by max_length; with one token per row max_length is 1 here.
    max_length = 1
    kd = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits / T, dim=-1),
                  reduction="batchmean") * (T**2) / max_length
    return alpha * kd + (1 - alpha) * _ce(student_logits, labels)


def inc_knowledge_distillation(kind):
    """Intel Neural Compressor PyTorchKnowledgeDistillationLoss, loss_types=['CE', kind];
    loss_weights [1 - alpha, alpha]; both logits divided by T, the term multiplied by T^2."""
    def loss(student_logits, teacher_logits, labels, T, alpha):
        s, t = student_logits / T, teacher_logits / T
        if kind == "CE":
            soft = (-F.softmax(t, dim=-1) * F.log_softmax(s, dim=-1)).sum(dim=-1).mean()
        elif kind == "KL":
            soft = F.kl_div(F.log_softmax(s, dim=-1), F.softmax(t, dim=-1))  # default 'mean'
        else:
            soft = torch.nn.MSELoss()(s, t)
        return _ce(student_logits, labels) * (1 - alpha) + soft * T**2 * alpha
    return loss


def nlp_architect_distill(kind):
    """IntelLabs nlp-architect TeacherStudentDistill.distill_loss: loss_w * loss + distill *
    dist_w * T^2 (loss_w = 1, dist_w -> alpha). 'kl' is KLDivLoss(batchmean); 'mse' is
    MSELoss(mean) between the student's log-softmax and the teacher's softmax."""
    def loss(student_logits, teacher_logits, labels, T, alpha):
        log_q = F.log_softmax(student_logits / T, dim=-1)
        p = F.softmax(teacher_logits / T, dim=-1)
        if kind == "kl":
            distill = torch.nn.KLDivLoss(reduction="batchmean")(input=log_q, target=p)
        else:
            distill = torch.nn.MSELoss(reduction="mean")(input=log_q, target=p)
        return 1.0 * _ce(student_logits, labels) + distill * alpha * T**2
    return loss


def tutorial_log_of_raw_logits(student_logits, teacher_logits, labels, T, alpha):
    # Found in public text: KLDivLoss()(torch.log(student_outputs / temperature), soft_targets)
    # with soft targets from the teacher; (1 - alpha) * ce + alpha * kd. log of raw logits.
    soft_targets = F.softmax(teacher_logits / T, dim=1)
    kd = torch.nn.KLDivLoss()(torch.log(student_logits / T), soft_targets)
    return (1 - alpha) * _ce(student_logits, labels) + alpha * kd


def moe_log_of_raw_logits(student_logits, teacher_logits, labels, T, alpha):
    # Found in public code: KLDivLoss(batchmean)(torch.log(student / T), teacher / T) * T^2,
    # weighted alpha * soft + (1 - alpha) * hard. Neither side goes through a softmax.
    soft = torch.nn.KLDivLoss(reduction="batchmean")(torch.log(student_logits / T),
                                                    teacher_logits / T) * T**2
    return alpha * soft + (1 - alpha) * _ce(student_logits, labels)


def tinybert_prediction_distillation(student_logits, teacher_logits, labels, T, alpha):
    # task_distill.py, prediction-layer stage: soft_cross_entropy(student / T, teacher / T) is
    # (-softmax(teacher) * log_softmax(student)).mean() over every element; loss = cls_loss alone.
    likelihood = F.log_softmax(student_logits / T, dim=-1)
    targets = F.softmax(teacher_logits / T, dim=-1)
    return (-targets * likelihood).mean()
