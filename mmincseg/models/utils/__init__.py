from .head_loss import head_loss_by_feat, pixel_accuracy
from .novel_init import init_novel_classifier

__all__ = ['head_loss_by_feat', 'init_novel_classifier', 'pixel_accuracy']
