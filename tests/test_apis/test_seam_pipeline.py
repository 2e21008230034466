"""Weak supervision: SEAM config resolution, pseudo-labels, their errors, and the chained run."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from PIL import Image

from mmincseg.apis import load_step_config, plan_step, run_incremental
from mmincseg.apis.seam import (label_step_images, load_seam_config, make_pseudo_labels,
                                sweep_bg_alpha, visualize_cams)
from mmincseg.tasks import IGNORE_INDEX
from loader_options import NO_WORKERS

SEAM_CONFIG = 'configs/seam/seam_r18_toyvoc_15-5.py'
WEAK_CONFIG = 'configs/mib_seam/bisenet_r18_toyvoc_15-5_step0.py'
STEP1 = {'incremental.step': 1}
# A tiny, fast SEAMNet: narrow ResNet-18 (so no toy-pretrained R18 file fits it: random init),
# single-scale inference.
TINY_SEAM = {'model.backbone.base_channels': 16, 'model.backbone.stem_channels': 16,
             'model.backbone.init_cfg': None,
             'model.test_cfg.scales': (1.0, ), 'model.test_cfg.flip': False}


def _save_seam(path, toy_voc, with_class_ids=True, **options):
    cfg = load_seam_config(SEAM_CONFIG, toy_voc, dict(TINY_SEAM, **options))
    torch.manual_seed(0)
    state = MODELS.build(cfg.model).state_dict()
    if not with_class_ids:
        del state['_extra_state']  # a checkpoint that does not record its class ids
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path


@pytest.fixture(scope='module')
def seam_checkpoint(tmp_path_factory, toy_voc):
    return _save_seam(str(tmp_path_factory.mktemp('seam') / 'seam.pth'), toy_voc)


def _make(toy_voc, checkpoint, out_dir, **kwargs):
    return make_pseudo_labels(SEAM_CONFIG, checkpoint, str(out_dir), data_root=toy_voc,
                              cfg_options=dict(TINY_SEAM), progress=False, device='cpu',
                              **kwargs)


# ------------------------------------------------------------------------------ configs
def test_seam_config_resolution(tmp_path):
    cfg = load_step_config('configs/seam/seam_r18_toyvoc_15-1.py', work_dir=str(tmp_path),
                           cfg_options={'incremental.step': 3})
    assert cfg.model.type == 'SEAMNet' and cfg.model.class_ids == [0, 18]
    assert cfg.work_dir == osp.join(str(tmp_path), 'step3', 'seam')
    assert [h['type'] for h in cfg.custom_hooks] == ['StepResultHook', 'SyncBuffersHook']
    assert cfg.train_dataloader.dataset.step == 3
    assert not any(t['type'] == 'LoadAnnotations' for t in cfg.train_dataloader.dataset.pipeline)
    pack = cfg.train_dataloader.dataset.pipeline[-1]
    assert pack['type'] == 'PackSegInputs' and 'img_labels' in pack['meta_keys']
    assert cfg.val_dataloader.dataset.subset == 'train'
    assert cfg.val_evaluator.type == 'IncrementalIoUMetric' and cfg.val_evaluator.step == 3
    joint = load_step_config('configs/seam/seam_r50_voc_20-0.py', work_dir=str(tmp_path))
    assert joint.model.class_ids == list(range(21))
    assert joint.optim_wrapper.paramwise_cfg.custom_keys['pcm']['lr_mult'] == 10


def test_weak_config_names_one_seam_config_or_one_per_step(tmp_path):
    """The shipped weak configs name one SEAM config for all steps (the hook pins its split and
    step); a ``{step}`` template naming one file per step keeps working."""
    from mmincseg.apis.seam import seam_config_of
    config = 'configs/mib_seam/bisenet_r18_toyvoc_15-1_step0.py'
    for step in (1, 4):
        seam_config, options = seam_config_of(config, Config.fromfile(config), step)
        assert seam_config == osp.abspath('configs/seam/seam_r18_toyvoc_15-1.py')
        assert options == {'incremental.task': '15-1', 'incremental.step': step,
                           'incremental.setting': 'overlap'}
    for step in (1, 2):
        (tmp_path / f'seam_step{step}.py').write_text(
            "_base_ = ['{}']\n".format(osp.abspath('configs/seam/seam_r18_toyvoc_15-1.py')))
    weak = tmp_path / 'weak.py'
    weak.write_text("_base_ = ['{}']\nincremental = dict(seam=dict(config='{}'))\n".format(
        osp.abspath(config), tmp_path / 'seam_step{step}.py'))
    seam_config, options = seam_config_of(str(weak), Config.fromfile(str(weak)), 2)
    assert seam_config == str(tmp_path / 'seam_step2.py') and options['incremental.step'] == 2


def test_weak_config_inserts_pseudo_labels_after_annotations(tmp_path):
    cfg = load_step_config(WEAK_CONFIG, work_dir=str(tmp_path), cfg_options=STEP1)
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert types[types.index('LoadAnnotations') + 1] == 'LoadPseudoLabel'
    loader = cfg.train_dataloader.dataset.pipeline[types.index('LoadPseudoLabel')]
    assert loader['classes'] == [16, 17, 18, 19, 20]
    assert loader['pseudo_label_dir'] == osp.join(str(tmp_path), 'step1', 'pseudo_labels')
    assert 'LoadPseudoLabel' not in str(cfg.val_dataloader.dataset.pipeline)
    # MiB-S lets its teacher veto pseudo-labels on old objects; FT-S has no such step
    assert cfg.model.old_class_veto is True
    ft = load_step_config('configs/ft_seam/bisenet_r18_toyvoc_15-5_step0.py',
                          work_dir=str(tmp_path), cfg_options=STEP1)
    assert not ft.model.get('old_class_veto', False)
    off = load_step_config(WEAK_CONFIG, work_dir=str(tmp_path),
                           cfg_options=dict(STEP1, **{'model.old_class_veto': False}))
    assert off.model.old_class_veto is False  # a config's choice is kept
    step0 = load_step_config(WEAK_CONFIG, work_dir=str(tmp_path))
    assert 'LoadPseudoLabel' not in str(step0.train_dataloader.dataset.pipeline)
    joint = load_step_config('configs/joint_seam/bisenet_r18_toyvoc_15-5.py',
                             work_dir=str(tmp_path))
    loader = [t for t in joint.train_dataloader.dataset.pipeline
              if t['type'] == 'LoadPseudoLabel'][0]
    assert loader['classes'] == list(range(21))
    assert plan_step(WEAK_CONFIG, str(tmp_path), step=1)[0].needs_pseudo_labels
    assert not plan_step(WEAK_CONFIG, str(tmp_path), step=0)[0].needs_pseudo_labels
    assert not plan_step('configs/mib/bisenet_r18_toyvoc_15-5_step0.py', str(tmp_path),
                         step=1)[0].needs_pseudo_labels


NEG_CONFIG = 'configs/mib_seam_neg/bisenet_r18_toyvoc_15-1_step0.py'


def test_negatives_load_old_model_labels_into_the_seam_training(tmp_path):
    """``incremental.seam.negatives``: the plan names the old-model label folder, the SEAM trains
    with the negative loss and loads those maps right after the image (so crops move them)."""
    run = str(tmp_path)
    plan, _ = plan_step(NEG_CONFIG, run, step=2)
    assert plan.seam_negatives == dict(threshold=0.9, weight=1.0,
                                       label_dir=osp.join(run, 'step2', 'old_model_labels'))
    assert 'negatives' in plan.describe()
    seam_plan, seam_cfg = plan_step(plan.seam_config, run, cfg_options=plan.seam_cfg_options)
    assert seam_cfg.model.loss_negative_weight == 1.0 and seam_cfg.model.class_ids == [0, 17]
    types = [t['type'] for t in seam_cfg.train_dataloader.dataset.pipeline]
    assert types[types.index('LoadImageFromFile') + 1] == 'LoadPseudoLabel'
    loader = seam_cfg.train_dataloader.dataset.pipeline[types.index('LoadPseudoLabel')]
    assert loader['pseudo_label_dir'] == plan.seam_negatives['label_dir']
    assert 'LoadPseudoLabel' not in str(seam_cfg.val_dataloader.dataset.pipeline)
    # without negatives nothing changes
    plain = plan_step('configs/mib_seam/bisenet_r18_toyvoc_15-1_step0.py', run, step=2)[0]
    assert plain.seam_negatives is None and 'model.loss_negative_weight' not in \
        plain.seam_cfg_options
    for options, match in [({'incremental.seam.negatives.thresh': 0.5}, 'unknown'),
                           ({'incremental.seam.negatives.threshold': 0.0}, 'threshold'),
                           ({'incremental.seam.negatives': 0.9}, 'must be a dict')]:
        with pytest.raises(ValueError, match=match):
            plan_step(NEG_CONFIG, run, cfg_options=options, step=1)
    with pytest.raises(ValueError, match='previous step'):
        plan_step('configs/joint_seam/bisenet_r18_toyvoc_15-5.py', run,
                  cfg_options={'incremental.seam.negatives': {}})


# -------------------------------------------------------------------------- pseudo-labels
def test_make_pseudo_labels_writes_skips_forces_and_evaluates(toy_voc, seam_checkpoint, tmp_path):
    out_dir = tmp_path / 'step1' / 'pseudo_labels'
    result = _make(toy_voc, seam_checkpoint, out_dir)
    n = result['num_images']
    assert n > 0 and result['written'] == n and result['skipped'] == 0
    files = sorted(os.listdir(out_dir))
    assert len(files) == n and all(f.endswith('.png') for f in files)  # no temp files left
    for name in files:
        with Image.open(out_dir / name) as img:
            assert img.mode == 'P'
            label = np.asarray(img)
        with Image.open(osp.join(toy_voc, 'JPEGImages', name[:-4] + '.jpg')) as img:
            assert label.shape == img.size[::-1]
        assert set(np.unique(label).tolist()) <= {0, 16, 17, 18, 19, 20, IGNORE_INDEX}

    stamps = {f: os.stat(out_dir / f).st_mtime_ns for f in files}
    again = _make(toy_voc, seam_checkpoint, out_dir)
    assert again['written'] == 0 and again['skipped'] == n
    assert stamps == {f: os.stat(out_dir / f).st_mtime_ns for f in files}

    forced = _make(toy_voc, seam_checkpoint, out_dir, force=True, evaluate=True)
    assert forced['written'] == n
    assert {'mIoU', 'aAcc', 'per_class', 'metrics_file'} <= set(forced)
    assert set(forced['per_class']) == {'background', 'pottedplant', 'sheep', 'sofa', 'train',
                                        'tvmonitor'}
    assert 0 <= forced['mIoU'] <= 100
    written = [np.array(Image.open(out_dir / f)) for f in files]
    expected_ignored = sum((a == IGNORE_INDEX).sum() for a in written) / sum(a.size for a in written)
    assert forced['ignored_fraction'] == pytest.approx(expected_ignored, abs=1e-4)
    assert forced['metrics_file'] == osp.join(str(tmp_path), 'step1', 'pseudo_label_metrics.json')
    with open(forced['metrics_file']) as f:
        saved = json.load(f)
    assert saved['mIoU'] == forced['mIoU'] and saved['classes'] == [0, 16, 17, 18, 19, 20]
    # evaluating kept files works without re-running the model
    assert _make(toy_voc, seam_checkpoint, out_dir, evaluate=True)['mIoU'] == forced['mIoU']


def test_bg_alpha_sweep_scores_each_alpha_as_the_pseudo_label_files(toy_voc, seam_checkpoint,
                                                                    tmp_path):
    """One CAM pass labels the images with every alpha; the record of the config's alpha (0.26)
    is what make_pseudo_labels measures on the same images."""
    made = _make(toy_voc, seam_checkpoint, tmp_path / 'step1' / 'pl', evaluate=True)
    sweep = sweep_bg_alpha(SEAM_CONFIG, seam_checkpoint, [0.5, 0.26, 0.05],
                           loader='train_dataloader', data_root=toy_voc,
                           cfg_options=dict(TINY_SEAM), progress=False, device='cpu')
    assert sweep['num_images'] == made['num_images']
    assert sweep['images'].endswith('Segmentation/train_aug.txt')  # the training images
    assert [r['bg_alpha'] for r in sweep['alphas']] == [0.5, 0.26, 0.05]
    at_default = sweep['alphas'][1]
    for key in ('mIoU', 'aAcc', 'per_class', 'ignored_fraction'):
        assert at_default[key] == made[key], key
    by_miou = max(sweep['alphas'], key=lambda r: r['mIoU'])
    assert sweep['best'] == by_miou['bg_alpha']
    # a higher background score leaves less foreground: background IoU moves, so do the rest
    assert len({r['mIoU'] for r in sweep['alphas']}) > 1
    # the default list is the config's validation set (VOC train's masks, SEAM's protocol)
    assert sweep_bg_alpha(SEAM_CONFIG, seam_checkpoint, [0.26], data_root=toy_voc,
                          cfg_options=dict(TINY_SEAM), progress=False,
                          device='cpu')['images'].endswith('Segmentation/train.txt')
    with pytest.raises(ValueError, match=r'alphas must be background scores in \(0, 1\]'):
        sweep_bg_alpha(SEAM_CONFIG, seam_checkpoint, [0.0], data_root=toy_voc)
    with pytest.raises(ValueError, match=r'below the config.s test_cfg.ignore_below=0.2'):
        sweep_bg_alpha(SEAM_CONFIG, seam_checkpoint, [0.1, 0.3], data_root=toy_voc,
                       cfg_options=dict(TINY_SEAM, **{'model.test_cfg.ignore_below': 0.2}),
                       device='cpu')


def test_bg_alpha_sweep_cli(toy_voc, seam_checkpoint, tmp_path, repo_root):
    out = tmp_path / 'sweep.json'
    cmd = [sys.executable, osp.join(repo_root, 'tools', 'seam_alpha_sweep.py'), SEAM_CONFIG,
           seam_checkpoint, '--alphas', '0.2', '0.3', '--ann-file',
           'ImageSets/Segmentation/val.txt', '--out', str(out), '--data-root', toy_voc,
           '--device', 'cpu', '--cfg-options', 'model.backbone.base_channels=16',
           'model.backbone.stem_channels=16', 'model.test_cfg.scales=(1.0,)',
           'model.test_cfg.flip=False']
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'bg_alpha 0.200: mIoU' in proc.stdout and 'best: bg_alpha' in proc.stdout
    with open(out) as f:
        record = json.load(f)
    assert record['images'].endswith('Segmentation/val.txt') and len(record['alphas']) == 2
    again = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert again.returncode != 0 and f'--out {out} exists' in again.stderr
    with open(out) as f:
        assert json.load(f) == record  # nothing overwritten


class _Images:
    """Three fake training images of a step (what :func:`label_step_images` reads)."""

    def __init__(self):
        self.prepared = []

    def __len__(self):
        return 3

    def get_data_info(self, index):
        return dict(img_path=f'/data/JPEGImages/img{index}.jpg')

    def prepare_data(self, index):
        self.prepared.append(index)
        return dict(index=index)


def test_label_step_images_writes_keeps_forces(tmp_path):
    def label_of(data):
        return np.full((4, 5), data['index'] + 1, dtype=np.uint8)

    images = _Images()
    out = str(tmp_path / 'labels')
    got = list(label_step_images(images, out, label_of, progress=False))
    assert [osp.basename(path) for _, path, _, _ in got] == ['img0.png', 'img1.png', 'img2.png']
    assert [written for *_, written in got] == [True] * 3 and images.prepared == [0, 1, 2]
    assert [int(label[0, 0]) for _, _, label, _ in got] == [1, 2, 3]
    with Image.open(osp.join(out, 'img2.png')) as img:
        assert img.mode == 'P' and np.asarray(img).tolist() == [[3] * 5] * 4
    os.remove(osp.join(out, 'img1.png'))
    images.prepared.clear()
    again = list(label_step_images(images, out, label_of, progress=False))
    assert images.prepared == [1]  # only the missing file is re-made; the others are read back
    assert [written for *_, written in again] == [False, True, False]
    assert [int(label[0, 0]) for _, _, label, _ in again] == [1, 2, 3]
    unread = list(label_step_images(images, out, label_of, read_existing=False, progress=False))
    assert [label for _, _, label, _ in unread] == [None] * 3
    images.prepared.clear()
    list(label_step_images(images, out, lambda data: np.zeros((4, 5), np.uint8), force=True,
                           progress=False))
    assert images.prepared == [0, 1, 2]
    with Image.open(osp.join(out, 'img0.png')) as img:
        assert not np.asarray(img).any()


def test_interrupted_write_leaves_no_file(toy_voc, seam_checkpoint, tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b'\x89PNG partial')
        raise OSError('disk full')

    monkeypatch.setattr(Image.Image, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        _make(toy_voc, seam_checkpoint, tmp_path / 'pl')
    assert os.listdir(tmp_path / 'pl') == []


def test_checkpoint_of_other_classes_is_a_clear_error(toy_voc, tmp_path):
    # other classes (15-1 step 1: background + pottedplant), recorded in the checkpoint
    ckpt = _save_seam(str(tmp_path / 'seam_15-1.pth'), toy_voc, **{'incremental.task': '15-1'})
    with pytest.raises(ValueError, match=r'trained for class_ids \[0, 16\]') as e:
        _make(toy_voc, ckpt, tmp_path / 'pl')
    assert ckpt in str(e.value) and 'expects class_ids [0, 16, 17, 18, 19, 20]' in str(e.value)
    # not recorded: the classifier shape tells
    ckpt = _save_seam(str(tmp_path / 'seam_old.pth'), toy_voc, with_class_ids=False,
                      **{'incremental.task': '15-1'})
    with pytest.raises(ValueError, match=r'classifier for 2 classes') as e:
        _make(toy_voc, ckpt, tmp_path / 'pl')
    assert ckpt in str(e.value) and '[0, 16, 17, 18, 19, 20]' in str(e.value)
    # same class count, other classes (15-1 step 2 weights for a 15-1 step 1 SEAM)
    ckpt = _save_seam(str(tmp_path / 'seam_step2.pth'), toy_voc,
                      **{'incremental.task': '15-1', 'incremental.step': 2})
    with pytest.raises(ValueError, match=r'trained for class_ids \[0, 17\]') as e:
        make_pseudo_labels(SEAM_CONFIG, ckpt, str(tmp_path / 'pl'), data_root=toy_voc,
                           cfg_options=dict(TINY_SEAM, **{'incremental.task': '15-1'}),
                           progress=False, device='cpu')
    assert ckpt in str(e.value) and '[0, 16]' in str(e.value)
    # right classes, other backbone width
    ckpt = _save_seam(str(tmp_path / 'seam_wide.pth'), toy_voc,
                      **{'model.backbone.base_channels': 32, 'model.backbone.init_cfg': None})
    with pytest.raises(ValueError, match='does not fit the model') as e:
        _make(toy_voc, ckpt, tmp_path / 'pl')
    assert ckpt in str(e.value)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        _make(toy_voc, str(tmp_path / 'none.pth'), tmp_path / 'pl')
    with pytest.raises(ValueError, match='not a SEAM config'):
        make_pseudo_labels(WEAK_CONFIG, ckpt, str(tmp_path / 'pl'), data_root=toy_voc,
                           cfg_options=STEP1)


def test_make_pseudo_labels_cli(toy_voc, seam_checkpoint, tmp_path, repo_root):
    options = ['model.backbone.base_channels=16', 'model.backbone.stem_channels=16',
               'model.test_cfg.scales=(1.0,)', 'model.test_cfg.flip=False']
    cmd = [sys.executable, osp.join(repo_root, 'tools', 'make_pseudo_labels.py'), SEAM_CONFIG,
           seam_checkpoint, '--out', str(tmp_path / 'pl'), '--eval', '--data-root', toy_voc,
           '--device', 'cpu', '--cfg-options', *options]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.listdir(tmp_path / 'pl') and (tmp_path / 'pseudo_label_metrics.json').is_file()
    proc = subprocess.run(cmd[:3] + [str(tmp_path / 'none.pth')] + cmd[4:], cwd=repo_root,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and 'error: SEAM checkpoint' in proc.stderr


def test_visualize_cams(toy_voc, seam_checkpoint, tmp_path):
    files = visualize_cams(SEAM_CONFIG, seam_checkpoint, str(tmp_path), num_images=2,
                           data_root=toy_voc, cfg_options=dict(TINY_SEAM), device='cpu')
    assert len(files) == 2
    with Image.open(files[0]) as img:
        assert img.size[0] > 3 * img.size[1]  # image | CAM(s) | pseudo-label | true mask
    with pytest.raises(ValueError, match='not training images'):
        visualize_cams(SEAM_CONFIG, seam_checkpoint, str(tmp_path), names=['nope'],
                       data_root=toy_voc, cfg_options=dict(TINY_SEAM), device='cpu')


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_weak_run_end_to_end(toy_voc, tmp_path):
    """SEAM (1 epoch) -> pseudo-labels -> MiB step 1 trained on them, by ``run_incremental``
    alone (no wiring by the caller)."""
    work = str(tmp_path / 'run')
    seam_options = dict(TINY_SEAM, **{'train_cfg.max_epochs': 1})
    options = dict(NO_WORKERS, **{'train_cfg.max_epochs': 1,
                                  'incremental.seam.cfg_options': seam_options})
    config = WEAK_CONFIG
    summary = run_incremental(config, work, data_root=toy_voc, cfg_options=options)
    assert [s['step'] for s in summary['steps']] == [0, 1]
    assert summary['labels'] == 'seam'
    step1 = osp.join(work, 'step1')
    with open(osp.join(step1, 'seam', 'step_result.json')) as f:
        assert json.load(f)['metrics'] == {}  # no SEAM validation: the pseudo-labels are measured
    labels = os.listdir(osp.join(step1, 'pseudo_labels'))
    assert labels and all(f.endswith('.png') for f in labels)
    with open(osp.join(step1, 'pseudo_label_metrics.json')) as f:
        quality = json.load(f)['mIoU']
    assert 0 <= quality <= 100
    # the run summary reports the pseudo-label quality of the weak step only
    assert summary['steps'][1]['pseudo_label_mIoU'] == round(quality, 2)
    assert 'pseudo_label_mIoU' not in summary['steps'][0]
    with open(osp.join(work, 'results.md')) as f:
        assert 'pseudo-label mIoU' in f.read()
    assert not osp.exists(osp.join(work, 'step0', 'seam'))  # step 0 trains on true masks
    dumped = Config.fromfile(osp.join(step1, osp.basename(config)))
    assert 'LoadPseudoLabel' in str(dumped.train_dataloader.dataset.pipeline)


def test_make_pseudo_labels_of_a_weak_step_from_its_plan(toy_voc, seam_checkpoint, tmp_path):
    """``tools/make_pseudo_labels.py WEAK_CONFIG --work-dir RUN``: SEAM folder, checkpoint and
    output folder all come from the step's plan (a finished SEAM is not retrained)."""
    from mmincseg.apis.seam import pseudo_labels_of_step
    from mmincseg.utils.checkpoint import checkpoint_record
    run = str(tmp_path / 'run')
    options = dict(STEP1, **{'incremental.seam.cfg_options': dict(TINY_SEAM)})
    plan, _ = plan_step(WEAK_CONFIG, run, toy_voc, options)
    os.makedirs(plan.seam_dir)
    ckpt = osp.join(plan.seam_dir, 'epoch_1.pth')
    with open(seam_checkpoint, 'rb') as src, open(ckpt, 'wb') as dst:
        dst.write(src.read())
    with open(checkpoint_record(plan.seam_dir), 'w') as f:
        f.write(ckpt)
    with open(osp.join(plan.seam_dir, 'step_result.json'), 'w') as f:
        json.dump({'metrics': {}}, f)  # a finished SEAM: made elsewhere, not retrained here
    got, result = pseudo_labels_of_step(WEAK_CONFIG, run, toy_voc, options)
    assert got.pseudo_label_dir == plan.pseudo_label_dir == osp.join(run, 'step1', 'pseudo_labels')
    assert result['out_dir'] == plan.pseudo_label_dir and result['written'] > 0
    assert sorted(os.listdir(plan.pseudo_label_dir)) and \
        osp.isfile(osp.join(run, 'step1', 'pseudo_label_metrics.json'))
    assert sorted(os.listdir(plan.seam_dir)) == ['epoch_1.pth', 'last_checkpoint',
                                                 'step_result.json']  # not retrained
    with pytest.raises(ValueError, match='trains on true masks'):
        pseudo_labels_of_step(WEAK_CONFIG, run, toy_voc, {'incremental.step': 0})
    with pytest.raises(ValueError, match='is a SEAM config: give its checkpoint'):
        pseudo_labels_of_step(SEAM_CONFIG, run, toy_voc, STEP1)


@pytest.mark.slow
def test_weak_run_with_negatives_end_to_end(toy_voc, tmp_path, repo_root):
    """Step 0 -> the old model labels the step's images -> SEAM with the negative loss ->
    pseudo-labels -> MiB step 1, by ``run_incremental`` alone."""
    work = str(tmp_path / 'run')
    seam_options = dict(TINY_SEAM, **{'train_cfg.max_epochs': 1})
    options = dict(NO_WORKERS, **{'train_cfg.max_epochs': 1,
                                  'incremental.seam.cfg_options': seam_options,
                                  'incremental.seam.negatives.threshold': 0.05})
    summary = run_incremental(WEAK_CONFIG, work, data_root=toy_voc, cfg_options=options,
                              steps=[0, 1])
    assert [s['step'] for s in summary['steps']] == [0, 1]
    step1 = osp.join(work, 'step1')
    names = sorted(os.listdir(osp.join(step1, 'old_model_labels')))
    assert names and names == sorted(os.listdir(osp.join(step1, 'pseudo_labels')))
    values = set()
    for name in names:
        values |= set(np.unique(np.asarray(Image.open(osp.join(step1, 'old_model_labels', name)))))
    assert values <= set(range(1, 16)) | {IGNORE_INDEX}  # old classes or unknown, never 0
    with open(osp.join(step1, 'old_model_labels_metrics.json')) as f:
        metrics = json.load(f)
    assert metrics['num_images'] == len(names) and 0 <= metrics['coverage'] <= 1
    dumped = Config.fromfile(osp.join(step1, 'seam', osp.basename('seam_r18_toyvoc_15-5.py')))
    assert dumped.model.loss_negative_weight == 1.0

    # A fresh process reusing the finished step 0 (``--step0``): no runner has set the default
    # scope there before the old model labels the step's images.
    reuse = str(tmp_path / 'reuse')
    script = ('import json, sys; from mmincseg.apis import run_incremental; '
              'run_incremental(**json.loads(sys.argv[1]))')
    args = dict(config=WEAK_CONFIG, work_dir=reuse, data_root=toy_voc, cfg_options=options,
                step0=osp.join(work, 'step0'))
    done = subprocess.run([sys.executable, '-c', script, json.dumps(args)], cwd=repo_root,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(os.listdir(osp.join(reuse, 'step1', 'old_model_labels'))) == names
