# DeepLabV3+ R101 for the CPU toy runs: no ImageNet weights (none can be downloaded here).
_base_ = ['./deeplabv3plus_r101.py']
model = dict(pretrained=None)
