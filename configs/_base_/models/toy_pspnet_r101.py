# PSPNet R101 for the CPU toy runs: no ImageNet weights (none can be downloaded here).
_base_ = ['./pspnet_r101.py']
model = dict(pretrained=None)
