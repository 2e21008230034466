"""Runner that resolves the ``incremental`` block before MMEngine builds anything."""
from typing import Dict, Optional, Union

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel, is_model_wrapper, revert_sync_batchnorm
from mmengine.runner import Runner
from mmengine.visualization import Visualizer
from mmseg.registry import RUNNERS

from .config import resolve_incremental_config


def finish_distributed() -> None:
    """Destroy the process group, if any, before the process exits.

    Left to interpreter shutdown, gloo's worker threads can be torn down while still joinable
    ("terminate called without an active exception", SIGABRT) after a run has finished.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


@RUNNERS.register_module()
class IncrementalRunner(Runner):
    """MMEngine ``Runner`` for one incremental step (config key ``runner_type``).

    ``from_cfg`` derives model, datasets, metric, hook, lr and work_dir from the config's
    ``incremental`` block, so mmseg's own ``tools/train.py`` (with
    ``custom_imports=dict(imports=['mmincseg'])``) trains a step as well as ours.

    Without CUDA, multi-process runs (``--launcher pytorch``, i.e. ``tools/dist_train.sh``) use
    the gloo backend on CPU: MMEngine 0.10's ``init_dist`` and ``wrap_model`` assume one GPU per
    process (``torch.cuda.set_device``, ``device_ids=[LOCAL_RANK]``), so this runner creates the
    process group and the DDP wrapper itself in that case.
    """

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'Runner':
        """Resolve ``cfg.incremental`` and build the runner."""
        return super().from_cfg(resolve_incremental_config(cfg))

    def build_visualizer(self, visualizer: Optional[Union[Visualizer, Dict]] = None
                         ) -> Visualizer:
        """MMEngine's visualizer, named after this run's log dir.

        mmseg's runtime names it ``'visualizer'``, and MMEngine hands back the instance of a
        name that exists (its ``save_dir`` included): the second runner of a process (step 1
        after step 0 in ``tools/run_incremental.py``, a resumed run, the tests) would write its
        ``config.py``, scalars and images into the first run's ``vis_data``, over its
        ``config.py``. A config's own name is kept as the prefix.
        """
        if isinstance(visualizer, dict):
            visualizer = dict(visualizer)
            visualizer['name'] = f"{visualizer.get('name', 'visualizer')}@{self._log_dir}"
        return super().build_visualizer(visualizer)

    def setup_env(self, env_cfg: dict) -> None:
        """MMEngine's set-up; on a CPU-only machine the process group is created with gloo."""
        if self.distributed and not torch_dist.is_initialized() and \
                not torch.cuda.is_available():
            if self.launcher != 'pytorch':
                raise ValueError(
                    f"--launcher {self.launcher} needs CUDA; on CPU, start the processes with "
                    'torchrun: tools/dist_train.sh CONFIG NUM_PROCS (--launcher pytorch)')
            timeout = (env_cfg.get('dist_cfg') or {}).get('timeout')
            kwargs = {}
            if timeout is not None:
                from datetime import timedelta
                kwargs['timeout'] = timedelta(seconds=timeout)
            torch_dist.init_process_group(backend='gloo', **kwargs)
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg, model):
        """MMEngine's wrapping; on CPU, DDP without ``device_ids`` (gloo) and plain BatchNorm."""
        if not self.distributed or torch.cuda.is_available() or is_model_wrapper(model) or \
                model_wrapper_cfg is not None:
            return super().wrap_model(model_wrapper_cfg, model)
        if self.cfg.get('sync_bn'):
            self.logger.warning('sync_bn is ignored on CPU (SyncBatchNorm needs CUDA); '
                                'BatchNorm statistics stay per process')
        model = revert_sync_batchnorm(model)
        return MMDistributedDataParallel(
            module=model,
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=self.cfg.get('find_unused_parameters', False))
