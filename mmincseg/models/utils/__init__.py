from .head_loss import head_loss_by_feat, pixel_accuracy

__all__ = ['head_loss_by_feat', 'pixel_accuracy']
