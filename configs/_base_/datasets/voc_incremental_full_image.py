# PASCAL VOC as voc_incremental.py, evaluated on full images (every pixel of the original mask,
# predictions resized back to the image size) instead of the community's Resize(512) +
# CenterCrop(512). Use it in place of voc_incremental.py in a config's _base_, or inherit a step
# config and restate `val_dataloader`/`test_dataloader` with `full_image_test_pipeline`.
_base_ = ['./voc_incremental.py']
val_dataloader = dict(dataset=dict(pipeline={{_base_.full_image_test_pipeline}}))
test_dataloader = val_dataloader
