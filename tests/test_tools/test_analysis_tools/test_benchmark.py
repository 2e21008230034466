"""The benchmark (tools/analysis_tools): document schema and rendering (timings are never
asserted), and its loss path against the segmentor's own ``loss``."""
import json
import os.path as osp
import subprocess
import sys

import pytest

import torch

from tools.analysis_tools.bench_models import (CHANNELS_LAST_METHODS, CHANNELS_LAST_MODELS,
                                               METHODS_BENCHMARKED, MODELS_BENCHMARKED, QUICK,
                                               TRAIN_MODELS, attach_method_state,
                                               build_train_models, train_batch_data)
from tools.analysis_tools.bench_report import (TARGETS, check_targets, compute_ratios,
                                               render_markdown)
from tools.analysis_tools.bench_run import run_benchmark
from tools.analysis_tools.bench_train import (check_loss_terms, loss_step, loss_terms,
                                              record_loss_inputs)

DESIGN_RATIOS = ('mib_over_ft', 'loss_share_of_mib_step', 'deeplabv3_r101_os16_over_bisenet_r18',
                 'train_gflops_over_matmul_peak')


# ms per training step of the synthetic document: RW (1.2 x FT) and PLOP (1.5 x FT) miss their
# targets (1.15, 1.4), the others meet theirs
TRAIN_MS = dict(ft=100.0, lwf=110.0, lwf_mc=112.0, ilt=120.0, ewc=105.0, pi=115.0, rw=120.0,
                mib=130.0, plop=150.0)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _synthetic_doc() -> dict:
    infer = {name: dict(ms_per_img=10.0 * (i + 1), imgs_per_s=100.0 / (i + 1), peak_mem_mb=50.0,
                        ms_per_batch=10.0 * (i + 1), ms_min=9.0, ms_max=11.0, repeats=3, batch=1,
                        size=64)
             for i, name in enumerate(MODELS_BENCHMARKED)}
    train = {name: dict(ms=TRAIN_MS[name], ms_min=90.0, ms_max=160.0, repeats=3, imgs_per_s=20.0,
                        loss_ms=4.0, size=64, batch=2)
             for name in METHODS_BENCHMARKED}
    by_model = {name: dict(ms=200.0 + 100 * i, ms_min=190.0, ms_max=220.0, repeats=3,
                           imgs_per_s=10.0, loss_ms=4.0, teacher_forward_ms=50.0, size=64,
                           batch=2, method='mib')
                for i, name in enumerate(TRAIN_MODELS)}
    channels_last = dict(infer={'bisenet_r18': dict(infer['bisenet_r18'], ms_per_img=8.0)},
                         train_step={'ft': dict(train['ft'], ms=90.0),
                                     'mib': dict(train['mib'], ms=117.0)})
    doc = dict(machine=dict(cpu_model='test cpu', cpu_count=2, device='cpu', load_avg_start=[2.0]),
               channels_last=channels_last,
               mode='quick', settings=dict(batch_infer_batch=8, models=list(MODELS_BENCHMARKED)),
               infer=infer, train_step=train, train_step_by_model=by_model,
               matmul_gflops=dict(gflops=100.0, size=256),
               flops=dict(train_step_mib=dict(step_gflops_2x=5.0, batch=2)),
               pipeline=dict(crop=64, batch=2, source_images=8, step_images=4,
                             workers={'0': dict(imgs_per_s=200.0, batches=3)}))
    doc['ratios'] = compute_ratios(doc)
    doc['targets'] = check_targets(doc['ratios'])
    return doc


def test_ratios_and_targets():
    doc = _synthetic_doc()
    ratios = doc['ratios']
    assert ratios['mib_over_ft'] == pytest.approx(130.0 / 100.0)
    assert ratios['loss_share_of_mib_step'] == pytest.approx(4.0 / 130.0, abs=1e-4)
    ms = {name: e['ms_per_img'] for name, e in doc['infer'].items()}
    assert ratios['deeplabv3_r101_os16_over_bisenet_r18'] == pytest.approx(
        ms['deeplabv3_r101_os16'] / ms['bisenet_r18'], abs=1e-4)
    assert ratios['deeplabv3_r101_os16_over_bisenet_r101'] == pytest.approx(
        ms['deeplabv3_r101_os16'] / ms['bisenet_r101'], abs=1e-4)
    assert ratios['deeplabv3_r101_os16_over_bisenet_seed_r101'] == pytest.approx(
        ms['deeplabv3_r101_os16'] / ms['bisenet_seed_r101'], abs=1e-4)
    assert ratios['bisenet_r101_over_bisenet_seed_r101'] == pytest.approx(
        ms['bisenet_r101'] / ms['bisenet_seed_r101'], abs=1e-4)
    steps = {name: e['ms'] for name, e in doc['train_step_by_model'].items()}
    assert ratios['mib_step_deeplabv3_r101_os16_over_bisenet_seed_r101'] == pytest.approx(
        steps['deeplabv3_r101_os16'] / steps['bisenet_seed_r101'], abs=1e-4)
    assert ratios['mib_step_bisenet_r101_over_bisenet_seed_r101'] == pytest.approx(
        steps['bisenet_r101'] / steps['bisenet_seed_r101'], abs=1e-4)
    assert ratios['channels_last_speedup_bisenet_r18_inference'] == pytest.approx(
        ms['bisenet_r18'] / 8.0, abs=1e-4)
    assert ratios['channels_last_speedup_mib_step'] == pytest.approx(
        doc['train_step']['mib']['ms'] / 117.0, abs=1e-4)
    assert ratios['mib_over_ft_channels_last'] == pytest.approx(117.0 / 90.0, abs=1e-4)
    # 5 GFLOP in 0.13 s against a 100 GFLOP/s peak.
    assert ratios['train_gflops_over_matmul_peak'] == pytest.approx(5.0 / 0.13 / 100.0, abs=1e-4)
    assert ratios['pipeline_over_train_consumption'] == pytest.approx(10.0)
    met = {t['ratio']: t['met'] for t in doc['targets']}
    assert len(met) == len(TARGETS)
    assert met == {'mib_over_ft': True, 'loss_share_of_mib_step': True,
                   'deeplabv3_r101_os16_over_bisenet_r18': True,
                   'deeplabv3_r101_os16_over_bisenet_r101': True,
                   'deeplabv3_r101_os16_over_bisenet_seed_r101': True,
                   'plop_over_ft': False, 'ewc_over_ft': True, 'pi_over_ft': True,
                   'rw_over_ft': False, 'pipeline_over_train_consumption': True}
    for method in ('lwf', 'lwf_mc', 'ilt', 'ewc', 'pi', 'rw', 'plop'):
        assert ratios[f'{method}_over_ft'] == pytest.approx(TRAIN_MS[method] / 100.0)
    doc['train_step']['mib']['ms'] = 1000.0
    assert not check_targets(compute_ratios(doc))[0]['met']


def test_render_marks_targets_and_missing_sections():
    doc = _synthetic_doc()
    del doc['pipeline']
    doc['ratios'] = compute_ratios(doc)
    doc['targets'] = check_targets(doc['ratios'])
    md = render_markdown(doc)
    assert '## Targets' in md and '**met**' in md
    assert '| pipeline' not in md
    assert 'n/a' in md  # the pipeline target cannot be judged without the section
    assert 'other jobs' in md  # load 2.0 on the machine is reported
    for name in MODELS_BENCHMARKED + METHODS_BENCHMARKED:
        assert f'| {name} |' in md
    assert '## Channels-last (NHWC)' in md and '| `mib` training step, ms |' in md
    section = md.split('## MiB training step by model')[1].split('\n## ')[0]
    for name in TRAIN_MODELS:
        assert f'| {name} |' in section
    assert '| deeplabv3_r101_os16 | 600.0 | 10.00 | 1.00 |' in section


@pytest.mark.slow
def test_quick_benchmark_schema(tmp_path, repo_root):
    """The --quick path end to end (~20 s on 2 CPU cores): schema of DESIGN.md, then rendering."""
    doc = run_benchmark(quick=True, device='cpu', threads=1, log=lambda msg: None)
    doc = json.loads(json.dumps(doc))  # JSON-serialisable as the CLI writes it

    assert {'machine', 'infer', 'train_step', 'ratios'} <= set(doc)
    assert doc['machine']['cpu_model'] and doc['machine']['torch']
    assert set(doc['infer']) == set(MODELS_BENCHMARKED)
    for entry in doc['infer'].values():
        for key in ('ms_per_img', 'imgs_per_s', 'peak_mem_mb'):
            assert _is_number(entry[key]) and entry[key] > 0, (key, entry)
    assert set(doc['train_step']) == set(METHODS_BENCHMARKED)
    nhwc = doc['channels_last']
    assert set(nhwc['infer']) == set(CHANNELS_LAST_MODELS)
    assert set(nhwc['train_step']) == set(CHANNELS_LAST_METHODS)
    assert all(e['ms'] > 0 for e in nhwc['train_step'].values())
    for entry in doc['train_step'].values():
        assert _is_number(entry['ms']) and entry['ms'] > 0
    # The MiB step by model: the full run compares TRAIN_MODELS, --quick only the seed's BiSeNet.
    assert {'bisenet_seed_r18', 'bisenet_seed_r101'} <= set(QUICK.train_models)
    assert set(QUICK.train_models) <= set(TRAIN_MODELS)
    assert set(doc['train_step_by_model']) == set(QUICK.train_models)
    for entry in doc['train_step_by_model'].values():
        assert _is_number(entry['ms']) and entry['ms'] > 0 and entry['method'] == 'mib'
        assert _is_number(entry['teacher_forward_ms'])
    ratio = doc['ratios']['deeplabv3_r101_os16_over_bisenet_seed_r101']
    assert _is_number(ratio) and ratio > 0
    for key in DESIGN_RATIOS:
        assert _is_number(doc['ratios'][key]) and doc['ratios'][key] > 0, key
    assert len(doc['targets']) == len(TARGETS)
    assert all(t['met'] in (True, False) for t in doc['targets'])
    # Extra sections.
    assert doc['matmul_gflops']['gflops'] > 0
    assert set(MODELS_BENCHMARKED) <= set(doc['flops'])
    assert doc['infer_b8'] and all(e['batch'] == 8 for e in doc['infer_b8'].values())
    assert doc['pipeline']['workers'] and 'skipped' not in doc['pipeline']
    assert doc['profile']['top_ops'] and doc['profile']['method'] == 'mib'
    assert 'seam' in doc  # measured, or skipped with a reason

    json_path = tmp_path / 'bench.json'
    md_path = tmp_path / 'bench.md'
    json_path.write_text(json.dumps(doc))
    subprocess.run([sys.executable, osp.join(repo_root, 'tools', 'analysis_tools', 'benchmark.py'),
                    '--render', str(json_path), '--md', str(md_path)], check=True, cwd=repo_root,
                   capture_output=True)
    md = md_path.read_text()
    assert '## Targets' in md and '## Profile of a MiB step' in md
    assert '## MiB training step by model' in md and '| bisenet_seed_r101 |' in md
    assert doc['machine']['cpu_model'] in md


def _padded_batch(seed: int) -> dict:
    """The benchmark batch with a smaller second image (48 x 40): the data preprocessor pads it
    to the 64 x 64 batch, so the distillation terms have padding to leave out."""
    from mmengine.structures import PixelData
    data = train_batch_data(2, 64, seed=seed)
    data['inputs'][1] = data['inputs'][1][:, :48, :40].contiguous()
    sample = data['data_samples'][1]
    sample.gt_sem_seg = PixelData(data=sample.gt_sem_seg.data[:, :48, :40].contiguous())
    sample.set_metainfo(dict(img_shape=(48, 40), ori_shape=(48, 40)))
    return data


@pytest.mark.parametrize('method, options, extra_terms', [
    ('ft', {}, set()),
    ('ilt', {}, {'kd', 'feat_kd'}),
    ('mib', {}, {'kd'}),
    ('mib', dict(distill_at='label', old_class_veto=True), {'kd'}),
    ('lwf_mc', {}, {'kd'}),
    ('plop', {}, {'pod'}),
    ('ewc', {}, {'reg'}),
    ('rw', {}, {'reg'}),
])
def test_benchmark_loss_path_is_the_segmentor_loss(method, options, extra_terms):
    """The loss the benchmark times (``losses_from_outputs`` on outputs recorded from ``loss``)
    is ``model.loss()``'s on the same batch, with every option of the segmentor (padding left out
    of the distillation, ``distill_at``, the veto) and every method (PLOP's pseudo-labels and
    POD, the EWC/RW penalty), and its per-term split adds up to it."""
    model = build_train_models(method, torch.device('cpu'))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    hook = attach_method_state(method, model, optimizer)
    assert (hook is not None) == (method in ('ewc', 'rw'))
    for key, value in options.items():
        setattr(model, key, value)
    data = model.data_preprocessor(_padded_batch(seed=1), True)
    assert data['data_samples'][1].padding_size == (0, 24, 0, 16)
    torch.manual_seed(0)  # the heads' dropout draws the same masks in both forwards
    losses = model.loss(data['inputs'], data['data_samples'])
    expected, _ = model.parse_losses(losses)

    torch.manual_seed(0)
    record = record_loss_inputs(model, _padded_batch(seed=1))
    got = loss_step(model, record)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-6, atol=1e-6)
    assert set(model.losses_from_outputs(**record)) == set(losses)
    torch.testing.assert_close(loss_step(model, record), got)  # the record can be timed again
    terms = loss_terms(model, record)
    assert set(terms) == {'decode', 'aux_0', 'aux_1'} | extra_terms
    check_loss_terms(model, record)


@pytest.mark.parametrize('method', ['ewc', 'pi', 'rw'])
def test_benchmarked_regularizer_steps_see_the_optimizer(method):
    """EWC/PI/RW in the benchmark are the real hook's: its accumulator sees each step of the
    benchmark's optimizer and the penalty pulls towards the weights the step started from."""
    from tools.analysis_tools.bench_train import optim_wrapper
    model = build_train_models(method, torch.device('cpu'))
    wrapper = optim_wrapper(model)
    hook = attach_method_state(method, model, wrapper.optimizer)
    assert model.regularizer is hook.penalty and float(hook.penalty.loss_weight) > 0
    params = dict(model.named_parameters())
    assert float(model.regularizer(params)) == 0.0  # at the reference
    losses = model.train_step(train_batch_data(2, 64), wrapper)
    assert hook.accumulator.updates == 1 and 'loss_reg' in losses
    assert float(model.regularizer(dict(model.named_parameters()))) > 0  # moved away from it


def test_loss_term_split_that_misses_a_term_is_refused():
    """A segmentor loss that gains a term the per-term split does not know stops the benchmark."""
    model = build_train_models('mib', torch.device('cpu'))
    record = record_loss_inputs(model, train_batch_data(2, 64))
    check_loss_terms(model, record)
    losses_from_outputs = model.losses_from_outputs

    def with_a_new_term(**kwargs):
        return dict(losses_from_outputs(**kwargs), loss_new=kwargs['seg_logits'].square().mean())

    model.losses_from_outputs = with_a_new_term
    with pytest.raises(RuntimeError, match='per-term split'):
        check_loss_terms(model, record)
