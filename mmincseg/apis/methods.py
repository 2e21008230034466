"""Class-incremental methods as data: one :class:`Method` recipe per ``incremental.method``.

The resolver (:mod:`mmincseg.apis.config`) applies a recipe; it has no branch per method. A new
method is one entry of :data:`METHODS`: which segmentation loss the heads use, which losses
distil the teacher (on logits, on features), what else the segmentor does at steps > 0 (its
keyword arguments), which hooks run at every step (state kept across steps) and how the new
classifier rows start.
"""
import copy
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

#: Recipe fields an ``incremental`` block may override (``incremental.kd_weight=100`` ...).
OVERRIDABLE = ('kd_weight', 'kd_alpha', 'feat_kd_weight', 'init_novel', 'reg_weight')


@dataclass(frozen=True)
class Method:
    """One method: what its steps train with.

    Args:
        name (str): The ``incremental.method`` value.
        unbiased (bool): MiB's unbiased cross-entropy on every head at steps > 0 (else mmseg's
            cross-entropy, averaged over non-ignored pixels).
        seg_loss (str, optional): Registered loss that replaces the cross-entropy of every head
            at every step (LwF-MC: ``'OneHotBCELoss'``, MiB's sigmoid loss); the head's
            ``loss_weight`` is kept (steps learned from image labels replace it by the weak
            method's loss). None: the cross-entropy of ``unbiased``.
        kd (str, optional): Registered loss between student and teacher logits (the segmentor's
            ``distill_loss``) at steps > 0.
        kd_weight (float, optional): Its ``loss_weight``.
        kd_alpha (float, optional): Its ``alpha`` (MiB's unbiased KD), if it has one.
        feat_kd_weight (float, optional): Weight of ILT's ``FeatureDistillationLoss`` on the
            decode-head input features (the segmentor's ``feature_distill_loss``); None: none.
        init_novel (bool): MiB's initialisation of the new classifier rows from the background
            row (``IncrementalStepHook.init_novel``).
        model (Mapping): Further segmentor (``IncrementalEncoderDecoder``) arguments at steps > 0.
            A config's own value of such a key wins; for dict values, key by key.
        weak_model (Mapping): Segmentor arguments of every step of a run with
            ``labels='seam'`` (its steps > 0 train on SEAM pseudo-labels), under the same rule.
        image_model (Mapping): Segmentor arguments of the steps > 0 of a run with
            ``labels='image'`` (they learn their new classes from image-level labels, e.g.
            WILSON's ``weak_localizer``), under the same rule. A method with image_model needs
            ``labels='image'``, and ``labels='image'`` needs such a method.
        lr_mult (Mapping): ``optim_wrapper.paramwise_cfg.custom_keys`` learning-rate multipliers
            of steps > 0 by parameter-name key (WILSON: heads and localizer at 10x); a key the
            config sets keeps its value.
        reg_weight (float, optional): Weight of a parameter penalty (EWC/PI/RW), the
            ``loss_weight`` the resolver gives to each of :attr:`hooks`; None: no penalty.
        hooks (tuple[Mapping]): Custom hooks of every step of a run (step 0 included), e.g. one
            that keeps parameter importances across steps. The resolver adds
            ``prev_checkpoint`` (None at step 0) to each of them, and ``loss_weight`` when the
            recipe has a ``reg_weight``.
        all_classes_at_once (bool): The method trains every class of the dataset in one step
            (Joint, the upper bound); its run has the single step 0.
    """

    name: str
    unbiased: bool = False
    seg_loss: Optional[str] = None
    kd: Optional[str] = None
    kd_weight: Optional[float] = None
    kd_alpha: Optional[float] = None
    feat_kd_weight: Optional[float] = None
    init_novel: bool = False
    model: Mapping[str, Any] = field(default_factory=dict)
    weak_model: Mapping[str, Any] = field(default_factory=dict)
    image_model: Mapping[str, Any] = field(default_factory=dict)
    lr_mult: Mapping[str, float] = field(default_factory=dict)
    reg_weight: Optional[float] = None
    hooks: Tuple[Mapping[str, Any], ...] = ()
    all_classes_at_once: bool = False

    def settings(self, inc: Optional[dict] = None) -> Dict[str, Any]:
        """The recipe as plain data, with the ``incremental`` block's overrides
        (:data:`OVERRIDABLE`); unset fields are left out."""
        values = dict(unbiased=self.unbiased, seg_loss=self.seg_loss, kd=self.kd,
                      kd_weight=self.kd_weight,
                      kd_alpha=self.kd_alpha, feat_kd_weight=self.feat_kd_weight,
                      init_novel=self.init_novel, reg_weight=self.reg_weight)
        for key in OVERRIDABLE:
            if inc is not None and inc.get(key) is not None:
                values[key] = inc[key]
        settings = {k: v for k, v in values.items() if v is not None}
        if self.model:
            settings['model'] = copy.deepcopy(dict(self.model))
        if self.image_model:
            settings['image_model'] = copy.deepcopy(dict(self.image_model))
        if self.lr_mult:
            settings['lr_mult'] = dict(self.lr_mult)
        if self.hooks:
            settings['hooks'] = [h['type'] for h in self.hooks]
        return settings

    @staticmethod
    def distill_loss(settings: Dict[str, Any]) -> Optional[dict]:
        """The segmentor's ``distill_loss`` config for :meth:`settings`, or None."""
        if not settings.get('kd'):
            return None
        loss = dict(type=settings['kd'], loss_weight=settings['kd_weight'])
        if 'kd_alpha' in settings:
            loss['alpha'] = settings['kd_alpha']
        return loss

    @staticmethod
    def feature_distill_loss(settings: Dict[str, Any]) -> Optional[dict]:
        """The segmentor's ``feature_distill_loss`` config for :meth:`settings`, or None."""
        if not settings.get('feat_kd_weight'):
            return None
        return dict(type='FeatureDistillationLoss', loss_weight=settings['feat_kd_weight'])


def apply_model_arguments(model: dict, arguments: Mapping[str, Any]) -> None:
    """Set a recipe's segmentor ``arguments`` on ``model`` (in place), the config's own values
    winning: a key the config sets keeps its value; for dicts the config's keys win one by one
    (so ``--cfg-options model.pod_loss.loss_weight=0.02`` changes only the weight)."""
    for key, value in arguments.items():
        mine = model.get(key)
        if isinstance(value, Mapping) and isinstance(mine, Mapping):
            merged = copy.deepcopy(dict(value))
            merged.update(mine)
            model[key] = merged
        elif key not in model:
            model[key] = copy.deepcopy(value)


#: Every method, by ``incremental.method`` (weights: REFERENCES.md, MiB's paper and code).
METHODS: Dict[str, Method] = {
    m.name: m
    for m in (
        Method('ft'),
        Method('lwf', kd='LwFKDLoss', kd_weight=100.0),
        Method('ilt', kd='LwFKDLoss', kd_weight=100.0, feat_kd_weight=100.0),
        # MiB-S (labels='seam'): the teacher keeps pseudo-labels off old objects
        Method('mib', unbiased=True, kd='UnbiasedKDLoss', kd_weight=10.0, kd_alpha=1.0,
               init_novel=True, weak_model=dict(old_class_veto=True)),
        # every step sigmoid: one-hot BCE, old channels distilled towards the teacher's sigmoid
        Method('lwf_mc', seg_loss='OneHotBCELoss', kd='LwFMCKDLoss', kd_weight=10.0),
        # parameter importances accumulated at every step, penalised from step 1 on
        # (MiB's weights assume its lr 0.001 after step 0; the hook refuses a weight x lr at
        # which SGD overshoots the reference weights)
        Method('ewc', reg_weight=500.0,
               hooks=(dict(type='ParameterImportanceHook', method='ewc'), )),
        Method('pi', reg_weight=500.0,
               hooks=(dict(type='ParameterImportanceHook', method='pi'), )),
        Method('rw', reg_weight=100.0,
               hooks=(dict(type='ParameterImportanceHook', method='rw'), )),
        # PLOP (Douillard et al., CVPR 2021; its --method PLOP): plain CE on entropy
        # pseudo-labels scaled by the adaptive factor, Local POD on the backbone outputs and the
        # logits, MiB's novel init (--init_balanced); thresholds computed before each step > 0
        Method('plop', init_novel=True,
               model=dict(
                   pod_loss=dict(type='LocalPODLoss', loss_weight=0.01, logits_weight=0.0005,
                                 scales=[1, 2, 4], prepro='pow', class_schedule=True),
                   pseudo_label=dict(threshold=0.001, num_bins=100, median='plop',
                                     adaptive_factor=True)),
               hooks=(dict(type='PseudoLabelThresholdHook'), )),
        Method('joint', all_classes_at_once=True),
        # WILSON (Cermelli et al., CVPR 2022; fcdl94/WILSON README): step 0 on true masks with
        # MiB's sigmoid loss (its run.sh trains step 0 as `FT_bce`: the old model's sigmoids
        # are the targets of the old channels later); steps > 0 from image-level labels
        # (labels='image', the heads' loss replaced by WILSON's); encoder feature distillation
        # 1 (--loss_de 1); alpha 0.5, 5 localizer-only epochs (WilsonLocalizer defaults); the
        # localizer's self-training on its PAMR-refined masks after them (--affinity, written
        # out so a run's config says it); body lr x1, heads x10 (--lr_head 10) and localizer
        # lr 0.01 = x10 of the step's 0.001 (--lr_pseudo).
        Method('wilson', seg_loss='OneHotBCELoss', feat_kd_weight=1.0,
               image_model=dict(weak_localizer=dict(type='WilsonLocalizer', affinity=True,
                                                    self_train_weight=1.0)),
               lr_mult={'decode_head': 10.0, 'auxiliary_head': 10.0, 'localizer': 10.0}),
    )
}


def get_method(name: str, source: str = 'config') -> Method:
    """The recipe of ``incremental.method=name``.

    Raises:
        ValueError: unknown method, naming the valid ones.
    """
    if name not in METHODS:
        raise ValueError(f"{source}: unknown incremental.method '{name}'; valid: "
                         f'{sorted(METHODS)}')
    return METHODS[name]
