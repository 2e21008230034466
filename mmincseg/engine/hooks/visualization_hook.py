"""mmseg's prediction overlays, drawn on the image that was evaluated."""
import os.path as osp
from typing import Sequence

import mmcv
import numpy as np
from mmengine.fileio import get
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample


def evaluated_image(output: SegDataSample, packed_input, backend_args=None) -> np.ndarray:
    """The RGB image a prediction belongs to, shape (H, W, 3).

    The file on disk when the prediction has its size (mmseg resizes predictions back to the
    original image); otherwise the packed network input of the sample (a crop, e.g. under the
    VOC protocol's Resize(512) + CenterCrop(512)), whose channels are in the loaded BGR order.
    """
    img = mmcv.imfrombytes(get(output.img_path, backend_args=backend_args), channel_order='rgb')
    size = tuple(output.pred_sem_seg.shape) if 'pred_sem_seg' in output else img.shape[:2]
    if img.shape[:2] == size or packed_input is None:
        return img
    arr = packed_input.detach().cpu().numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(arr[..., ::-1].astype(np.uint8))


@HOOKS.register_module()
class EvaluatedImageVisualizationHook(SegVisualizationHook):
    """``SegVisualizationHook`` that also draws predictions of cropped evaluation.

    mmseg's hook reads each image from its file and draws the prediction on it, which fails when
    the evaluated image is a crop of the file (the prediction is of the crop). This hook draws on
    the sample's network input then; otherwise it behaves as mmseg's. Same arguments.
    """

    def _after_iter(self, runner, batch_idx: int, data_batch: dict,
                    outputs: Sequence[SegDataSample], mode: str = 'val') -> None:
        """Draw every ``interval``-th batch of validation / test (never in training)."""
        if self.draw is False or mode == 'train':
            return
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        inputs = (data_batch or {}).get('inputs') or [None] * len(outputs)
        for output, packed in zip(outputs, inputs):
            self._visualizer.add_datasample(
                f'{mode}_{osp.basename(output.img_path)}',
                evaluated_image(output, packed, self.backend_args),
                data_sample=output, show=self.show, wait_time=self.wait_time, step=runner.iter)
