"""mmincseg: class-incremental semantic segmentation (MiB, BiSeNet, SEAM) for MMSegmentation 1.x."""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmincseg', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmincseg',
    version=get_version(),
    description='Class-incremental semantic segmentation (MiB, BiSeNet, SEAM) as an MMSegmentation plugin',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.8',
    install_requires=[
        'torch>=1.8', 'mmcv>=2.0.0rc4,<2.2.0', 'mmengine>=0.10.0,<1.0.0', 'mmsegmentation>=1.2.0,<1.3.0',
        'mmpretrain>=1.2.0', 'numpy', 'matplotlib', 'prettytable'
    ],
    extras_require={'tests': ['pytest', 'hypothesis']},
    license='Apache License 2.0',
    zip_safe=False,
)
