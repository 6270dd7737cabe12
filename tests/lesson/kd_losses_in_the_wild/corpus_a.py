"""An unseen corpus of real-world knowledge-distillation losses (issue 27).

Each entry re-expresses, in our own words, one KD loss from a public project (or one version of
it) in the signature ``loss_fn(student_logits, teacher_logits, labels, T, alpha) -> scalar``,
with its source, a one-line description, how the original's own parameters were mapped onto that
signature, and the expected value of each field of the diagnoser's contract.

``expected[field]`` is a single value, or a tuple of values that are all counted as right (used
where two labels are defensible, e.g. a divergence to a log-space "mixture"). A field that is
absent is not scored for that function (it does not apply, e.g. "softened" for an MSE on raw
logits divided by T, or a NaN makes it undecidable).

``ref`` records how the value was rebuilt from the labels when the corpus was built: every label below
was checked numerically against that rebuild and against gradient and NaN tests.
"""
from dataclasses import dataclass, field

from . import fns_a_llm as L
from . import fns_a_vision as V

FIELDS = ("direction", "t_squared", "reduction", "alpha_on", "hard_term", "student_softened",
          "teacher_softened", "trains_student", "nan_on_ordinary_input")
MAIN_FIELDS = FIELDS[:4]


@dataclass(frozen=True)
class WildLoss:
    name: str
    fn: object
    source: str
    description: str
    mapping: str
    expected: dict
    ref: dict = field(default_factory=dict)


# combine shorthands (how the soft term and the hard cross-entropy are put together)
A_SOFT = "a*soft+(1-a)*ce"
A_HARD = "a*ce+(1-a)*soft"
CE_PLUS = "ce+a*soft"
SOFT_ONLY = "soft"


def _e(name, fn, source, description, mapping, ref, **expected):
    if not expected.get("raises"):  # a function that raises has no other fields
        expected.setdefault("trains_student", True)
        expected.setdefault("nan_on_ordinary_input", False)
    return WildLoss(name, fn, source, description, mapping, expected, ref)


def _kd(direction, t_squared, reduction, alpha_on, hard_term, s=True, t=True, **more):
    """The common case: both sides softened unless said otherwise."""
    return dict(direction=direction, t_squared=t_squared, reduction=reduction, alpha_on=alpha_on,
                hard_term=hard_term, student_softened=s, teacher_softened=t, **more)


TUT = "pytorch/tutorials beginner_source/knowledge_distillation_tutorial.py"
KIO = "keras-team/keras-io examples/vision/knowledge_distillation.py"
KD3 = "keras-team/keras keras/src/distillation/"
TRL = "huggingface/trl trl/trainer/gkd_trainer.py"
DLM = "jongwooko/distillm distillm/losses.py + finetune.py @ 17c0f98"
HFD = "huggingface/transformers examples/research_projects/distillation/distiller.py @ 1607444"
GUIDE = "huggingface/transformers docs/source/en/tasks/knowledge_distillation_for_image_classification.md"
INC = "intel/neural-compressor neural_compressor/compression/distillation/criterions.py @ 104e87c"
NLPA = "IntelLabs/nlp-architect nlp_architect/nn/torch/distillation.py @ 1f99e05"
MEG = "NVIDIA/TensorRT-Model-Optimizer modelopt/torch/distill/plugins/megatron.py @ 87f791d"
LLM_MAP = "token loss mapped to one token per row; T unused; kd_ratio -> alpha"

ENTRIES = [
    _e("pytorch_tutorial_v1", V.pytorch_tutorial_v1, TUT + " @ 035c541",
       "soft cross-entropy -sum p log q / B * T^2, weighted with CE",
       "soft_target_loss_weight -> alpha, ce_loss_weight -> 1 - alpha", dict(combine=A_SOFT),
       **_kd("soft_cross_entropy", True, "batchmean", "soft", True)),
    _e("pytorch_tutorial_v2", V.pytorch_tutorial_v2, TUT + " @ c53e7d4",
       "same line rewritten as a true KL sum p (log p - log q) / B * T^2",
       "soft_target_loss_weight -> alpha, ce_loss_weight -> 1 - alpha", dict(combine=A_SOFT),
       **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("kerasio_example_2020", V.kerasio_example_2020, KIO + " (2020 text, fork ekmixon/keras-io @ f9c8025)",
       "alpha * student CE + (1 - alpha) * Keras KLDivergence, no T^2",
       "alpha is the example's alpha", dict(combine=A_HARD),
       **_kd("forward_kl", False, "batchmean", "hard", True)),
    _e("kerasio_example_swapped_roles", V.kerasio_example_swapped_roles, KIO + " @ 1da2fde",
       "version with teacher/student swapped in __init__: reverse KL, real student untrained",
       "alpha is the example's alpha; the 'student loss' is the real teacher's CE",
       dict(combine=A_HARD, hard="teacher_ce"),
       direction="reverse_kl", t_squared=False, reduction="batchmean", alpha_on="hard",
       student_softened=True, teacher_softened=True, trains_student=False),
    _e("kerasio_example_t2", V.kerasio_example_t2, KIO + " @ 501fb4c",
       "later version: Keras KLDivergence times T^2, alpha still on the student CE",
       "alpha is the example's alpha", dict(combine=A_HARD),
       **_kd("forward_kl", True, "batchmean", "hard", True)),
    _e("keras_distiller_first_default", V.keras_distiller_first_default,
       KD3 + "distiller.py @ 137a37f + strategies.py @ 0b2d88f",
       "alpha * SparseCCE(from_logits=False) on logits + (1 - alpha) * T^2 * mean KL",
       "Distiller(alpha=...) -> alpha; default student_loss_fn kept", dict(combine=A_HARD, hard="keras_probs_ce"),
       direction="forward_kl", t_squared=True, reduction="batchmean", alpha_on="hard",
       student_softened=True, teacher_softened=True),
    _e("keras_strategies_categorical_ce", V.keras_strategies_categorical_ce,
       KD3 + "strategies.py @ 0b2d88f (LogitsDistillation loss_type='categorical_crossentropy')",
       "soft cross-entropy on softened logits, explicitly without T^2",
       "Distiller(alpha=...) -> alpha", dict(combine=A_HARD),
       **_kd("soft_cross_entropy", False, "batchmean", "hard", True)),
    _e("keras_distiller_logits_kl", V.keras_distiller_logits_kl,
       KD3 + "distiller.py @ 820f73b + distillation_loss.py @ 9c6a70c",
       "student_loss_weight * CE + (1 - w) * T^2 * mean KL",
       "student_loss_weight -> alpha; compile(loss=SparseCCE(from_logits=True))", dict(combine=A_HARD),
       **_kd("forward_kl", True, "batchmean", "hard", True)),
    _e("keras_distiller_feature_mse_final", V.keras_distiller_feature_mse_final,
       KD3 + "distillation_loss.py @ 9c6a70c (FeatureDistillation(loss='mse'), final outputs)",
       "w * CE + (1 - w) * mean squared error of the logits, T unused",
       "student_loss_weight -> alpha; T ignored", dict(combine=A_HARD, mse_on="logits"),
       **_kd("mse", False, "mean", "hard", True, s=False, t=False)),
    _e("keras_logits_distillation_cce_string", V.keras_logits_distillation_cce_string,
       KD3 + "distillation_loss.py @ 9c6a70c (LogitsDistillation(loss='categorical_crossentropy'))",
       "plain keras categorical_crossentropy applied to scaled logits (no softmax, no T^2)",
       "student_loss_weight -> alpha", dict(combine=A_HARD, custom="keras_cce_on_logits", s_div=True, t_div=True),
       direction="other", t_squared=False, reduction="batchmean", alpha_on="hard", hard_term=True),
    _e("torchdistill_kd_with_alpha", V.torchdistill_kd_with_alpha,
       "yoshitomo-matsubara/torchdistill torchdistill/losses/single.py @ 0634822 (KDLoss)",
       "alpha * CE + (1 - alpha) * T^2 * batchmean KL", "alpha is KDLoss's alpha, beta = 1 - alpha",
       dict(combine=A_HARD), **_kd("forward_kl", True, "batchmean", "hard", True)),
    _e("torchdistill_kd_without_alpha", V.torchdistill_kd_without_alpha,
       "yoshitomo-matsubara/torchdistill torchdistill/losses/single.py @ 0634822 (KDLoss, alpha=None)",
       "soft KL alone, T^2 dropped on this path", "alpha=None in the original; our alpha ignored",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", False, "batchmean", "ignored", False)),
    _e("haitongli_loss_fn_kd", V.haitongli_loss_fn_kd,
       "haitongli/knowledge-distillation-pytorch model/net.py @ 862fcd8 (loss_fn_kd)",
       "nn.KLDivLoss() default mean (B*C) * alpha * T^2 + (1 - alpha) * CE", "params.alpha -> alpha",
       dict(combine=A_SOFT), **_kd("forward_kl", True, "mean", "soft", True)),
    _e("mepeichun_distillation_factor2", V.mepeichun_distillation,
       "mepeichun/Efficient-Neural-Network-Bilibili 4-Knowledge-Distillation/4-2_Knowledge_Distillation.ipynb "
       "(quoted in its issue #1)", "the loss_fn_kd pattern with an extra factor 2.0 on the soft term",
       "alpha is the notebook's alpha", dict(combine=A_SOFT, factor=2.0),
       **_kd("forward_kl", True, "mean", "soft", True)),
    _e("deit_soft_distillation", V.deit_soft_distillation, "facebookresearch/deit losses.py @ ae4dba9 ('soft')",
       "summed log-space KL * T^2 / numel (B*C); (1 - alpha) * base + alpha * distillation",
       "alpha is DeiT's alpha; base criterion mapped to plain CE", dict(combine=A_SOFT),
       **_kd("forward_kl", True, "mean", "soft", True)),
    _e("intel_distiller_policy", V.intel_distiller_policy,
       "IntelLabs/distiller distiller/knowledge_distillation.py @ 06faf4c (KnowledgeDistillationPolicy)",
       "soft KL on a detached copy of the student's logits (never trains the student), no T^2",
       "loss_weights.distill -> alpha, loss_weights.student -> 1 - alpha", dict(combine=A_SOFT),
       **_kd("forward_kl", False, "batchmean", "soft", True), trains_student=False),
    _e("repdistiller_distill_kl", V.repdistiller_distill_kl,
       "HobbitLong/RepDistiller distiller_zoo/KD.py @ 1e2f816 + train_student.py @ 7fd6eff",
       "summed KL * T^2 / B; gamma * CE + alpha * KL", "opt.alpha -> alpha, opt.gamma -> 1 - alpha",
       dict(combine=A_SOFT), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("mdistiller_kd", V.mdistiller_kd, "megvii-research/mdistiller mdistiller/distillers/KD.py @ e8c5bb3",
       "per-row summed KL, batch mean, * T^2; ce_weight * CE + kd_weight * KD",
       "KD_WEIGHT -> alpha, CE_WEIGHT -> 1 - alpha", dict(combine=A_SOFT),
       **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("mdistiller_dkd", V.mdistiller_dkd, "megvii-research/mdistiller mdistiller/distillers/DKD.py @ e8c5bb3",
       "decoupled KD (target/non-target KLs weighted 1 and 8) * T^2 / B + CE",
       "DKD's own alpha=1, beta=8, CE weight 1, warm-up done; our alpha ignored",
       dict(combine=("fixed", 1.0, 1.0), custom="dkd"),
       **_kd("other", True, "batchmean", "ignored", True)),
    _e("logit_standardization_kd", V.logit_standardization_kd,
       "sunshangquan/logit-standardization-KD mdistiller/distillers/KD.py @ 6083e2d (LOGIT_STAND on)",
       "KL of z-scored logits / T, * T^2; ce_weight * CE + kd_weight * KD",
       "KD_WEIGHT -> alpha, CE_WEIGHT -> 1 - alpha", dict(combine=A_SOFT, custom="zscore_kl"),
       **_kd(("forward_kl", "other"), True, "batchmean", "soft", True)),
    _e("aberhu_soft_target", V.aberhu_soft_target, "AberHu/Knowledge-Distillation-Zoo train_st.py @ f30aa70",
       "CE + lambda_st * summed KL * T^2 / B", "lambda_st -> alpha, CE weight stays 1",
       dict(combine=CE_PLUS), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("aberhu_logits_mse", V.aberhu_logits_mse,
       "AberHu/Knowledge-Distillation-Zoo kd_losses/logits.py @ e8e298d + train_logits.py @ f30aa70",
       "Ba & Caruana logit regression: CE + lambda * mse_loss(student, teacher)",
       "lambda_logits -> alpha; T ignored", dict(combine=CE_PLUS, mse_on="logits"),
       **_kd("mse", False, "mean", "soft", True, s=False, t=False)),
    _e("kdlib_vanilla_kd", V.kdlib_vanilla_kd, "SforAiDl/KD_Lib KD_Lib/KD/vision/vanilla/vanilla_kd.py @ d00c232",
       "default MSELoss between softened probabilities * distil_weight * T^2 + (1 - w) * CE",
       "distil_weight -> alpha", dict(combine=A_SOFT, mse_on="probs"),
       **_kd("mse", True, "mean", "soft", True)),
    _e("inc_ce", L.inc_knowledge_distillation("CE"), INC,
       "loss_types ['CE','CE']: soft cross-entropy of scaled logits * T^2", "loss_weights [1 - alpha, alpha]",
       dict(combine=A_SOFT), **_kd("soft_cross_entropy", True, "batchmean", "soft", True)),
    _e("inc_kl", L.inc_knowledge_distillation("KL"), INC,
       "loss_types ['CE','KL']: F.kl_div with its default mean (B*C) * T^2", "loss_weights [1 - alpha, alpha]",
       dict(combine=A_SOFT), **_kd("forward_kl", True, "mean", "soft", True)),
    _e("inc_mse", L.inc_knowledge_distillation("MSE"), INC,
       "loss_types ['CE','MSE']: MSE of logits / T times T^2 (T cancels)", "loss_weights [1 - alpha, alpha]",
       dict(combine=A_SOFT, mse_on="logits", s_div=False, t_div=False, t2=False),
       direction="mse", reduction="mean", alpha_on="soft", hard_term=True),
    _e("nlp_architect_kl", L.nlp_architect_distill("kl"), NLPA,
       "loss_w * CE + batchmean KL * dist_w * T^2", "dist_w -> alpha, loss_w = 1",
       dict(combine=CE_PLUS), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("nlp_architect_mse", L.nlp_architect_distill("mse"), NLPA,
       "MSELoss between student log-probabilities and teacher probabilities * dist_w * T^2 + CE",
       "dist_w -> alpha, loss_w = 1", dict(combine=CE_PLUS, custom="mse_logq_vs_p"),
       **_kd(("other", "mse"), True, "mean", "soft", True)),
    _e("mmdet_localization_distillation", V.mmdet_localization_distillation,
       "open-mmlab/mmdetection mmdet/models/losses/kd_loss.py @ 0b4d8a4 (knowledge_distillation_loss)",
       "per-sample KL mean over classes * T^2, then mean over samples", "loss_weight 1; alpha ignored",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", True, "mean", "ignored", False)),
    _e("mmrazor_kldivergence_v0", V.mmrazor_kldivergence_v0,
       "open-mmlab/mmrazor mmrazor/models/losses/kl_divergence.py @ 09bef65",
       "named KLDivergence but computes sum(-p log q) * tau^2 / N; added to the student's CE",
       "loss_weight -> alpha, student CE weight 1", dict(combine=CE_PLUS),
       **_kd("soft_cross_entropy", True, "batchmean", "soft", True)),
    _e("mmrazor_kldivergence_v1", V.mmrazor_kldivergence_v1,
       "open-mmlab/mmrazor mmrazor/models/losses/kl_divergence.py @ 147e85f",
       "tau^2 * kl_div(batchmean) * loss_weight; added to the student's CE",
       "loss_weight -> alpha, student CE weight 1", dict(combine=CE_PLUS),
       **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("timm_logit_distillation_complementary", V.timm_logit_distillation_complementary,
       "huggingface/pytorch-image-models timm/task/distillation.py @ 3034f27 (LogitDistillationTask)",
       "only task_loss_weight given: w * CE + (1 - w) * T^2 * KL", "task_loss_weight -> alpha",
       dict(combine=A_HARD), **_kd("forward_kl", True, "batchmean", "hard", True)),
    _e("timm_logit_distillation_defaults", V.timm_logit_distillation_defaults,
       "huggingface/pytorch-image-models timm/task/distillation.py @ 3034f27 (no weights given)",
       "CE + T^2 * KL, both weights 1.0", "alpha ignored", dict(combine=("fixed", 1.0, 1.0)),
       **_kd("forward_kl", True, "batchmean", "ignored", True)),
    _e("matchmaker_kldiv_teacher_list", V.matchmaker_kldiv_teacher_list,
       "sebastian-hofstaetter/matchmaker matchmaker/losses/teacher_kldiv_list.py @ cb1d35d (its issue #18)",
       "KLDivLoss given probabilities instead of log-probabilities", "no T, no alpha: both ignored",
       dict(combine=SOFT_ONLY, custom="kl_probs_as_input"),
       **_kd("other", False, "batchmean", "ignored", False, s=False, t=False)),
    _e("distillclip_soft_label", V.distillclip_soft_label,
       "ForJadeForest/DistillCLIP model/loss_component/soft_label.py",
       "KLDivLoss(reduction='sum') * T^2: summed over batch and classes", "alpha ignored",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", True, "sum", "ignored", False)),
    _e("inheritune_distillation_loss", V.inheritune_distillation_loss,
       "Ilya703/Inheritune src/utils/distillation_loss.py", "batchmean KL of softened outputs, no T^2",
       "the function alone; alpha ignored", dict(combine=SOFT_ONLY),
       **_kd("forward_kl", False, "batchmean", "ignored", False)),
    _e("ddranking_soft_cross_entropy", V.ddranking_soft_cross_entropy,
       "pypi-data/pypi-mirror-352 packages/ddranking-0.2.0 dd_ranking/loss/sce.py",
       "soft cross-entropy of softened outputs / B, no T^2", "the function alone; alpha ignored",
       dict(combine=SOFT_ONLY), **_kd("soft_cross_entropy", False, "batchmean", "ignored", False)),
    _e("colbert_distillation", V.colbert_distillation,
       "stanford-futuredata/ColBERT colbert/training/training.py @ 03176a4",
       "teacher scores times distillation_alpha, student raw; log-space KL batchmean",
       "distillation_alpha -> 1 / T (teacher only); alpha ignored", dict(combine=SOFT_ONLY),
       **_kd("forward_kl", False, "batchmean", "ignored", False, s=False, t=True)),
    _e("dino_cross_entropy", V.dino_cross_entropy, "facebookresearch/dino main_dino.py @ cc72fe9 (DINOLoss)",
       "teacher softmax at T vs student log-softmax at a fixed 0.1, cross-entropy mean over batch",
       "teacher_temp -> T, student_temp fixed 0.1, centre 0, one view pair", dict(combine=SOFT_ONLY, custom="dino"),
       **_kd(("soft_cross_entropy", "other"), False, "batchmean", "ignored", False, s=False, t=True)),
    # ---------------- language models, retrieval, tooling ----------------
    _e("trl_gkd_first_beta05", L.trl_gkd_first(0.5), TRL + " (first version, issue #2202)",
       "log-space 'mixture' beta*log q + (1-beta)*log p: equals beta^2 FKL + (1-beta)^2 RKL",
       "beta=0.5; GKD has no alpha, no hard term; T both sides", dict(combine=SOFT_ONLY, custom="trl_first_05"),
       **_kd(("other", "jsd"), False, "batchmean", "ignored", False)),
    _e("trl_gkd_second_beta05", L.trl_gkd_second(0.5), TRL + " @ e3244d2 (before PR #3043)",
       "generalised JSD with m = beta q + (1-beta) p", "beta=0.5",
       dict(combine=SOFT_ONLY, custom="jsd_05"), **_kd("jsd", False, "batchmean", "ignored", False)),
    _e("trl_gkd_second_beta0", L.trl_gkd_second(0.0), TRL + " @ e3244d2 (before PR #3043)",
       "beta=0 gives KL(q || p): reverse KL in this version", "beta=0",
       dict(combine=SOFT_ONLY), **_kd("reverse_kl", False, "batchmean", "ignored", False)),
    _e("trl_gkd_second_beta1", L.trl_gkd_second(1.0), TRL + " @ e3244d2 (before PR #3043)",
       "beta=1 gives KL(p || q): forward KL in this version", "beta=1",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", False, "batchmean", "ignored", False)),
    _e("trl_gkd_third_beta0", L.trl_gkd_third(0.0), TRL + " @ a9fa292",
       "beta=0 special case: forward KL (the opposite of the previous version)", "beta=0",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", False, "batchmean", "ignored", False)),
    _e("trl_gkd_third_beta1", L.trl_gkd_third(1.0), TRL + " @ a9fa292",
       "beta=1 special case: reverse KL", "beta=1",
       dict(combine=SOFT_ONLY), **_kd("reverse_kl", False, "batchmean", "ignored", False)),
    _e("trl_gkd_third_beta05", L.trl_gkd_third(0.5), TRL + " @ a9fa292",
       "generalised JSD with m = (1-beta) q + beta p", "beta=0.5",
       dict(combine=SOFT_ONLY, custom="jsd_05"), **_kd("jsd", False, "batchmean", "ignored", False)),
    _e("trl_gkd_third_beta09", L.trl_gkd_third(0.9), TRL + " @ a9fa292",
       "generalised JSD, beta=0.9: 0.9 KL(p||m) + 0.1 KL(q||m), m = 0.1 q + 0.9 p", "beta=0.9",
       dict(combine=SOFT_ONLY, custom="jsd_trl3_09"), **_kd("jsd", False, "batchmean", "ignored", False)),
    _e("torchtune_forward_kl", L.torchtune_forward_kl,
       "pytorch/torchtune torchtune/modules/loss/kd_losses.py @ 104b38f"
       " + recipes/knowledge_distillation_single_device.py @ 00d09d0",
       "'ForwardKLLoss' is -sum p log q per token (soft CE), no temperature", LLM_MAP,
       dict(combine=A_SOFT), **_kd("soft_cross_entropy", False, "batchmean", "soft", True, s=False, t=False)),
    _e("minillm_finetune_kd", L.minillm_finetune_kd, "microsoft/LMOps minillm/finetune.py @ 18707df",
       "KD baseline: soft CE per token, (1 - kd_ratio) * lm + kd_ratio * distil", LLM_MAP,
       dict(combine=A_SOFT), **_kd("soft_cross_entropy", False, "batchmean", "soft", True, s=False, t=False)),
    _e("openrlhf_kd", L.openrlhf_kd,
       "OpenRLHF/OpenRLHF openrlhf/models/loss.py @ 09f5ace (KDLoss) + openrlhf/trainer/kd_trainer.py @ 0663240",
       "soft CE per token; gpt_loss * (1 - kd_coef) + distil * kd_coef", "kd_coef -> alpha; T unused",
       dict(combine=A_SOFT), **_kd("soft_cross_entropy", False, "batchmean", "soft", True, s=False, t=False)),
    _e("distillm_fkl", L.distillm_fkl, DLM, "'forward_kl' = soft cross-entropy per token", LLM_MAP,
       dict(combine=A_SOFT), **_kd("soft_cross_entropy", False, "batchmean", "soft", True, s=False, t=False)),
    _e("distillm_rkl", L.distillm_rkl, DLM, "reverse_kl = KL(q || p) per token", LLM_MAP,
       dict(combine=A_SOFT), **_kd("reverse_kl", False, "batchmean", "soft", True, s=False, t=False)),
    _e("distillm_sfkl", L.distillm_sfkl, DLM, "skewed forward KL: -sum p log(0.1 p + 0.9 q)",
       LLM_MAP + "; skew lam=0.1", dict(combine=A_SOFT, custom="skew_fkl"),
       **_kd(("jsd", "other"), False, "batchmean", "soft", True, s=False, t=False)),
    _e("distillm_srkl", L.distillm_srkl, DLM, "skewed reverse KL: KL(q || 0.9 p + 0.1 q)",
       LLM_MAP + "; skew lam=0.1", dict(combine=A_SOFT, custom="skew_rkl"),
       **_kd(("jsd", "other"), False, "batchmean", "soft", True, s=False, t=False)),
    _e("distillm_jsd", L.distillm_jsd, DLM, "0.9 KL(q||m) + 0.1 KL(p||m), m = 0.1 p + 0.9 q",
       LLM_MAP + "; lam=0.9", dict(combine=A_SOFT, custom="jsd_distillm"),
       **_kd("jsd", False, "batchmean", "soft", True, s=False, t=False)),
    _e("distillm_tvd", L.distillm_tvd, DLM, "total variation 0.5 sum |p - q| per token", LLM_MAP,
       dict(combine=A_SOFT, custom="tvd"),
       **_kd("other", False, "batchmean", "soft", True, s=False, t=False)),
    _e("tinybert_prediction_distillation", L.tinybert_prediction_distillation,
       "huawei-noah/Pretrained-Language-Model TinyBERT/task_distill.py @ 008b180 (pred_distill)",
       "soft cross-entropy of softened logits averaged over batch and classes, no T^2",
       "cls_loss is the whole loss at that stage; alpha ignored", dict(combine=SOFT_ONLY),
       **_kd("soft_cross_entropy", False, "mean", "ignored", False)),
    _e("hf_distilbert_ce_mlm", L.hf_distilbert_ce_mlm, HFD,
       "alpha_ce * T^2 * batchmean KL + alpha_mlm * CE", "alpha_ce -> alpha, alpha_mlm -> 1 - alpha",
       dict(combine=A_SOFT), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("hf_distilbert_readme_weights", L.hf_distilbert_readme_weights,
       HFD + " + README.md training command", "5.0 * T^2 * KL + 2.0 * CE (the README's weights)",
       "alpha ignored; cosine hidden-state term left out", dict(combine=("fixed", 5.0, 2.0)),
       **_kd("forward_kl", True, "batchmean", "ignored", True)),
    _e("hf_distilbert_mse", L.hf_distilbert_mse, HFD,
       "alpha_mse * MSELoss(sum)(logits) / rows + alpha_mlm * CE",
       "alpha_ce = 0, alpha_mse -> alpha, alpha_mlm -> 1 - alpha; T unused",
       dict(combine=A_SOFT, mse_on="logits"), **_kd("mse", False, "batchmean", "soft", True, s=False, t=False)),
    _e("hf_image_distillation_guide_v1", L.hf_image_distillation_guide_v1, GUIDE + " @ 01080da",
       "lambda * student loss + (1 - lambda) * T^2 * KL", "lambda_param -> alpha", dict(combine=A_HARD),
       **_kd("forward_kl", True, "batchmean", "hard", True)),
    _e("hf_image_distillation_guide_v2", L.hf_image_distillation_guide_v2, GUIDE + " @ 77c2fe6",
       "(1 - lambda) * student loss + lambda * T^2 * KL: sides swapped", "lambda_param -> alpha",
       dict(combine=A_SOFT), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("philschmid_distillation_trainer", L.philschmid_distillation_trainer,
       "philschmid/huggingface-sagemaker-workshop-series workshop_4_distillation_and_acceleration/"
       "scripts/knowledge_distillation.py @ 66e581b", "alpha * student loss + (1 - alpha) * T^2 * KL",
       "alpha is the trainer's alpha", dict(combine=A_HARD), **_kd("forward_kl", True, "batchmean", "hard", True)),
    _e("nlp_with_transformers_trainer", L.nlp_with_transformers_trainer,
       "nlp-with-transformers/notebooks 08_model-compression.ipynb @ 6ec6590",
       "alpha * loss_ce + (1 - alpha) * T^2 * KL", "alpha is the trainer's alpha", dict(combine=A_HARD),
       **_kd("forward_kl", True, "batchmean", "hard", True)),
    _e("sentence_transformers_distill_kldiv", L.sentence_transformers_distill_kldiv,
       "UKPLab/sentence-transformers sentence_transformers/losses/DistillKLDivLoss.py @ 0af02e7",
       "KLDivLoss(batchmean) on score distributions * T^2", "scores -> logits; alpha ignored",
       dict(combine=SOFT_ONLY), **_kd("forward_kl", True, "batchmean", "ignored", False)),
    _e("modelopt_logits_distillation", L.modelopt_logits_distillation,
       "NVIDIA/TensorRT-Model-Optimizer modelopt/torch/distill/losses.py @ 2da2db9 + StaticLossBalancer",
       "batchmean KL * T^2 weighted kd_loss_weight, student loss the rest", "kd_loss_weight -> alpha",
       dict(combine=A_SOFT), **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("megatron_logits_kl_forward", L.megatron_logits_kl(False), MEG,
       "per-token KL(p || q) of logits / T, no T^2, masked token mean",
       "skip_lm_loss=True: KD term alone; alpha ignored", dict(combine=SOFT_ONLY),
       **_kd("forward_kl", False, "batchmean", "ignored", False)),
    _e("megatron_logits_kl_reverse", L.megatron_logits_kl(True), MEG,
       "reverse=True: per-token KL(q || p), no T^2", "skip_lm_loss=True: KD term alone; alpha ignored",
       dict(combine=SOFT_ONLY), **_kd("reverse_kl", False, "batchmean", "ignored", False)),
    _e("distillkit_logits", L.distillkit_logits, "arcee-ai/DistillKit distil_logits.py @ 09fbb0c",
       "alpha * T^2 * batchmean KL / max_length + (1 - alpha) * student loss",
       "config alpha -> alpha; one token per row so max_length 1", dict(combine=A_SOFT),
       **_kd("forward_kl", True, "batchmean", "soft", True)),
    _e("tutorial_log_of_raw_logits", L.tutorial_log_of_raw_logits,
       "public text found by exact-string search (index id 30338710321; the tool names no repository)",
       "KLDivLoss()(log(student_logits / T), softmax(teacher / T)): log of raw logits, NaN",
       "alpha is its alpha", dict(combine=A_SOFT, positive_inputs=True, custom="log_raw_mean", s_div=True),
       direction=("other", "forward_kl"), t_squared=False, reduction="mean", alpha_on="soft", hard_term=True,
       teacher_softened=True, nan_on_ordinary_input=True),
    _e("moe_log_of_raw_logits", L.moe_log_of_raw_logits,
       "public code found by exact-string search (index id 67661020687; the tool names no repository)",
       "KLDivLoss(batchmean)(log(student / T), teacher / T) * T^2: no softmax on either side, NaN",
       "alpha is its alpha", dict(combine=A_SOFT, positive_inputs=True, custom="log_raw_raw", s_div=True, t_div=True),
       direction=("other", "forward_kl"), t_squared=True, reduction="batchmean", alpha_on="soft", hard_term=True,
       nan_on_ordinary_input=True),
]

PROJECTS = sorted({e.source.split()[0] for e in ENTRIES})


def by_name(name):
    """Return the entry called ``name``; a KeyError names the known entries."""
    for entry in ENTRIES:
        if entry.name == name:
            return entry
    raise KeyError(f"no corpus entry {name!r}; known: {', '.join(e.name for e in ENTRIES)}")


def is_right(expected_value, answer):
    """True if ``answer`` is the expected value or one of the accepted values."""
    accepted = expected_value if isinstance(expected_value, tuple) else (expected_value,)
    return answer in accepted
