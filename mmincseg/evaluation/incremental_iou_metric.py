"""IoU metric of a class-incremental step: mIoU of all seen classes, old / new, base / novel."""
import os.path as osp
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import MMLogger, print_log
from PIL import Image
from prettytable import PrettyTable

from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from ..tasks import NUM_VOC_CLASSES, OrderSpec, class_names, get_split, require_step


def _nanmean_percent(values: np.ndarray) -> float:
    """Mean of the non-NaN values in percent, rounded to 2 decimals; NaN if there are none."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or np.all(np.isnan(values)):
        return float('nan')
    return float(np.round(np.nanmean(values) * 100, 2))


@METRICS.register_module()
class IncrementalIoUMetric(IoUMetric):
    """IoU metric for step ``step`` of the class-incremental split ``task``.

    Accumulation (``process``), prediction PNGs (``output_dir``) and the per-class areas are
    mmseg's :class:`IoUMetric`; this class splits the per-class IoU into the groups of the
    incremental protocol. The evaluated dataset's ``metainfo['classes']`` must be the classes seen
    up to ``step`` (``classes_seen(task, step)``) in channel order; prediction and label values are
    indices into that list, i.e. channels (equal to the class ids in the identity order). Every
    output speaks class ids and names, never channels: ``IoU.<class name>``, and the prediction
    PNGs of ``output_dir`` hold the dataset's own label values (channel k written as the class
    id of channel k), so runs of different class orders compare file by file.

    A dataset whose label 0 is not a class (``metainfo['zero_is_void']``, ADE20K as MiB reads it)
    has no background pixels to evaluate: background is left out of every mean and of the
    per-class IoUs (its predictions still count as errors of the classes they cover).

    ``compute_metrics`` returns, in percent with 2 decimals (NaN classes, i.e. without pixels in
    labels and predictions, are left out of every mean):

    - ``aAcc``: pixel accuracy; ``mIoU``: all seen classes, background included;
    - ``mIoU_old``: background and the classes of steps < ``step`` (at step 0: the step-0 classes);
    - ``mIoU_new``: the classes introduced at ``step`` (``tasks.new_classes``; at step 0 the step-0
      classes without background);
    - ``mIoU_base``: background and the step-0 classes (the paper's "1-15" column);
    - ``mIoU_novel``: the classes of steps > 0 (the paper's "16-20" column; NaN at step 0);
    - ``IoU.<class name>`` for every seen class; plus the other means of :class:`IoUMetric`
      (``mAcc``, and ``mDice``/``mFscore``... when asked for with ``iou_metrics``).

    Args:
        task (str): Name of the split in :mod:`mmincseg.tasks`, e.g. '15-5'. Required (the
            resolver sets it from the config's ``incremental`` block).
        step (int): Step being evaluated (0-based). Required, as ``task``.
        num_classes (int, optional): Label values of the dataset, background included; None:
            VOC's 21.
        order (optional): The class order (``incremental.order``); None: identity.
        **iou_metric_kwargs: Arguments of :class:`mmseg.evaluation.IoUMetric` (``ignore_index``,
            ``iou_metrics``, ``nan_to_num``, ``output_dir``, ``format_only``, ``prefix``...).
    """

    def __init__(self, task: Optional[str] = None, step: Optional[int] = None,
                 num_classes: Optional[int] = None, order: OrderSpec = None,
                 **iou_metric_kwargs) -> None:
        require_step('IncrementalIoUMetric', task, step)
        self.num_classes = num_classes or NUM_VOC_CLASSES
        split = get_split(task, self.num_classes, order)
        split.check_step(step)
        self.task = task
        self.step = step
        self.order = order
        seen = split.classes_seen(step)
        position = {class_id: index for index, class_id in enumerate(seen)}
        base = split.classes_of_step(0)
        # Groups as positions in the seen-class list (= prediction/label values = channels).
        self.class_groups: Dict[str, List[int]] = OrderedDict(
            old=[position[c] for c in (split.old_classes(step) or base)],
            new=[position[c] for c in split.new_classes(step)],
            base=[position[c] for c in base],
            novel=[position[c] for c in seen if c not in set(base)],
        )
        self.seen_classes = seen
        super().__init__(**iou_metric_kwargs)

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Optional[dict]: Meta info of the dataset; its ``classes`` are checked when set."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        self._dataset_meta = dataset_meta
        if dataset_meta is not None:
            self._check_classes()

    def _check_classes(self) -> List[str]:
        """Return the dataset's class names after checking them against the split.

        Raises:
            ValueError: if there is no ``dataset_meta['classes']`` or its length is not the number
                of classes seen at this step.
        """
        meta = self.dataset_meta
        if not meta or 'classes' not in meta:
            raise ValueError(f'IncrementalIoUMetric(task={self.task!r}, step={self.step}): '
                             f"dataset_meta has no 'classes'; evaluate it through a "
                             f'Runner/Evaluator of a dataset whose metainfo lists the seen '
                             f'classes, or set '
                             f"metric.dataset_meta = dict(classes=...) before process()")
        names = list(meta['classes'])
        voc = self.num_classes == NUM_VOC_CLASSES
        expected = class_names(self.seen_classes) if voc else self.seen_classes
        if len(names) != len(expected):
            raise ValueError(f'IncrementalIoUMetric(task={self.task!r}, step={self.step}): the '
                             f"dataset has {len(names)} classes (metainfo['classes'] = {names}), "
                             f'but step {self.step} of split {self.task!r} has seen '
                             f'{len(expected)} classes {expected}; build the val dataset from the '
                             f'same incremental block as the metric')
        if voc and names != expected:
            warnings.warn(f'IncrementalIoUMetric: dataset classes {names} differ in name from the '
                          f'VOC classes of the split {expected}; metrics use the dataset names')
        return names

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Accumulate the areas of one batch (see :meth:`IoUMetric.process`).

        Args:
            data_batch (dict): A batch of data from the dataloader.
            data_samples (Sequence[dict]): Model outputs, each with ``pred_sem_seg['data']`` and
                ``gt_sem_seg['data']`` of shape (1, H, W) (and ``img_path`` with ``output_dir``).
        """
        if not self.results:
            self._check_classes()
        output_dir, self.output_dir = self.output_dir, None
        try:  # mmseg's accumulation; the PNGs are written in class ids below
            super().process(data_batch, data_samples)
        finally:
            self.output_dir = output_dir
        if output_dir is not None:
            self._write_predictions(data_samples, output_dir)

    def _write_predictions(self, data_samples: Sequence[dict], output_dir: str) -> None:
        """One PNG per image, ``<output_dir>/<image name>.png``, of the dataset's label values:
        channel k is written as the class id of channel k (identity order: unchanged)."""
        class_ids = np.asarray(self.seen_classes, dtype=np.uint8)
        for data_sample in data_samples:
            pred = data_sample['pred_sem_seg']['data'].squeeze().cpu().numpy()
            name = osp.splitext(osp.basename(data_sample['img_path']))[0]
            Image.fromarray(class_ids[pred]).save(
                osp.abspath(osp.join(output_dir, f'{name}.png')))

    @property
    def evaluates_background(self) -> bool:
        """False for datasets whose label 0 is no class (never a ground-truth pixel)."""
        return not (self.dataset_meta or {}).get('zero_is_void', False)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Reduce the accumulated areas to the incremental metrics.

        Args:
            results (list): Per-image tuples (area_intersect, area_union, area_pred, area_label)
                from :meth:`process`, each of shape (num_classes,).

        Returns:
            dict[str, float]: ``aAcc``, ``mIoU``, ``mIoU_old``, ``mIoU_new``, ``mIoU_base``,
            ``mIoU_novel``, the other means of :class:`IoUMetric` and ``IoU.<class>`` per class.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved to {self.output_dir}')
            return OrderedDict()
        names = self._check_classes()
        if not results:
            raise ValueError(f'IncrementalIoUMetric(task={self.task!r}, step={self.step}): no '
                             f'results to evaluate (process() was never called)')
        areas = tuple(zip(*results))
        metric_names = list(self.metrics) if isinstance(self.metrics, (list, tuple)) else \
            [self.metrics]
        if 'mIoU' not in metric_names:
            metric_names.insert(0, 'mIoU')
        with warnings.catch_warnings(), np.errstate(invalid='ignore', divide='ignore'):
            warnings.simplefilter('ignore', RuntimeWarning)
            per_class = self.total_area_to_metrics(
                sum(areas[0]), sum(areas[1]), sum(areas[2]), sum(areas[3]), metric_names,
                self.nan_to_num, self.beta)
        # float64 so that rounding to 2 decimals gives exact-looking numbers (areas are float32)
        per_class = OrderedDict((key, np.asarray(value, dtype=np.float64))
                                for key, value in per_class.items())
        aacc = per_class.pop('aAcc')
        evaluated = list(range(len(names)))
        if not self.evaluates_background:  # background (channel 0) has no ground truth
            evaluated = evaluated[1:]
            per_class = OrderedDict((k, v[1:]) for k, v in per_class.items())
            names = names[1:]
        iou = per_class['IoU']
        index = {position: i for i, position in enumerate(evaluated)}

        metrics: Dict[str, float] = OrderedDict()
        metrics['aAcc'] = float(np.round(float(aacc) * 100, 2))
        metrics['mIoU'] = _nanmean_percent(iou)
        for group, positions in self.class_groups.items():
            metrics[f'mIoU_{group}'] = _nanmean_percent(
                iou[[index[p] for p in positions if p in index]])
        for key, values in per_class.items():
            if key != 'IoU':
                metrics[f'm{key}'] = _nanmean_percent(values)
        for name, value in zip(names, iou):
            metrics[f'IoU.{name}'] = float(np.round(value * 100, 2))

        self._log(names, per_class, metrics, logger, evaluated)
        return metrics

    def _log(self, names: List[str], per_class: Dict[str, np.ndarray], metrics: Dict[str, float],
             logger: MMLogger, positions: Sequence[int]) -> None:
        """Log the per-class table (class ids and names) and a one-line old/new/all summary."""
        new = set(self.class_groups['new'])
        old = set(self.class_groups['old'])
        table = PrettyTable()
        if self.num_classes != NUM_VOC_CLASSES or self.order is not None:
            table.add_column('Id', [self.seen_classes[p] for p in positions])
        table.add_column('Class', names)
        table.add_column('Group', ['new' if p in new else 'old' if p in old else '-'
                                   for p in positions])
        for key, values in per_class.items():
            table.add_column(key, [float(np.round(v * 100, 2)) for v in values])
        print_log(f'per class results ({self.task} step {self.step}):', logger)
        print_log('\n' + table.get_string(), logger=logger)
        print_log(f"{self.task} step {self.step}: mIoU old {metrics['mIoU_old']} | "
                  f"new {metrics['mIoU_new']} | all {metrics['mIoU']} "
                  f"(base {metrics['mIoU_base']}, novel {metrics['mIoU_novel']}, "
                  f"aAcc {metrics['aAcc']})", logger)
