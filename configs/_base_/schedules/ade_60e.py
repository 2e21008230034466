# MiB's ADE20K schedule: SGD (momentum 0.9, Nesterov, wd 1e-4), lr 0.01 at step 0, poly decay
# (power 0.9) per iteration, 60 epochs, batch 24 (datasets/ade20k_incremental.py). Steps > 0 use
# lr * incremental.lr_factor (default 0.1: MiB's 0.001).
_base_ = ['./voc_30e.py']
max_epochs = 60
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
