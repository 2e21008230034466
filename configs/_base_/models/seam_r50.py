# SEAM (Wang et al., CVPR 2020) CAM network for image-level supervision: mmseg's ResNetV1c-50 at
# output stride 8 (the paper uses ResNet-38, also OS8), a bias-free 1x1 CAM classifier and the
# Pixel Correlation Module on layer2/layer3 features. `class_ids` (background + the classes of the
# step) are set by the resolver from the config's `incremental` block (mmincseg/apis/config.py).
# As SEAM's ResNet-38 trains (network/resnet38d.py, Net.train): every BatchNorm in eval mode with
# frozen affine parameters, and the stem + first stage frozen (ResNet-38's conv1a, b2, b2_1, b2_2;
# here the stem and layer1). `norm_eval=False`, `frozen_stages=-1`, `requires_grad=True` train
# them all instead.
norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    type='SEAMNet',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size_divisor=8),
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),  # layer2, layer3 -> PCM; layer4 -> CAM
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=norm_cfg,
        norm_eval=True,
        frozen_stages=1,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')),
    pcm_channels=(64, 128),
    pcm_embed_channels=192,
    transform=dict(scale_factor=0.3),  # SEAM's only equivariant transform: rescale by 0.3
    loss_cls_weight=1.0,
    loss_er_weight=1.0,
    loss_ecr_weight=1.0,
    ecr_top_ratio=0.2,
    # pseudo-labels: scales 0.5/1/1.5/2 each with its flip, refined CAM, background alpha 0.26;
    # a map labelling more than 90% of its image as the step's classes is a failed CAM (a SEAM
    # whose training images all show one class can light up everything): ignored, not learned
    test_cfg=dict(scales=(0.5, 1.0, 1.5, 2.0), flip=True, bg_alpha=0.26, use_pcm=True,
                  max_foreground=0.9))
# SEAM trains the new layers (CAM classifier, PCM) with 10x the backbone learning rate.
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=10.0),
                                    'pcm': dict(lr_mult=10.0)}))
