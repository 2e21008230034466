import ast
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmincseg.datasets.image_labels import IMAGE_LABELS_FILE, read_image_labels
from mmincseg.datasets.toy_voc import (TOY_CLASS_STYLES, TOY_VOC_MARKER, is_toy_voc, make_toy_voc,
                                       render_toy_sample)
from mmincseg.tasks import VOC_CLASSES, voc_palette

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(seed=0, num_train=12, num_val=4, num_test=3, size=64)


def tree_digest(root: str) -> str:
    """Hash of every file's relative path and bytes under ``root``."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for fname in sorted(files):
            path = osp.join(folder, fname)
            digest.update(osp.relpath(path, root).encode() + b'\0')
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def read_list(root: str, name: str) -> list:
    with open(osp.join(root, 'ImageSets', 'Segmentation', f'{name}.txt')) as f:
        return f.read().split()


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy') / 'VOC2012')
    stats = make_toy_voc(root, **SMALL)
    return root, stats


def masks(root: str):
    for name in read_list(root, 'trainval') + read_list(root, 'test'):
        yield name, Image.open(osp.join(root, 'SegmentationClass', f'{name}.png'))


def test_layout(toy):
    root, _ = toy
    train, val, test = (read_list(root, split) for split in ('train', 'val', 'test'))
    assert (len(train), len(val), len(test)) == (12, 4, 3)
    assert len(set(train) | set(val) | set(test)) == 19
    assert read_list(root, 'trainval') == train + val
    assert read_list(root, 'train_aug') == train
    for name in train + val + test:
        assert name.startswith('toy_')
        for path in (f'JPEGImages/{name}.jpg', f'SegmentationClass/{name}.png',
                     f'SegmentationClassAug/{name}.png'):
            assert osp.isfile(osp.join(root, path)), path
    assert osp.isfile(osp.join(root, IMAGE_LABELS_FILE))
    assert is_toy_voc(root)
    with open(osp.join(root, TOY_VOC_MARKER)) as f:
        meta = json.load(f)
    assert meta['complete'] and meta['args'] == SMALL


def test_images_and_masks(toy):
    root, _ = toy
    sizes = set()
    palette = voc_palette()
    for name, mask in masks(root):
        assert mask.mode == 'P' and mask.getpalette() == palette
        values = set(np.unique(np.asarray(mask)).tolist())
        assert values <= set(range(21)) | {255}
        aug = Image.open(osp.join(root, 'SegmentationClassAug', f'{name}.png'))
        assert aug.mode == 'L' and np.array_equal(np.asarray(aug), np.asarray(mask))
        image = Image.open(osp.join(root, 'JPEGImages', f'{name}.jpg'))
        assert image.format == 'JPEG' and image.mode == 'RGB'
        assert image.size == mask.size
        sizes.add(image.size)
    assert len(sizes) > 1
    assert any(w != h for w, h in sizes)
    assert all(48 <= s <= 80 for size in sizes for s in size)


def test_void_band(toy):
    root, _ = toy
    for _, mask in masks(root):
        label = np.asarray(mask)
        assert (label == 255).any() and (label > 0).any() and (label < 255).any()
        # two 4-neighbours with different labels: one of them is void (the band separates all)
        for a, b in ((label[1:], label[:-1]), (label[:, 1:], label[:, :-1])):
            differ = a != b
            assert ((a[differ] == 255) | (b[differ] == 255)).all()
        # the band is thin: most void pixels touch a non-void pixel within 1 px
        void = label == 255
        padded = np.pad(~void, 1)
        near = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
        assert near[void].mean() > 0.9


def test_image_labels_match_masks(toy):
    root, _ = toy
    labels = read_image_labels(osp.join(root, IMAGE_LABELS_FILE))
    assert sorted(labels) == sorted(read_list(root, 'trainval') + read_list(root, 'test'))
    for name, mask in masks(root):
        present = [c for c in np.unique(np.asarray(mask)).tolist() if 1 <= c <= 20]
        assert labels[name] == present


def test_stats(toy):
    root, stats = toy
    with open(osp.join(root, TOY_VOC_MARKER)) as f:
        assert json.load(f)['stats'] == stats
    assert stats['train']['num_images'] == 12 and stats['val']['num_images'] == 4
    labels = read_image_labels(osp.join(root, IMAGE_LABELS_FILE))
    for split in ('train', 'val'):
        split_stats = stats[split]
        assert 1 <= split_stats['mean_objects_per_image'] <= 4
        assert 0 < split_stats['void_fraction'] < 0.25
        counts = {VOC_CLASSES[c]: 0 for c in range(1, 21)}
        for name in read_list(root, split):
            for c in labels[name]:
                counts[VOC_CLASSES[c]] += 1
        assert split_stats['class_image_counts'] == counts
        total = (split_stats['void_fraction'] + split_stats['background_fraction'] +
                 sum(split_stats['class_pixel_fractions'].values()))
        assert total == pytest.approx(1, abs=1e-4)


def test_same_seed_is_byte_identical(toy, tmp_path):
    root, _ = toy
    again = str(tmp_path / 'again')
    make_toy_voc(again, **SMALL)
    assert tree_digest(again) == tree_digest(root)


def test_other_seed_differs(toy, tmp_path):
    root, _ = toy
    other = str(tmp_path / 'other')
    make_toy_voc(other, **dict(SMALL, seed=1))
    names = read_list(root, 'trainval')
    differ = 0
    for name in names:
        with open(osp.join(root, 'SegmentationClass', f'{name}.png'), 'rb') as a, \
                open(osp.join(other, 'SegmentationClass', f'{name}.png'), 'rb') as b:
            differ += a.read() != b.read()
    assert differ == len(names)


def test_every_class_is_drawn():
    assert sorted(TOY_CLASS_STYLES) == sorted(VOC_CLASSES[1:])
    assert len(set(TOY_CLASS_STYLES.values())) == 20
    for cls in range(1, 21):
        image, label, drawn = render_toy_sample(np.random.default_rng(cls), 64, [cls])
        assert drawn == 1 and image.shape[:2] == label.shape
        assert (label == cls).sum() > 20


def test_regenerate_in_place_removes_stale_files(tmp_path):
    root = str(tmp_path / 'toy')
    make_toy_voc(root, seed=0, num_train=4, num_val=2, num_test=0, size=48)
    make_toy_voc(root, seed=0, num_train=2, num_val=1, num_test=0, size=48)
    assert len(os.listdir(osp.join(root, 'JPEGImages'))) == 3
    assert len(os.listdir(osp.join(root, 'SegmentationClass'))) == 3


def test_refuses_foreign_folder(tmp_path):
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'precious.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='force'):
        make_toy_voc(str(foreign), num_train=1, num_val=0, num_test=0, size=48)
    assert os.listdir(foreign) == ['precious.txt']
    make_toy_voc(str(foreign), num_train=1, num_val=0, num_test=0, size=48, force=True)
    assert (foreign / 'precious.txt').read_text() == 'keep me'


@pytest.mark.parametrize('kwargs', [dict(seed=-1), dict(num_train=0), dict(size=8), dict(num_test=-1)])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_toy_voc(str(tmp_path / 'x'), **kwargs)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', 'make_toy_voc.py'), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_cli(tmp_path):
    out = str(tmp_path / 'cli')
    args = ('--out', out, '--seed', '3', '--num-train', '3', '--num-val', '1', '--num-test', '2',
            '--size', '48')
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    stats = json.loads(first.stdout)
    assert stats['train']['num_images'] == 3 and stats['test']['num_images'] == 2
    digest = tree_digest(out)
    second = run_cli(*args)  # regenerating a toy dataset in place is allowed
    assert second.returncode == 0, second.stderr
    assert tree_digest(out) == digest

    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'data.txt').write_text('not ours')
    refused = run_cli('--out', str(foreign), '--num-train', '1', '--num-val', '0', '--num-test', '0', '--size', '48')
    assert refused.returncode != 0 and '--force' in refused.stderr
    assert os.listdir(foreign) == ['data.txt']
    forced = run_cli('--out', str(foreign), '--num-train', '1', '--num-val', '0', '--num-test', '0', '--size', '48',
                     '--force')
    assert forced.returncode == 0, forced.stderr
    assert (foreign / 'data.txt').read_text() == 'not ours'


def test_module_does_not_import_mmseg():
    path = osp.join(REPO, 'mmincseg', 'datasets', 'toy_voc.py')
    with open(path) as f:
        tree = ast.parse(f.read())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or '').split('.')[0])
    assert not modules & {'mmseg', 'mmcv', 'mmengine', 'torch'}


def test_held_out_test_split_leaves_train_and_val_unchanged(tmp_path):
    with_test, without = str(tmp_path / 'a'), str(tmp_path / 'b')
    make_toy_voc(with_test, seed=0, num_train=6, num_val=3, num_test=4, size=48)
    make_toy_voc(without, seed=0, num_train=6, num_val=3, num_test=0, size=48)
    lists = {}
    for root in (with_test, without):
        for split in ('train', 'val', 'test'):
            with open(osp.join(root, 'ImageSets/Segmentation', f'{split}.txt')) as f:
                lists[root, split] = f.read().split()
    assert len(lists[with_test, 'test']) == 4 and lists[without, 'test'] == []
    assert not set(lists[with_test, 'test']) & set(lists[with_test, 'train']
                                                   + lists[with_test, 'val'])
    for split in ('train', 'val'):
        assert lists[with_test, split] == lists[without, split]
        for name in lists[with_test, split]:
            for sub, ext in (('JPEGImages', 'jpg'), ('SegmentationClassAug', 'png')):
                a = open(osp.join(with_test, sub, f'{name}.{ext}'), 'rb').read()
                assert a == open(osp.join(without, sub, f'{name}.{ext}'), 'rb').read()
    with open(osp.join(with_test, 'toy_voc.json')) as f:
        assert json.load(f)['stats']['test']['num_images'] == 4
