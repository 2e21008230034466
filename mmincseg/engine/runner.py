"""Runner that resolves the ``incremental`` block before MMEngine builds anything."""
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from ..apis.config import resolve_incremental_config


@RUNNERS.register_module()
class IncrementalRunner(Runner):
    """MMEngine ``Runner`` for one incremental step (config key ``runner_type``).

    ``from_cfg`` derives model, datasets, metric, hook, lr and work_dir from the config's
    ``incremental`` block, so mmseg's own ``tools/train.py`` (with
    ``custom_imports=dict(imports=['mmincseg'])``) trains a step as well as ours.
    """

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'Runner':
        """Resolve ``cfg.incremental`` and build the runner."""
        return super().from_cfg(resolve_incremental_config(cfg))
