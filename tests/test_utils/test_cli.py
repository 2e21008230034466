"""The tools' shared options: data root, device and mmengine-style config overrides."""
import argparse

from mmincseg.utils.cli import add_data_model_options


def test_data_model_options_parse_overrides_as_mmengine_does():
    parser = argparse.ArgumentParser()
    add_data_model_options(parser, cfg_help='as the run did')
    args = parser.parse_args(['--data-root', 'data/toyvoc', '--device', 'cpu', '--cfg-options',
                              'incremental.step=2', 'model.test_cfg.scales=(1.0,)'])
    assert args.data_root == 'data/toyvoc' and args.device == 'cpu'
    assert args.cfg_options == {'incremental.step': 2, 'model.test_cfg.scales': (1.0, )}
    assert parser.parse_args([]).cfg_options is None
    assert 'as the run did' in parser.format_help()
