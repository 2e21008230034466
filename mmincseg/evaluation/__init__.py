from .incremental_iou_metric import IncrementalIoUMetric

__all__ = ['IncrementalIoUMetric']
