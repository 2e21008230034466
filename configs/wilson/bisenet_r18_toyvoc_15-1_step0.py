# WILSON (Cermelli et al., CVPR 2022) on VOC 15-1: step 0 on true masks with MiB's
# sigmoid loss (as WILSON's FT_bce; LwF-MC's step 0), steps > 0 learn their new
# classes from image-level labels only (incremental.labels='image'): a localizer on the encoder
# feature the decode head reads gives online soft pseudo-labels (alpha 0.5) after 5
# localizer-only epochs, old classes and background follow the old model (mmincseg/models/wilson,
# recipe in mmincseg/apis/methods.py). Step t: --cfg-options incremental.step=t.
_base_ = ['../mib/bisenet_r18_toyvoc_15-1_step0.py']
incremental = dict(method='wilson', labels='image')
