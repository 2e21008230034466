"""Method recipes: the resolver applies them as data (losses, segmentor arguments, hooks)."""
import pytest

from mmincseg.apis import METHODS, Method, get_method, plan_step
from mmincseg.apis import methods as methods_module
from mmincseg.apis.methods import apply_model_arguments

FT = 'configs/ft/bisenet_r18_toyvoc_15-5_step0.py'
RUN = 'work_dirs/x'


def test_every_recipe_is_named_by_its_key():
    assert all(m.name == name for name, m in METHODS.items())
    assert {'ft', 'lwf', 'ilt', 'mib', 'joint'} <= set(METHODS)


def test_settings_take_the_blocks_overrides_and_leave_unset_fields_out():
    mib = METHODS['mib']
    assert mib.settings() == dict(unbiased=True, kd='UnbiasedKDLoss', kd_weight=10.0,
                                  kd_alpha=1.0, init_novel=True)
    got = mib.settings(dict(kd_weight=100.0, init_novel=False, kd_alpha=None))
    assert got['kd_weight'] == 100.0 and got['init_novel'] is False and got['kd_alpha'] == 1.0
    assert METHODS['ft'].settings() == dict(unbiased=False, init_novel=False)
    assert Method.distill_loss(METHODS['ft'].settings()) is None
    assert Method.distill_loss(got) == dict(type='UnbiasedKDLoss', loss_weight=100.0, alpha=1.0)
    assert Method.feature_distill_loss(METHODS['ilt'].settings()) == dict(
        type='FeatureDistillationLoss', loss_weight=100.0)


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown incremental.method 'sgd'.*'mib'"):
        get_method('sgd', 'my.py')


def test_config_values_win_over_the_recipes_key_by_key():
    model = dict(pod=dict(loss_weight=0.5), flag=False)
    apply_model_arguments(model, dict(pod=dict(type='P', loss_weight=0.01, scales=[1, 2]),
                                      flag=True, other=dict(a=1)))
    assert model == dict(pod=dict(type='P', loss_weight=0.5, scales=[1, 2]), flag=False,
                         other=dict(a=1))


def test_a_new_recipe_reaches_the_resolved_config(monkeypatch):
    """A method is one entry: its segmentor arguments at steps > 0 and its hooks at every step
    (with the previous checkpoint) come out of the resolver without a branch for it."""
    recipe = Method('probe', kd='LwFKDLoss', kd_weight=3.0,
                    model=dict(fuse_teacher_bn=False),
                    hooks=(dict(type='ProbeHook', strength=2),))
    monkeypatch.setitem(METHODS, 'probe', recipe)
    assert methods_module.METHODS['probe'] is recipe
    opts = {'incremental.method': 'probe'}
    for step in (0, 1):
        plan, cfg = plan_step(FT, RUN, cfg_options=opts, step=step)
        probe = [h for h in cfg.custom_hooks if h['type'] == 'ProbeHook']
        assert probe == [dict(type='ProbeHook', strength=2,
                              prev_checkpoint=plan.prev_checkpoint)]
        # steps > 0 only; at step 0 the model keeps its default (the key is unset)
        assert cfg.model.get('fuse_teacher_bn', 'unset') == ('unset' if step == 0 else False)
        assert plan.method_settings['hooks'] == ['ProbeHook']
    assert plan.prev_checkpoint.endswith('step0')
    assert cfg.model.distill_loss == dict(type='LwFKDLoss', loss_weight=3.0)
