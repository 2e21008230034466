"""mmincseg: class-incremental semantic segmentation (MiB, BiSeNet, SEAM) for MMSegmentation 1.x."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

# Shipped with the package as OpenMMLab packages do (mmincseg/.mim/{configs,tools}), so that a
# plain `pip install .` has them and `mim train mmincseg CONFIG` / `mim test mmincseg` find them.
MIM_DIRS = ('configs', 'tools')


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmincseg', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension() -> None:
    """Put configs/ and tools/ into mmincseg/.mim: symlinks for an editable install (edits show
    at once), copies for a wheel or a plain install."""
    editable = any(cmd in sys.argv for cmd in ('develop', 'editable_wheel'))
    if not editable and not any(cmd in sys.argv for cmd in ('install', 'bdist_wheel', 'sdist',
                                                             'build', 'egg_info')):
        return
    here = osp.dirname(osp.abspath(__file__))
    mim = osp.join(here, 'mmincseg', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_DIRS:
        src, dst = osp.join(here, name), osp.join(mim, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if editable:
            os.symlink(osp.relpath(src, mim), dst)
        else:
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


add_mim_extension()

setup(
    name='mmincseg',
    version=get_version(),
    description='Class-incremental semantic segmentation (MiB, BiSeNet, SEAM) as an MMSegmentation plugin',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'configs.*', 'tools',
                                    'tools.*')),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=[
        'torch>=1.8', 'mmcv>=2.0.0rc4,<2.2.0', 'mmengine>=0.10.0,<1.0.0', 'mmsegmentation>=1.2.0,<1.3.0',
        'mmpretrain>=1.2.0', 'numpy', 'matplotlib', 'prettytable'
    ],
    extras_require={'tests': ['pytest', 'hypothesis']},
    license='Apache License 2.0',
    zip_safe=False,
)
