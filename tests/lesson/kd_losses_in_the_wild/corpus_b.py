"""A second unseen corpus of real-world knowledge-distillation losses (issue 27, corpus B).

Same format as the first corpus (corpus_a.py): each entry re-expresses, in our own
words, one KD loss from a public project (or one version of it) in the signature
``loss_fn(student_logits, teacher_logits, labels, T, alpha) -> scalar``, with its source, a one-line
description, how the original's own parameters were mapped onto that signature, and the expected
value of each field of the diagnoser's contract.

``expected[field]`` is a single value, or a tuple of values that are all counted as right (used
where two labels are defensible). A field that is absent is not scored for that function (it does
not apply, or the evidence cannot decide it). ``expected["raises"] = True`` marks a function that
raises on ordinary input: it has no conventions, only the report of the error is checked.

``ref`` records how the value was rebuilt from the labels when the corpus was built: every label below
was checked numerically against that rebuild and against gradient and NaN tests.

None of these functions duplicates one of the 71 in the first corpus (corpus_a.py); where a
project appears in both, the function or version here is a different one.
"""
from . import fns_b_nlp as N
from . import fns_b_tools as K
from . import fns_b_vision as V
from .corpus_a import (  # noqa: F401 - the record type and helpers of the first corpus, shared
    A_HARD,
    A_SOFT,
    CE_PLUS,
    FIELDS,
    MAIN_FIELDS,
    SOFT_ONLY,
    WildLoss,
    _e,
    _kd,
    is_right,
)

SOFT_PLUS_ACE = "soft+a*ce"
A_TIMES_SOFT = "a*soft"


def hard_fixed(weight):
    """weight * ce + alpha * soft: a fixed cross-entropy weight, alpha on the soft term."""
    return ("hard_fixed", weight)


def fixed(w_soft, w_hard):
    """w_soft * soft + w_hard * ce with alpha unused."""
    return ("fixed", w_soft, w_hard)


TB = "airaria/TextBrewer src/textbrewer/losses.py @ 3496f3e + distiller_general.py @ 000f4af + configurations.py"
CLS = "yzd-v/cls_KD "
PC = "PaddlePaddle/PaddleClas ppcls/loss/"
KDL = "SforAiDl/KD_Lib KD_Lib/KD/vision/"
AX = "axolotl-ai-cloud/axolotl src/axolotl/integrations/kd/"
AX_COLLATOR = " (teacher log-probs rescaled to kd_temperature by the KD collator, chat_template.py)"
SWIFT = ("modelscope/ms-swift swift/trainers/rlhf_trainer/gkd_trainer.py @ 02142f2 "
         "(inherits huggingface/trl GKDTrainer.generalized_jsd_loss)")
DSKD = ("songmzhang/DSKD code/criterions/various_divergence.py + cross_entropy_loss.py @ 4f8c172")
DSKD_MAP = "kd_rate -> alpha; kd_temperature -> T; one token per row so batch_denom = rows"
AT = "szagoruyko/attention-transfer utils.py"

ENTRIES = [
    # ---------------- TextBrewer ----------------
    _e("textbrewer_kd_ce_default", N.textbrewer_kd_ce_default, TB,
       "kd_ce_loss: soft CE of softened logits, batch mean, no T^2; default weights kd 1, hard 0",
       "temperature -> T; alpha unused (hard_label_weight default 0)", dict(combine=SOFT_ONLY),
       **_kd("soft_cross_entropy", False, "batchmean", "ignored", False)),
    _e("textbrewer_kd_ce_with_hard_labels", N.textbrewer_kd_ce_with_hard_labels, TB,
       "kd_loss_weight 1 * soft CE + hard_label_weight * student CE",
       "hard_label_weight -> alpha, kd_loss_weight = 1", dict(combine=SOFT_PLUS_ACE),
       **_kd("soft_cross_entropy", False, "batchmean", "hard", True)),
    _e("textbrewer_kd_mse", N.textbrewer_kd_mse, TB,
       "kd_mse_loss: F.mse_loss(s / T, t / T), mean over all entries, no T^2",
       "kd_loss_type='mse'; hard_label_weight 0; alpha unused",
       dict(combine=SOFT_ONLY, mse_on="logits", s_div=True, t_div=True),
       direction="mse", t_squared=False, reduction="mean", alpha_on="ignored", hard_term=False),
    _e("textbrewer_probability_shift", N.textbrewer_probability_shift,
       TB + " + distiller_utils.py probability_shift_",
       "teacher's top logit swapped with the label's logit, then soft CE at T",
       "probability_shift=True, kd_loss_type='ce', hard_label_weight 0; alpha unused",
       dict(combine=SOFT_ONLY, custom="shift_soft_ce"),
       **_kd(("soft_cross_entropy", "other"), False, "batchmean", "ignored", False)),
    # ---------------- Tf-KD, cls_KD ----------------
    _e("tfkd_loss_kd_self", V.tfkd_loss_kd_self,
       "yuanli2333/Teacher-free-Knowledge-Distillation my_loss_function.py @ 880a74e (loss_kd_self)",
       "nn.KLDivLoss() default mean (B*C) * T^2 * multiplier; (1 - a) CE + a KL",
       "params.alpha -> alpha, params.temperature -> T, params.multiplier = 10",
       dict(combine=A_SOFT, factor=10.0), **_kd("forward_kl", True, "mean", "soft", True)),
    _e("clskd_kd_soft_ce", V.clskd_kd_soft_ce,
       CLS + "mmcls/distillation/losses/kd.py @ 8a16562 + distillers/classification_distiller.py @ 87a7197",
       "-alpha * T^2 * mean_batch sum p log q (soft CE); student CE scaled by 1 - alpha",
       "KDLoss alpha -> alpha, temp -> T", dict(combine=A_SOFT),
       **_kd("soft_cross_entropy", True, "batchmean", "soft", True)),
    _e("clskd_nkd", V.clskd_nkd, CLS + "mmcls/models/dis_losses/nkd.py @ 9466b3f (NKDLoss)",
       "NKD: target-class term at T=1 plus gamma*T^2 * soft CE over the non-target classes; + CE",
       "temp -> T, gamma 1.5; head CE weight 1; alpha unused", dict(combine=fixed(1.0, 1.0), custom="nkd"),
       direction="other", reduction="batchmean", alpha_on="ignored", hard_term=True),
    _e("clskd_nkd_mask_keeps_target", V.clskd_nkd_mask_keeps_target,
       CLS + "mmcls/distillation/losses/nkd.py @ 1c2c0ff (NKDLoss, mask built with scatter value 1)",
       "NKD version whose 'non-target' mask keeps every class: soft CE over all classes * gamma*T^2",
       "temp -> T, gamma 1.5; head CE weight 1; alpha unused", dict(combine=fixed(1.0, 1.0), custom="nkd_all"),
       direction="other", reduction="batchmean", alpha_on="ignored", hard_term=True),
    # ---------------- PaddleClas ----------------
    _e("paddleclas_dml_with_gt", V.paddleclas_dml_with_gt,
       PC + "dmlloss.py @ 024ddbd + distillationloss.py @ 16d2194 (DistillationDMLLoss + GTCE)",
       "symmetric KL (KL(p||q) + KL(q||p)) / 2, batchmean, no temperature; + CE",
       "both loss weights 1.0; T and alpha unused", dict(combine=fixed(1.0, 1.0), custom="sym_kl_half"),
       **_kd("other", False, "batchmean", "ignored", True, s=False, t=False)),
    _e("paddleclas_kldiv_with_gt", V.paddleclas_kldiv_with_gt,
       PC + "kldivloss.py @ 7595ba6 + distillationloss.py @ 16d2194 (DistillationKLDivLoss + GTCE)",
       "summed KL * T^2 / batch added to the student CE", "KL loss weight -> alpha, CE weight 1",
       dict(combine=CE_PLUS), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("paddleclas_skd", V.paddleclas_skd, PC + "skdloss.py @ 85a0c85 (SKDLoss)",
       "spherical KD: layer-normed logits * 2, soft CE at T * T^2; (1 - a) * CE of the normed student",
       "SKDLoss alpha -> alpha, temperature -> T, multiplier 2.0",
       dict(combine=A_SOFT, custom="skd", hard="ce_ln2"),
       **_kd(("soft_cross_entropy", "other"), True, "batchmean", "soft", True)),
    _e("paddleclas_wsl_with_gt", V.paddleclas_wsl_with_gt, PC + "wslloss.py @ 0cfccd7 (WSLLoss) + GTCE",
       "weighted soft labels: per-row soft CE * (1 - exp(-CE_s / CE_t)) , T^2 * mean; + CE",
       "WSL weight -> alpha, CE weight 1, temperature -> T", dict(combine=CE_PLUS, custom="wsl"),
       **_kd("other", True, "batchmean", "soft", True)),
    _e("paddleclas_dist", V.paddleclas_dist, PC + "dist_loss.py @ 67331ff (DISTLoss)",
       "DIST: 1 - Pearson correlation of softmax outputs over rows plus over columns, no temperature",
       "beta = gamma = 1; T and alpha unused", dict(combine=SOFT_ONLY, custom_total="dist"),
       direction="other", t_squared=False, alpha_on="ignored", hard_term=False,
       student_softened=False, teacher_softened=False),
    _e("paddleclas_ce_pair_with_gt", V.paddleclas_ce_pair_with_gt,
       PC + "celoss.py @ 0592403 + distillationloss.py @ 16d2194 (DistillationCELoss + GTCE)",
       "CELoss with a logits-shaped label: soft CE against softmax(teacher), batch mean; + CE",
       "both weights 1.0; T and alpha unused", dict(combine=fixed(1.0, 1.0)),
       **_kd("soft_cross_entropy", False, "batchmean", "ignored", True, s=False, t=False)),
    _e("paddleclas_dkd", V.paddleclas_dkd, PC + "dkdloss.py @ 1b53a64 (DKDLoss defaults)",
       "decoupled KD with alpha = beta = 1: target/non-target binary KL + non-target KL, * T^2 / batch",
       "temperature -> T; used alone; our alpha unused", dict(combine=SOFT_ONLY, custom="dkd11"),
       **_kd("other", True, "batchmean", "ignored", False)),
    # ---------------- CTKD, DeiT, KD_Lib ----------------
    _e("ctkd_fixed_temperature", V.ctkd_fixed_temperature,
       "zhengli97/CTKD distiller_zoo/KD.py @ b366783 + helper/loops.py @ 8ca3ce8 + scripts/run_cifar_distill.sh",
       "gamma * CE + alpha * batchmean KL * T^2 with the script's gamma 0.1",
       "opt.alpha -> alpha, gamma fixed 0.1, kd_T -> T (no learned temperature)",
       dict(combine=hard_fixed(0.1)), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("deit_hard_distillation", V.deit_hard_distillation,
       "facebookresearch/deit losses.py @ ae4dba9 (distillation_type='hard')",
       "CE against the teacher's argmax; (1 - alpha) * CE + alpha * hard distillation; tau unused",
       "alpha is DeiT's alpha; the distillation head is the same student logits",
       dict(combine=A_SOFT, custom="hard_teacher"),
       direction="other", t_squared=False, reduction="batchmean", alpha_on="soft", hard_term=True,
       student_softened=False),
    _e("kdlib_takd_default_mse", V.kdlib_takd_default_mse, KDL + "TAKD/takd.py @ 452baaa",
       "default nn.MSELoss between student and teacher LOG-softmax at T, * w * T^2, + (1 - w) CE",
       "distil_weight -> alpha, temp -> T", dict(combine=A_SOFT, custom="mse_logq_logp"),
       **_kd(("mse", "other"), True, "mean", "soft", True)),
    _e("kdlib_self_training", V.kdlib_self_training, KDL + "teacher_free/self_training.py @ 0b8525b",
       "nn.KLDivLoss() mean; student log_softmax without T, teacher softmax(t / T); no T^2",
       "distil_weight -> alpha, temp -> T", dict(combine=A_SOFT),
       **_kd("forward_kl", False, "mean", "soft", True, s=False, t=True)),
    _e("kdlib_mean_teacher", V.kdlib_mean_teacher, KDL + "mean_teacher/mean_teacher.py @ 95662ee",
       "calls nn.LogSoftmax(dim=1)(x, dim=1): raises TypeError on every input",
       "class/consistency logits -> student_logits", dict(), raises=True),
    # ---------------- data-free, cvnets, fasterai, attention transfer ----------------
    _e("dfad_l1_logits", V.dfad_l1_logits,
       "VainF/Data-Free-Adversarial-Distillation DFAD_cifar.py @ 053861f (student step)",
       "mean absolute error between student and teacher logits", "T and alpha unused; no labels",
       dict(combine=SOFT_ONLY, custom="l1_logits", s_div=False, t_div=False),
       direction="other", t_squared=False, reduction="mean", alpha_on="ignored", hard_term=False),
    _e("zskt_student_divergence", V.zskt_student_divergence,
       "polo5/ZeroShotKnowledgeTransfer solver.py @ 492cbff (divergence, KT_loss_student)",
       "F.kl_div default mean (B*C) of softened outputs, no T^2", "KL_temperature -> T; AT_beta 0",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", False, "mean", "ignored", False)),
    _e("cvnets_soft_kl", V.cvnets_soft_kl,
       "apple/ml-cvnets loss_fn/distillation/soft_kl_distillation.py @ 0c0f798 (SoftKLLoss)",
       "log-space KL batchmean * T^2, alone", "temperature -> T; alpha unused",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", True, "batchmean", "ignored", False)),
    _e("cvnets_hard_distillation", V.cvnets_hard_distillation,
       "apple/ml-cvnets loss_fn/distillation/hard_distillation.py @ 0c0f798 (topk 1, no smoothing)",
       "CE against the teacher's top-1 class; labels unused", "T and alpha unused",
       dict(combine=SOFT_ONLY, custom="hard_teacher"),
       direction="other", t_squared=False, reduction="batchmean", alpha_on="ignored", hard_term=False,
       student_softened=False),
    _e("fasterai_distillation_loss", V.fasterai_distillation_loss,
       "nathanhubens/fasterai fasterai/distill/distillation_callback.py @ 0dd60d5",
       "batchmean KL * (T^2 * 2 * alpha) + CE * (1 - alpha)", "α -> alpha, T -> T",
       dict(combine=A_SOFT, factor=2.0), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("attention_transfer_distillation_v0", V.attention_transfer_distillation_v0, AT + " @ eb68159",
       "F.kl_div with the old elementwise-mean default * T^2 * 2 * alpha + (1 - alpha) CE",
       "alpha, T as in the original", dict(combine=A_SOFT, factor=2.0),
       **_kd("forward_kl", True, "mean", "soft", True)),
    _e("attention_transfer_distillation_v1", V.attention_transfer_distillation_v1,
       AT + " (later version: size_average=False, / batch; text as in its many public copies)",
       "summed KL * T^2 / batch; alpha * KL + (1 - alpha) * CE", "alpha, T as in the original",
       dict(combine=A_SOFT), **_kd("forward_kl", True, "batchmean", "soft", True)),
    # ---------------- once-for-all, slimmable, PS-KD, unnamed ----------------
    _e("ofa_kd_ce", V.ofa_kd_ce,
       "mit-han-lab/once-for-all ofa/imagenet_classification/run_manager/run_manager.py @ 80a2e26",
       "kd_ratio * soft CE against softmax(teacher) (no temperature) + CE",
       "kd_ratio -> alpha; train_criterion mapped to plain CE; T unused", dict(combine=CE_PLUS),
       **_kd("soft_cross_entropy", False, "batchmean", "soft", True, s=False, t=False)),
    _e("ofa_kd_mse", V.ofa_kd_mse,
       "mit-han-lab/once-for-all ofa/imagenet_classification/run_manager/run_manager.py @ 80a2e26",
       "kd_type 'mse': kd_ratio * mse_loss(student logits, teacher logits) + CE",
       "kd_ratio -> alpha; T unused", dict(combine=CE_PLUS, mse_on="logits", s_div=False, t_div=False),
       direction="mse", t_squared=False, reduction="mean", alpha_on="soft", hard_term=True),
    _e("slimmable_inplace_distillation", V.slimmable_inplace_distillation,
       "JiahuiYu/slimmable_networks utils/loss_ops.py @ e470c2c (CrossEntropyLossSoft) + train.py forward_loss",
       "soft CE against softmax of the widest network's output, batch mean, alone",
       "widest network's output -> teacher_logits; T and alpha unused", dict(combine=SOFT_ONLY),
       **_kd("soft_cross_entropy", False, "batchmean", "ignored", False, s=False, t=False)),
    _e("pskd_progressive_targets", V.pskd_progressive_targets,
       "lgcnsai/PS-KD-Pytorch main.py + loss/pskd_loss.py @ 6ca4e75",
       "soft CE against (1 - a) one-hot + a softmax(previous-epoch output) = (1 - a) CE + a soft CE",
       "alpha_t -> alpha; previous-epoch output -> teacher_logits; T unused", dict(combine=A_SOFT),
       **_kd("soft_cross_entropy", False, "batchmean", "soft", True, s=False, t=False)),
    _e("style_kd_no_hard_term", V.style_kd_no_hard_term,
       "public code found by exact-string search (index id 21099813344; the tool names no repository)",
       "nn.KLDivLoss() mean * (T^2 * 2 * alpha) with the cross-entropy line commented out",
       "alpha, T as in the original", dict(combine=A_TIMES_SOFT, factor=2.0),
       **_kd("forward_kl", True, "mean", "soft", False)),
    _e("proda_kl_div_on_probabilities", V.proda_kl_div_on_probabilities,
       "microsoft/ProDA models/adaptation_modelv2.py (distillation stage, as quoted in its issues #20 and #43)",
       "F.kl_div given softmax probabilities as its input (no log), mean over all elements, + CE",
       "opt.distillation -> alpha; pixels -> rows; segmentation loss -> CE; no temperature",
       dict(combine=CE_PLUS, custom="kl_probs_as_input"),
       **_kd("other", False, "mean", "soft", True, s=False, t=False)),
    # ---------------- toolkits ----------------
    _e("mmrazor_kd_soft_ce", K.mmrazor_kd_soft_ce,
       "open-mmlab/mmrazor mmrazor/models/losses/kd_soft_ce_loss.py @ 03c5a29 (KDSoftCELoss)",
       "soft CE of (detached student) / tau against softmax(teacher / tau), batch mean, * tau^2",
       "tau -> T; loss_weight 1; alpha unused", dict(combine=SOFT_ONLY),
       **_kd("soft_cross_entropy", True, "batchmean", "ignored", False), trains_student=False),
    _e("mmrazor_dist_tau", K.mmrazor_dist_tau, "open-mmlab/mmrazor mmrazor/models/losses/dist_loss.py @ 276161c",
       "DIST with tau: tau^2 * (row + column 1 - Pearson) of softmax(logits / tau)",
       "tau -> T; weights 1; alpha unused", dict(combine=SOFT_ONLY, custom_total="dist"),
       direction="other", t_squared=True, alpha_on="ignored", hard_term=False,
       student_softened=True, teacher_softened=True),
    _e("compressors_kl_div_loss", K.compressors_kl_div_loss,
       "elephantmipt/compressors compressors/distillation/losses/_kl_loss.py @ 51ff471",
       "nn.KLDivLoss() default mean (B*C) * T^2, alone", "temperature -> T; alpha unused",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", True, "mean", "ignored", False)),
    _e("compressors_mse_loss_mlm", K.compressors_mse_loss_mlm,
       "elephantmipt/compressors compressors/distillation/losses/_mse_loss.py @ 96fca29 (mse_loss_mlm)",
       "MSELoss(mean) of raw logits, alone", "attention mask all ones; T and alpha unused",
       dict(combine=SOFT_ONLY, mse_on="logits", s_div=False, t_div=False),
       direction="mse", t_squared=False, reduction="mean", alpha_on="ignored", hard_term=False),
    _e("kerasio_function_matching", K.kerasio_function_matching,
       "keras-team/keras-io examples/keras_recipes/better_knowledge_distillation.py @ 39c1ef2",
       "keras KLDivergence of softened distributions (clipped), batch mean, no T^2, labels unused",
       "TEMPERATURE -> T; alpha unused", dict(combine=SOFT_ONLY),
       **_kd("forward_kl", False, "batchmean", "ignored", False)),
    _e("paddleslim_soft_label", K.paddleslim_soft_label,
       "PaddlePaddle/PaddleSlim paddleslim/dist/single_distiller.py @ 5aecea7 (soft_label)",
       "soft CE of softmax(s / Ts) against softmax(t / Tt), batch mean, no T^2",
       "student_temperature = teacher_temperature -> T; alpha unused", dict(combine=SOFT_ONLY),
       **_kd("soft_cross_entropy", False, "batchmean", "ignored", False)),
    # ---------------- NLP / speech ----------------
    _e("distil_whisper_train_step", N.distil_whisper_train_step,
       "huggingface/distil-whisper training/run_distillation.py (kl_divergence + train_step)",
       "0.8 * CE + kl_weight * masked-token-mean KL * T^2", "kl_weight -> alpha, temperature -> T",
       dict(combine=hard_fixed(0.8)), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("movement_pruning_glue", N.movement_pruning_glue,
       "huggingface/transformers examples/research_projects/movement-pruning/masked_run_glue.py @ 0ea0108",
       "alpha_distil * batchmean KL * T^2 + alpha_ce * CE, alpha_ce default 0.5",
       "alpha_distil -> alpha, alpha_ce = 0.5", dict(combine=hard_fixed(0.5)),
       **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("pkd_distillation_loss", N.pkd_distillation_loss,
       "intersun/PKD-for-BERT-Model-Compression src/KD_loss.py @ 9e9e860",
       "KLDivLoss(reduction='mean') (B*C) * T^2; alpha * KD + (1 - alpha) * CE (first of the returned tuple)",
       "alpha, T as in the original", dict(combine=A_SOFT), **_kd("forward_kl", True, "mean", "soft", True)),
    _e("dynabert_logit_loss", N.dynabert_logit_loss,
       "huawei-noah/Pretrained-Language-Model DynaBERT/run_glue.py @ 1bb9b3e (soft_cross_entropy)",
       "soft CE against softmax(teacher), no temperature, batch mean, alone",
       "width_lambda1 = 1, hidden-state term left out; T and alpha unused", dict(combine=SOFT_ONLY),
       **_kd("soft_cross_entropy", False, "batchmean", "ignored", False, s=False, t=False)),
    _e("deepspeed_compression_soft_ce", N.deepspeed_compression_soft_ce,
       "microsoft/DeepSpeedExamples compression/bert/util.py @ 8d78a00 (soft_cross_entropy, forward_loss)",
       "(-p * log q).mean() over batch and classes, no temperature, alone",
       "attention/hidden MSE terms left out; T and alpha unused", dict(combine=SOFT_ONLY),
       **_kd("soft_cross_entropy", False, "mean", "ignored", False, s=False, t=False)),
    _e("minimind_distillation", N.minimind_distillation,
       "jingyaogong/minimind trainer/train_distillation.py @ 00da959",
       "alpha * CE + (1 - alpha) * T^2 * batchmean KL over valid tokens", "alpha = CE weight as in the script",
       dict(combine=A_HARD), **_kd("forward_kl", True, "batchmean", "hard", True)),
    _e("minimind_distillation_hidden_size_kwarg", N.minimind_distillation_hidden_size_kwarg,
       "jingyaogong/minimind trainer/train_distillation.py (earlier version, index id 1417813244; issue #431)",
       "F.softmax(..., hidden_size=-1): raises TypeError on every input", "as the fixed version", dict(),
       raises=True),
    # ---------------- axolotl ----------------
    _e("axolotl_kd_first", N.axolotl_kd_first, AX + "trainer.py (first version, index id 23195042982)" + AX_COLLATOR,
       "forward KL of the raw student against the teacher at T, / num_items; kd_ce_alpha * CE + KD",
       "kd_ce_alpha -> alpha (kd_alpha unused in this version); kd_temperature -> T",
       dict(combine=SOFT_PLUS_ACE), **_kd("forward_kl", False, "batchmean", "hard", True, s=False, t=True)),
    _e("axolotl_topk_kl_t2", N.axolotl_topk_kl_t2,
       AX + "topk_logprob/forward_kl.py (index id 1295985875) + trainer.py (index id 1885396865)" + AX_COLLATOR,
       "forward KL at T * T^2 / num_items; kd_ce_alpha * CE + kd_alpha * KD",
       "kd_alpha -> alpha, kd_ce_alpha -> 1 - alpha", dict(combine=A_SOFT),
       **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("axolotl_topk_kl_zscore", N.axolotl_topk_kl_zscore,
       AX + "topk_logprob/forward_kl.py topk_kd_loss_with_zscore (index id 1295985875)" + AX_COLLATOR,
       "z-scored student and teacher / base temperature 2, forward KL * T^2 / num_items",
       "kd_zscore_base_temp = 2.0, kd_alpha -> alpha, kd_ce_alpha -> 1 - alpha",
       dict(combine=A_SOFT, custom="zscore_b2"),
       direction=("forward_kl", "other"), t_squared=True, reduction="batchmean", alpha_on="soft", hard_term=True),
    _e("axolotl_liger_module_sum", N.axolotl_liger_module_sum,
       AX + "kernels/liger.py @ 00bfeb4 (LigerFusedLinearKLTopKLogprobLoss alone, kd_beta 0)" + AX_COLLATOR,
       "token SUMS: kd_alpha * T^2 * summed forward KL + kd_ce_alpha * summed CE",
       "kd_alpha -> alpha, kd_ce_alpha -> 1 - alpha; no num_items_in_batch passed",
       dict(combine=A_SOFT, hard="ce_sum"), **_kd("forward_kl", True, "sum", "soft", True)),
    _e("axolotl_liger_jsd", N.axolotl_liger_jsd,
       AX + "kernels/liger.py @ 00bfeb4 + kernels/models.py @ 546a575 + trainer.py @ 002b1ac" + AX_COLLATOR,
       "kd_beta 0.5: JSD with m = (q + p) / 2, * T^2, divided by num_items; + CE",
       "kd_alpha -> alpha, kd_ce_alpha -> 1 - alpha, kd_beta = 0.5", dict(combine=A_SOFT, custom="gjsd_05"),
       **_kd("jsd", True, "batchmean", "soft", True)),
    _e("axolotl_liger_reverse_kl", N.axolotl_liger_reverse_kl,
       AX + "kernels/liger.py @ 00bfeb4 + kernels/models.py @ 546a575 + trainer.py @ 002b1ac" + AX_COLLATOR,
       "kd_beta 1.0: reverse KL * T^2 divided by num_items; + CE",
       "kd_alpha -> alpha, kd_ce_alpha -> 1 - alpha, kd_beta = 1.0", dict(combine=A_SOFT),
       **_kd("reverse_kl", True, "batchmean", "soft", True)),
    # ---------------- ms-swift ----------------
    _e("msswift_gkd_beta05_sft", N.msswift_gkd_beta05_sft, SWIFT,
       "TRL generalized JSD (beta 0.5) at temperature 1 per token + sft_alpha * CE",
       "sft_alpha -> alpha, beta 0.5; args.temperature (-> T) only used for generation",
       dict(combine=SOFT_PLUS_ACE, custom="gjsd_05"),
       **_kd("jsd", False, "batchmean", "hard", True, s=False, t=False)),
    _e("msswift_gkd_beta0_sft", N.msswift_gkd_beta0_sft, SWIFT,
       "beta 0: TRL's special case forward KL at temperature 1 per token + sft_alpha * CE",
       "sft_alpha -> alpha, beta 0; T unused", dict(combine=SOFT_PLUS_ACE),
       **_kd("forward_kl", False, "batchmean", "hard", True, s=False, t=False)),
    # ---------------- DSKD ----------------
    _e("dskd_forward_kl", N.dskd_forward_kl, DSKD, "kd_objective forward_kl: KL(p || q) at T, no T^2",
       DSKD_MAP, dict(combine=A_SOFT), **_kd("forward_kl", False, "batchmean", "soft", True)),
    _e("dskd_reverse_kl", N.dskd_reverse_kl, DSKD, "kd_objective reverse_kl: KL(q || p) at T, no T^2",
       DSKD_MAP, dict(combine=A_SOFT), **_kd("reverse_kl", False, "batchmean", "soft", True)),
    _e("dskd_js_divergence", N.dskd_js_divergence, DSKD, "js_divergence: (KL(p||m) + KL(q||m)) / 2",
       DSKD_MAP, dict(combine=A_SOFT, custom="gjsd_05"), **_kd("jsd", False, "batchmean", "soft", True)),
    _e("dskd_skewed_forward_kl", N.dskd_skewed_forward_kl, DSKD, "skewed_forward_kl: KL(p || 0.1 p + 0.9 q)",
       DSKD_MAP + "; skew_lambda 0.1", dict(combine=A_SOFT, custom="skew_fkl_01"),
       **_kd(("jsd", "other"), False, "batchmean", "soft", True)),
    _e("dskd_skewed_reverse_kl", N.dskd_skewed_reverse_kl, DSKD, "skewed_reverse_kl: KL(q || 0.9 p + 0.1 q)",
       DSKD_MAP + "; skew_lambda 0.1", dict(combine=A_SOFT, custom="skew_rkl_01"),
       **_kd(("jsd", "other"), False, "batchmean", "soft", True)),
    _e("dskd_adaptive_kl", N.dskd_adaptive_kl, DSKD,
       "adaptive_kl: per-row mix of FKL and RKL weighted by detached head/tail gaps",
       DSKD_MAP + "; adaptive_kl_alpha 0.5", dict(combine=A_SOFT, custom="akl"),
       **_kd("other", False, "batchmean", "soft", True)),
]

# Corpus-B functions that compute the same numbers as some corpus-A function (other projects, same
# textbook loss): the test also scores the corpus without them.
TWINS_IN_A = {
    'attention_transfer_distillation_v0': ('mepeichun_distillation_factor2',),
    'attention_transfer_distillation_v1': (
        'pytorch_tutorial_v2', 'repdistiller_distill_kl', 'mdistiller_kd', 'hf_distilbert_ce_mlm',
        'hf_image_distillation_guide_v2', 'modelopt_logits_distillation', 'distillkit_logits'),
    'axolotl_topk_kl_t2': (
        'pytorch_tutorial_v2', 'repdistiller_distill_kl', 'mdistiller_kd', 'hf_distilbert_ce_mlm',
        'hf_image_distillation_guide_v2', 'modelopt_logits_distillation', 'distillkit_logits'),
    'clskd_kd_soft_ce': ('pytorch_tutorial_v1', 'inc_ce'),
    'compressors_kl_div_loss': ('mmdet_localization_distillation',),
    'cvnets_soft_kl': ('sentence_transformers_distill_kldiv',),
    'dskd_forward_kl': ('intel_distiller_policy',),
    'kerasio_function_matching': (
        'torchdistill_kd_without_alpha', 'inheritune_distillation_loss', 'trl_gkd_second_beta1',
        'trl_gkd_third_beta0', 'megatron_logits_kl_forward'),
    'minimind_distillation': (
        'kerasio_example_t2', 'keras_distiller_logits_kl', 'torchdistill_kd_with_alpha',
        'timm_logit_distillation_complementary', 'hf_image_distillation_guide_v1',
        'philschmid_distillation_trainer', 'nlp_with_transformers_trainer'),
    'ofa_kd_mse': ('aberhu_logits_mse',),
    'paddleclas_kldiv_with_gt': ('aberhu_soft_target', 'nlp_architect_kl', 'mmrazor_kldivergence_v1'),
    'paddleslim_soft_label': ('ddranking_soft_cross_entropy',),
    'pkd_distillation_loss': ('haitongli_loss_fn_kd', 'deit_soft_distillation', 'inc_kl'),
    'pskd_progressive_targets': (
        'torchtune_forward_kl', 'minillm_finetune_kd', 'openrlhf_kd', 'distillm_fkl'),
    'textbrewer_kd_ce_default': ('ddranking_soft_cross_entropy',),
}

PROJECTS = sorted({e.source.split()[0] for e in ENTRIES})


def by_name(name):
    """Return the entry called ``name``; a KeyError names the known entries."""
    for entry in ENTRIES:
        if entry.name == name:
            return entry
    raise KeyError(f"no corpus entry {name!r}; known: {', '.join(e.name for e in ENTRIES)}")


def scored_entries(entries=None):
    """Entries that have conventions (every entry except those that raise on ordinary input)."""
    return [e for e in (ENTRIES if entries is None else entries) if not e.expected.get("raises")]
