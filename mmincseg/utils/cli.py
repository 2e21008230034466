"""Command-line options shared by the tools that read a step's images with a model."""
import argparse

from mmengine.config import DictAction


def add_data_model_options(parser: argparse.ArgumentParser,
                           cfg_help: str = 'override config keys, e.g. incremental.step=2'
                           ) -> None:
    """Add ``--data-root``, ``--device`` and ``--cfg-options`` (mmengine's ``DictAction``).

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        cfg_help (str): Help of ``--cfg-options``.
    """
    parser.add_argument('--data-root', help='VOC2012-layout dataset root for every dataset')
    parser.add_argument('--device', help='torch device (default: cuda if available)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help=cfg_help)
