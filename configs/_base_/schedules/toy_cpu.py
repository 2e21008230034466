# CPU-sized schedule for the synthetic toy VOC: the seed's optimiser (SGD, momentum 0.9,
# Nesterov, poly decay) with a higher step-0 lr: 0.05 beat 0.01 when fine-tuning the toy-pretrained
# R18 (scene version 2, toy val; docs/results.md). Steps > 0 use lr x incremental.lr_factor (0.1).
_base_ = ['./voc_30e.py']
max_epochs = 30
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
