"""Every shipped config resolves, at each of its steps, to the config it resolved to before.

``tests/data/resolved_configs.json`` maps ``<config>::step<t>`` to the sha256 of the resolved
config (``load_step_config(config, work_dir='work_dirs/x', cfg_options={'incremental.step': t})``,
dumped as sorted JSON). The hashes were recorded before the two-line step leaves were removed
(issue 15): each ``<config>_step0.py::step<t>`` hash came from the old ``<config>_step<t>.py``
leaf, each SEAM config's from its old ``_step<t>`` file, so ``--cfg-options incremental.step=t``
is checked to train exactly what the deleted leaf trained. Only config loading and resolution
run here, no model is built.

A weak config's ``incremental.seam.config`` enters the dump as the hash of the SEAM config the
weak step hook resolves for that step (its file name is free to change, what it trains is not);
steps that train no SEAM drop it. A change that is meant to change a resolved config updates the
file with ``python tests/test_configs/test_resolved_configs.py --update`` (and says why).
"""
import argparse
import functools
import glob
import hashlib
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple
from unittest import mock

import pytest
from mmengine.config import Config
from mmengine.config.config import _get_external_cfg_path as _EXTERNAL_CFG_PATH

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HASH_FILE = osp.join(REPO, 'tests', 'data', 'resolved_configs.json')
WORK_DIR = 'work_dirs/x'
# Checked on every `make test-fast`: one config per folder and kind of file (the toy and VOC
# families of each method, a kept step leaf, a SEAM config per split, joint, weak ones).
QUICK = {
    'configs/ft/bisenet_r18_toyvoc_15-1_step0.py',
    'configs/lwf/bisenet_r101_voc_15-5_step0.py',
    'configs/ilt/bisenet_r18_voc_15-1_step0.py',
    'configs/mib/bisenet_r18_toyvoc_15-5_step0.py',
    'configs/mib/bisenet_r101_voc_15-1_step0.py',
    'configs/mib/bisenet_r101_voc_15-5_step1.py',
    'configs/mib/segformer_b0_voc_15-1_step0.py',
    'configs/joint/bisenet_r18_toyvoc_15-5.py',
    'configs/mib_seam/bisenet_r18_toyvoc_15-1_step0.py',
    'configs/ft_seam/bisenet_r101_voc_15-5_step0.py',
    'configs/joint_seam/bisenet_r18_toyvoc_20-0.py',
    'configs/seam/seam_r18_toyvoc_15-1.py',
    'configs/seam/seam_r50_voc_15-5.py',
}


@functools.lru_cache(maxsize=None)
def _external_cfg_path(package_path: str, cfg_file: str) -> Tuple[bool, str]:
    try:
        return True, _EXTERNAL_CFG_PATH(package_path, cfg_file)
    except ValueError as e:  # the base-config fallback of Config._get_cfg_path
        return False, str(e)


def _cached_external_cfg_path(package_path: str, cfg_file: str) -> str:
    """mmengine's lookup of an ``mmseg::`` base, which parses all of mmseg's model-index
    metafiles on every call (0.3 s a config), remembered: the installed files do not change."""
    found, value = _external_cfg_path(package_path, cfg_file)
    if not found:
        raise ValueError(value)
    return value


def _remembered_mmseg_bases():
    return mock.patch('mmengine.config.config._get_external_cfg_path', _cached_external_cfg_path)


def shipped_configs() -> List[str]:
    """Every config under configs/ except _base_, as paths relative to the repository."""
    paths = glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
    return sorted(osp.relpath(p, REPO) for p in paths
                  if osp.basename(osp.dirname(p)) != '_base_')


def config_steps(config: str) -> List[int]:
    """The steps a config trains: every step of its split, one for joint, steps > 0 for a SEAM
    (step 0 of a ``20-0`` SEAM, which learns all classes at once)."""
    from mmincseg import tasks
    from mmincseg.apis.config import check_incremental, dataset_num_classes
    with _remembered_mmseg_bases():
        cfg = Config.fromfile(osp.join(REPO, config))
    num_classes = dataset_num_classes(cfg)
    inc = check_incremental(cfg.get('incremental'), config, num_classes)
    if inc['method'] == 'joint':
        return [0]
    n = tasks.num_steps(inc['task'], num_classes)
    if cfg.model.get('type') == 'SEAMNet':
        return [0] if n == 1 else list(range(1, n))
    return list(range(n))


def resolved_dump(config: str, step: int, cfg_options: Optional[dict] = None) -> str:
    """The resolved config of ``config`` at ``step`` as sorted JSON (on a machine without CUDA,
    so the dump does not depend on the machine's distributed backend). A weak step's entry also
    hashes the SEAM config its plan trains (``plan.seam_config`` with ``plan.seam_cfg_options``)."""
    from mmincseg.apis import plan_step
    options = dict(cfg_options or {}, **{'incremental.step': step})
    path = config if osp.isabs(config) else osp.join(REPO, config)
    with mock.patch('mmincseg.apis.config._cuda_available', return_value=False), \
            _remembered_mmseg_bases():
        plan, cfg = plan_step(path, WORK_DIR, cfg_options=options)
    dump = cfg.to_dict()
    inc = dump['incremental']
    if isinstance(inc.get('seam'), dict):
        inc['seam'] = dict(inc['seam'])
        inc['seam'].pop('config', None)
        if plan.needs_pseudo_labels:
            seam_options = dict(plan.seam_cfg_options)
            seam_step = seam_options.pop('incremental.step')
            inc['seam']['config_sha256'] = sha256(
                resolved_dump(plan.seam_config, seam_step, seam_options))
    return json.dumps(dump, sort_keys=True, default=str)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def current_hashes(configs: Optional[List[str]] = None) -> Dict[str, str]:
    """``<config>::step<t>`` -> sha256 of the resolved config, for every config and step."""
    return {f'{config}::step{t}': sha256(resolved_dump(config, t))
            for config in (configs or shipped_configs()) for t in config_steps(config)}


def _recorded() -> Dict[str, str]:
    if not osp.isfile(HASH_FILE):  # reported by the coverage test below
        return {}
    with open(HASH_FILE) as f:
        return json.load(f)


def _cases():
    for key in sorted(_recorded()):
        config = key.split('::')[0]
        marks = [] if config in QUICK else [pytest.mark.slow]
        yield pytest.param(key, id=key, marks=marks)


def test_every_config_and_step_has_a_recorded_resolution():
    """Each shipped config at each of its steps has a hash, and each hash a shipped config."""
    expected = {f'{c}::step{t}' for c in shipped_configs() for t in config_steps(c)}
    recorded = set(_recorded())
    assert not expected - recorded, (
        f'configs without a recorded resolution: {sorted(expected - recorded)}; run '
        'python tests/test_configs/test_resolved_configs.py --update')
    assert not recorded - expected, (
        f'recorded resolutions of configs or steps that do not exist: '
        f'{sorted(recorded - expected)}')


def test_quick_subset_is_shipped():
    assert QUICK <= set(shipped_configs())


@pytest.mark.parametrize('key', list(_cases()))
def test_config_resolves_as_recorded(key):
    config, step = key.split('::step')
    assert sha256(resolved_dump(config, int(step))) == _recorded()[key], (
        f'{config} at step {step} resolves differently from the recorded config '
        f'({osp.relpath(HASH_FILE, REPO)}). If the change is intended, run '
        'python tests/test_configs/test_resolved_configs.py --update')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--update', action='store_true',
                        help=f'write the hashes of the current configs to {HASH_FILE}')
    if not parser.parse_args().update:
        parser.error('nothing to do without --update')
    sys.path.insert(0, REPO)
    from mmengine.registry import DefaultScope
    import mmincseg  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmseg'):
        hashes = current_hashes()
    with open(HASH_FILE, 'w') as f:
        json.dump(hashes, f, indent=1, sort_keys=True)
        f.write('\n')
    print(f'{len(hashes)} resolved configs -> {HASH_FILE}')
