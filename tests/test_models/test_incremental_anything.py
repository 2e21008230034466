"""Every mmseg decode head learns new classes by config: SegFormer, DeepLabV3+, PSPNet, BiSeNetV2.

Each model is built from its toy config (made small through cfg options: ResNet-18 instead of
R101, thin heads, 64 px) and goes through a real MiB step: step 0 for one epoch, then step 1 via
``IncrementalStepHook``. Plus the guard rails: heads that cannot be made incremental are refused
when the config is resolved, and a plain (non-incremental) mmseg checkpoint serves as step 0.
"""
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS, RUNNERS

from mmincseg import tasks
from mmincseg.apis import load_step_config, train_step
from mmincseg.engine.hooks import find_last_checkpoint
from mmincseg.models.classifiers import incremental_classifiers
from loader_options import NO_WORKERS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/{method}/{model}_toyvoc_15-5_step0.py')
STEP1 = {'incremental.step': 1}
FAST = {'train_cfg.max_epochs': 1, 'param_scheduler.0.end': 1, 'train_dataloader.batch_size': 8,
        **NO_WORKERS}
# (the toy R101 configs name mmincseg-toy://resnet101_v1c; at depth 18 the R18 file of the same
# layout is loaded, so the full-load check runs)
RESNET18 = {'model.backbone.depth': 18, 'model.pretrained': 'mmincseg-toy://resnet18_v1c',
            'model.decode_head.in_channels': 512,
            'model.decode_head.channels': 16, 'model.auxiliary_head.in_channels': 256,
            'model.auxiliary_head.channels': 16}
# Same heads and segmentor as the real configs, small enough for a 2-core CPU.
SMALL = {
    'segformer_b0': {'model.backbone.embed_dims': 16, 'model.backbone.num_layers': [1, 1, 1, 1],
                     'model.backbone.init_cfg': None,  # a thin MiT: not the toy MiT-B0's layout
                     'model.decode_head.in_channels': [16, 32, 80, 128],
                     'model.decode_head.channels': 32},
    'deeplabv3plus_r101': dict(RESNET18, **{'model.decode_head.c1_in_channels': 64,
                                            'model.decode_head.c1_channels': 8}),
    'pspnet_r101': dict(RESNET18),
    'bisenetv2': {'model.decode_head.channels': 64, 'model.auxiliary_head.3.channels': 64},
}
HEADS = {'segformer_b0': ('SegformerHead', []),
         'deeplabv3plus_r101': ('DepthwiseSeparableASPPHead', ['FCNHead']),
         'pspnet_r101': ('PSPHead', ['FCNHead']),
         'bisenetv2': ('FCNHead', ['FCNHead'] * 4)}
MODEL_NAMES = list(SMALL)


def options(model: str, **extra) -> dict:
    return dict(FAST, **SMALL[model], **extra)


def heads_of(model) -> list:
    if not model.with_auxiliary_head:
        return [model.decode_head]
    aux = model.auxiliary_head
    return [model.decode_head, *(aux if isinstance(aux, torch.nn.ModuleList) else [aux])]


def assert_novel_init_keeps_old_probabilities(model, teacher) -> None:
    """MiB init: old-class softmax probabilities of the student equal the teacher's."""
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats, old_feats = model.extract_feat(x), teacher.extract_feat(x)
        for head, old_head in zip(heads_of(model), heads_of(teacher)):
            p = F.softmax(head.forward(feats), 1)
            q = F.softmax(old_head.forward(old_feats), 1)
            torch.testing.assert_close(p[:, 1:16], q[:, 1:16], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(p[:, [0, *range(16, 21)]].sum(1), q[:, 0], atol=1e-5,
                                       rtol=1e-4)


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_every_config_of_the_model_resolves(model):
    files = sorted(glob.glob(osp.join(REPO, f'configs/*/{model}_*.py')))
    names = {osp.basename(osp.dirname(f)) + '/' + osp.basename(f) for f in files}
    expected = {f'mib/{model}_toyvoc_15-5_step0.py', f'ft/{model}_toyvoc_15-5_step0.py',
                f'mib/{model}_voc_15-5_step0.py', f'mib/{model}_voc_15-1_step0.py'}
    assert expected <= names
    for f, step in [(f, t) for f in files
                    for t in range(tasks.num_steps(Config.fromfile(f).incremental.task))]:
        cfg = load_step_config(f, work_dir='work_dirs/unused',
                               cfg_options={'incremental.step': step})
        inc = cfg.incremental
        assert cfg.model.type == 'IncrementalEncoderDecoder'
        assert len(cfg.model.classes_per_step) == inc['step'] + 1
        decode, aux = HEADS[model]
        assert cfg.model.decode_head.type == decode
        found_aux = cfg.model.get('auxiliary_head') or []
        found_aux = found_aux if isinstance(found_aux, list) else [found_aux]
        assert [h.type for h in found_aux] == aux
        for head in [cfg.model.decode_head, *found_aux]:
            assert head.norm_cfg.type == 'BN' and head.num_classes == sum(
                cfg.model.classes_per_step)
        assert cfg.model.data_preprocessor.size_divisor == 32
        hooks = [h.type for h in cfg.custom_hooks]
        assert ('IncrementalStepHook' in hooks) == (inc['step'] > 0)
        named = cfg.model.get('pretrained') or (cfg.model.backbone.get('init_cfg') or {}).get(
            'checkpoint')
        if '_voc_' in f:  # real VOC: ImageNet weights named
            assert named or model == 'bisenetv2'
        elif model.endswith('_r101'):  # toy ResNets: the toy-pretrained file of their depth
            assert named == 'mmincseg-toy://resnet101_v1c'
        elif model == 'segformer_b0':  # the toy MiT-B0, as VOC's is mmseg's ImageNet MiT-B0
            assert named == 'mmincseg-toy://mit_b0'
        else:  # BiSeNetV2: from scratch, as mmseg trains it
            assert not named


@pytest.fixture(scope='module')
def step0_runs(tmp_path_factory, toy_voc):
    """One MiB step 0 (1 epoch) per model, trained on first use."""
    runs = {}

    def get(model):
        if model not in runs:
            work = str(tmp_path_factory.mktemp(f'mib_{model}'))
            train_step(CONFIG.format(method='mib', model=model), work_dir=work,
                       data_root=toy_voc, cfg_options=options(model))
            runs[model] = work
        return runs[model]

    return get


@pytest.mark.slow
@pytest.mark.parametrize('model', MODEL_NAMES)
def test_mib_step_through_the_hook(model, step0_runs, toy_voc, prepare_runner):
    work = step0_runs(model)
    config = CONFIG.format(method='mib', model=model)
    runner = prepare_runner(RUNNERS.build(load_step_config(
        config, work_dir=work, data_root=toy_voc, cfg_options=options(model, **STEP1))))
    student, teacher = runner.model, runner.model.teacher
    assert teacher is not None and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    classifiers = incremental_classifiers(student)
    assert len(classifiers) == 1 + len(HEADS[model][1])
    opt_params = {id(p) for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']}
    for new, old in zip(classifiers, incremental_classifiers(teacher)):
        assert new.classes_per_step == [16, 5] and old.classes_per_step == [16]
        torch.testing.assert_close(new.classifiers[0].weight, old.classifiers[0].weight)
        assert id(new.classifiers[1].weight) in opt_params
    assert_novel_init_keeps_old_probabilities(student, teacher)

    result = train_step(config, work_dir=work, data_root=toy_voc,
                        cfg_options=options(model, **STEP1))
    assert 'mIoU_novel' in result['metrics']
    state = CheckpointLoader.load_checkpoint(find_last_checkpoint(osp.join(work, 'step1')))
    plain = MODELS.build(
        load_step_config(config, work_dir=work, cfg_options=options(model, **STEP1)).model)
    plain.load_state_dict(state['state_dict'], strict=True)


def plain_mmseg_checkpoint(model: str, path: str, num_classes: int = 16) -> dict:
    """Save a non-incremental mmseg EncoderDecoder (default: the step-0 classes), as mmseg would."""
    cfg = Config.fromfile(CONFIG.format(method='mib', model=model))
    cfg.merge_from_dict(options(model))
    model_cfg = cfg.model
    model_cfg.type = 'EncoderDecoder'
    aux = model_cfg.get('auxiliary_head') or []
    for head in [model_cfg.decode_head, *(aux if isinstance(aux, list) else [aux])]:
        head.num_classes = num_classes
    plain = MODELS.build(model_cfg)
    plain.init_weights()
    state = plain.state_dict()
    assert 'decode_head.conv_seg.weight' in state
    torch.save({'state_dict': state, 'meta': {}}, path)
    return state


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_plain_mmseg_checkpoint_is_the_teacher(model, toy_voc, tmp_path, prepare_runner):
    ckpt = str(tmp_path / 'plain_mmseg.pth')
    state = plain_mmseg_checkpoint(model, ckpt)
    cfg = load_step_config(CONFIG.format(method='mib', model=model),
                           work_dir=str(tmp_path / 'run'), data_root=toy_voc,
                           cfg_options=options(model, **STEP1,
                                               **{'incremental.prev_checkpoint': ckpt}))
    runner = prepare_runner(RUNNERS.build(cfg))
    teacher = runner.model.teacher
    torch.testing.assert_close(teacher.decode_head.conv_seg.classifiers[0].weight,
                               state['decode_head.conv_seg.weight'])
    torch.testing.assert_close(runner.model.decode_head.conv_seg.classifiers[0].weight,
                               state['decode_head.conv_seg.weight'])
    assert_novel_init_keeps_old_probabilities(runner.model, teacher)


def test_plain_mmseg_checkpoint_of_other_classes_is_a_clear_error(toy_voc, tmp_path,
                                                                 prepare_runner):
    ckpt = str(tmp_path / 'plain_mmseg_21.pth')
    plain_mmseg_checkpoint('segformer_b0', ckpt, num_classes=21)
    cfg = load_step_config(CONFIG.format(method='mib', model='segformer_b0'),
                           work_dir=str(tmp_path / 'run'), data_root=toy_voc,
                           cfg_options=options('segformer_b0', **STEP1,
                                               **{'incremental.prev_checkpoint': ckpt}))
    with pytest.raises(ValueError, match=r'has 21 classes, the model expects 16 at step 0'):
        prepare_runner(RUNNERS.build(cfg))


@pytest.mark.slow
def test_step1_trains_from_a_plain_mmseg_checkpoint(toy_voc, tmp_path):
    model = 'segformer_b0'
    ckpt = str(tmp_path / 'plain_mmseg.pth')
    plain_mmseg_checkpoint(model, ckpt)
    result = train_step(CONFIG.format(method='mib', model=model),
                        work_dir=str(tmp_path / 'run'), data_root=toy_voc,
                        cfg_options=options(model, **STEP1,
                                            **{'incremental.prev_checkpoint': ckpt}))
    assert result['step'] == 1 and 'mIoU_novel' in result['metrics']


def write_config(tmp_path, text: str) -> str:
    base = CONFIG.format(method='mib', model='bisenetv2')
    path = tmp_path / 'bad_head.py'
    path.write_text(f'_base_ = [{base!r}]\n{text}')
    return str(path)


def test_cascade_head_is_refused_when_the_config_is_resolved(tmp_path):
    ocr = ("model = dict(type='CascadeEncoderDecoder', num_stages=2, decode_head=["
           "dict(type='FCNHead', in_channels=128, channels=16, num_classes=21), "
           "dict(type='OCRHead', in_channels=128, channels=16, ocr_channels=8, num_classes=21)])")
    with pytest.raises(ValueError, match=r'model\.decode_head\[1\] cannot learn classes '
                       r'incrementally: OCRHead is a cascade head.*supported: a BaseDecodeHead'):
        load_step_config(write_config(tmp_path, ocr))


def test_binary_head_is_refused_when_the_config_is_resolved(tmp_path):
    stdc = ("model = dict(auxiliary_head=dict(_delete_=True, type='STDCHead', in_channels=16, "
            "channels=16, num_convs=1, num_classes=2, in_index=1, concat_input=False, "
            "loss_decode=[dict(type='CrossEntropyLoss', loss_name='loss_ce', use_sigmoid=True),"
            " dict(type='DiceLoss', loss_name='loss_dice')]))")
    with pytest.raises(ValueError, match=r'model\.auxiliary_head cannot learn classes '
                       r'incrementally: STDCHead is a binary.*Supported: a BaseDecodeHead'):
        load_step_config(write_config(tmp_path, stdc))


def test_cascade_head_is_refused_when_the_model_is_built():
    cfg = dict(type='IncrementalEncoderDecoder', classes_per_step=[16],
               backbone=dict(type='ResNetV1c', depth=18, norm_cfg=dict(type='BN')),
               decode_head=dict(type='OCRHead', in_channels=512, channels=16, ocr_channels=8,
                                num_classes=16, norm_cfg=dict(type='BN')))
    with pytest.raises(TypeError, match='OCRHead is a cascade head.*supported'):
        MODELS.build(cfg)
