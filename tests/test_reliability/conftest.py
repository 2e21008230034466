"""Shared fixture of the reliability tests: one trained step 0 used as the teacher."""
import os.path as osp

import pytest
from reliability_utils import NO_WORKERS, STEP_CONFIG, as_dict


@pytest.fixture(scope='session')
def step0_dir(tmp_path_factory, toy_voc):
    """A finished MiB 15-5 step 0 on the toy VOC (1 epoch), shared as a teacher."""
    from mmincseg.apis import train_step
    work = str(tmp_path_factory.mktemp('step0_run'))
    train_step(STEP_CONFIG.format(0), work_dir=work, data_root=toy_voc,
               cfg_options=as_dict(['train_cfg.max_epochs=1', *NO_WORKERS]))
    return osp.join(work, 'step0')
