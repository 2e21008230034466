"""Ratios, targets and the markdown page (docs/benchmarks.md) of a benchmark document."""
from typing import List, Optional

# name, ratio key, comparison, threshold, description (the targets).
TARGETS = (
    ('MiB step / FT step', 'mib_over_ft', '<=', 1.3,
     'MiB adds little over fine-tuning (teacher forward + KD)'),
    ('loss share of a MiB step', 'loss_share_of_mib_step', '<=', 0.05,
     'loss functions (forward + backward to the logits) <= 5% of the MiB step'),
    ('DeepLabV3-R101 OS16 / BiSeNet-R18 (inference)', 'deeplabv3_r101_os16_over_bisenet_r18', '>=',
     3.0, 'BiSeNet-R18 inference >= 3x faster than DeepLabV3-R101 OS16'),
    ('DeepLabV3-R101 OS16 / BiSeNet-R101 (inference)', 'deeplabv3_r101_os16_over_bisenet_r101',
     '>', 1.0, 'BiSeNet-R101 faster than DeepLabV3-R101'),
    ('DeepLabV3-R101 OS16 / seed BiSeNet-R101 (inference)',
     'deeplabv3_r101_os16_over_bisenet_seed_r101', '>', 1.0,
     "the seed's BiSeNet-R101 faster than DeepLabV3-R101"),
    ('PLOP step / FT step', 'plop_over_ft', '<=', 1.4,
     'PLOP (teacher forward, POD on features and logits, pseudo-labels) over fine-tuning'),
    ('EWC step / FT step', 'ewc_over_ft', '<=', 1.15, 'a parameter penalty adds little'),
    ('PI step / FT step', 'pi_over_ft', '<=', 1.15, 'a parameter penalty adds little'),
    ('RW step / FT step', 'rw_over_ft', '<=', 1.15, 'a parameter penalty adds little'),
    ('pipeline / training consumption', 'pipeline_over_train_consumption', '>=', 3.0,
     'data pipeline delivers >= 3x the images/s the training step consumes'),
)


def ratio(a: Optional[float], b: Optional[float], digits: int = 4) -> Optional[float]:
    """``a / b`` rounded, None when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, digits)


def check_targets(ratios: dict) -> List[dict]:
    """The issue's targets against the measured ratios (``met`` is None when not measured)."""
    ops = {'<=': lambda v, t: v <= t, '>=': lambda v, t: v >= t, '>': lambda v, t: v > t}
    out = []
    for name, key, op, threshold, description in TARGETS:
        value = ratios.get(key)
        out.append(dict(name=name, ratio=key, value=value, target=f'{op} {threshold}',
                        met=None if value is None else bool(ops[op](value, threshold)),
                        description=description))
    return out


def compute_ratios(doc: dict) -> dict:
    """The ratios of the document (DESIGN.md keys first, then extra ones)."""
    infer = doc.get('infer', {})
    train = doc.get('train_step', {})

    def ms(name):
        return infer.get(name, {}).get('ms_per_img')

    mib = train.get('mib', {})
    ft = train.get('ft', {})
    ratios = dict(
        mib_over_ft=ratio(mib.get('ms'), ft.get('ms')),
        loss_share_of_mib_step=ratio(mib.get('loss_ms'), mib.get('ms')),
        deeplabv3_r101_os16_over_bisenet_r18=ratio(ms('deeplabv3_r101_os16'), ms('bisenet_r18')),
        train_gflops_over_matmul_peak=None)
    train_flops = doc.get('flops', {}).get('train_step_mib')
    peak = doc.get('matmul_gflops', {}).get('gflops')
    if train_flops and mib.get('ms') and peak:
        achieved = train_flops['step_gflops_2x'] / (mib['ms'] / 1e3)
        ratios['train_gflops_over_matmul_peak'] = round(achieved / peak, 4)
        ratios['train_achieved_gflops'] = round(achieved, 2)
    ratios['deeplabv3_r101_os16_over_bisenet_r101'] = ratio(ms('deeplabv3_r101_os16'),
                                                             ms('bisenet_r101'))
    ratios['deeplabv3_r101_os8_over_bisenet_r101'] = ratio(ms('deeplabv3_r101_os8'),
                                                            ms('bisenet_r101'))
    ratios['deeplabv3_r101_os16_over_bisenet_seed_r101'] = ratio(ms('deeplabv3_r101_os16'),
                                                                  ms('bisenet_seed_r101'))
    ratios['bisenet_r101_over_bisenet_seed_r101'] = ratio(ms('bisenet_r101'),
                                                           ms('bisenet_seed_r101'))
    by_model = doc.get('train_step_by_model', {})

    def step_ms(name):
        return by_model.get(name, {}).get('ms')

    ratios['mib_step_deeplabv3_r101_os16_over_bisenet_seed_r101'] = ratio(
        step_ms('deeplabv3_r101_os16'), step_ms('bisenet_seed_r101'))
    ratios['mib_step_bisenet_r101_over_bisenet_seed_r101'] = ratio(step_ms('bisenet_r101'),
                                                                    step_ms('bisenet_seed_r101'))
    nhwc = doc.get('channels_last', {})
    nhwc_infer, nhwc_train = nhwc.get('infer', {}), nhwc.get('train_step', {})
    ratios['channels_last_speedup_bisenet_r18_inference'] = ratio(
        ms('bisenet_r18'), nhwc_infer.get('bisenet_r18', {}).get('ms_per_img'))
    mib_cl = nhwc_train.get('mib', {}).get('ms')
    ratios['channels_last_speedup_mib_step'] = ratio(mib.get('ms'), mib_cl)
    ratios['mib_over_ft_channels_last'] = ratio(mib_cl, nhwc_train.get('ft', {}).get('ms'))
    for method in ('lwf', 'lwf_mc', 'ilt', 'ewc', 'pi', 'rw', 'plop'):
        ratios[f'{method}_over_ft'] = ratio(train.get(method, {}).get('ms'), ft.get('ms'))
    pipeline = doc.get('pipeline', {})
    rates = [w['imgs_per_s'] for w in pipeline.get('workers', {}).values()]
    if rates and mib.get('imgs_per_s'):
        ratios['pipeline_over_train_consumption'] = ratio(max(rates), mib['imgs_per_s'])
    else:
        ratios['pipeline_over_train_consumption'] = None
    return ratios


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def render_markdown(doc: dict) -> str:
    """The benchmark document as a markdown page (docs/benchmarks.md)."""
    m = doc.get('machine', {})
    s = doc.get('settings', {})
    lines = ['# Benchmarks', '',
             '<!-- Generated by `make bench` (tools/analysis_tools/benchmark.py); do not edit by '
             'hand. -->', '',
             f"Mode: **{doc.get('mode', 'full')}**, measured {m.get('date', '?')} in "
             f"{_fmt(m.get('wall_s'))} s.", '', '## Machine', '',
             '| | |', '|---|---|']
    load = m.get('load_avg_start')
    rows = [('CPU', f"{m.get('cpu_model')} ({m.get('cpu_count')} logical CPUs)"),
            ('device', m.get('device') + (f" ({m['gpu']})" if m.get('gpu') else '')),
            ('torch threads', m.get('torch_threads')), ('Python', m.get('python')),
            ('torch', m.get('torch')), ('mmcv', m.get('mmcv')), ('mmengine', m.get('mmengine')),
            ('mmseg', m.get('mmseg')), ('mmincseg', m.get('mmincseg')),
            ('load average (1/5/15 min) at start', ' / '.join(map(str, load)) if load else 'n/a'),
            ('load average at end', ' / '.join(map(str, m.get('load_avg_end', []))) or 'n/a'),
            ('highest 1-minute load during the run', _fmt(m.get('load_1min_max'), 2)),
            ('dense fp32 matmul peak',
             f"{_fmt(doc.get('matmul_gflops', {}).get('gflops'))} GFLOP/s "
             f"({doc.get('matmul_gflops', {}).get('size')}^2)"),
            ('peak memory method', m.get('memory_method'))]
    lines += [f'| {k} | {v} |' for k, v in rows]
    busiest = max([(m.get(k) or [0])[0] for k in ('load_avg_start', 'load_avg_end')] +
                  [m.get('load_1min_max') or 0])
    if busiest >= 1.5:
        lines += ['', f'Note: the machine was shared with other jobs (1-minute load up to '
                  f'{busiest} on {m.get("cpu_count")} CPUs during the run); absolute times are '
                  'inflated and noisier than on an idle machine. Models were measured '
                  'interleaved, so the ratios are affected less than the absolute numbers.']
    if m.get('torch_threads') and m.get('cpu_count') and m['torch_threads'] < m['cpu_count']:
        lines += ['', f"Run with {m['torch_threads']} torch thread(s) on {m['cpu_count']} CPUs "
                  '(`--threads`): on a CPU shared with other jobs, OpenMP threads that wait for '
                  'each other at every operator are several times slower than one thread, so '
                  'the numbers are single-thread figures.']

    lines += ['', '## Targets', '', '| target | ratio | measured | required | status |',
              '|---|---|---|---|---|']
    for t in doc.get('targets', []):
        status = 'n/a' if t['met'] is None else ('**met**' if t['met'] else '**missed**')
        lines.append(f"| {t['description']} | `{t['ratio']}` | {_fmt(t['value'], 3)} | "
                     f"{t['target']} | {status} |")

    flops = doc.get('flops', {})
    for key, title in (('infer', 'batch 1'), ('infer_b8', f"batch {s.get('batch_infer_batch')}")):
        section = doc.get(key)
        if not section:
            continue
        size = next(iter(section.values()))['size']
        lines += ['', f'## Inference, {size}x{size}, {title}', '',
                  f"Eval mode, `torch.inference_mode`, `encode_decode` (logits at input size); "
                  f"median of {next(iter(section.values()))['repeats']} interleaved rounds after "
                  f"warm-up. Memory: weights + peak extra memory of one call.", '',
                  '| model | ms / img | imgs / s | min-max ms / batch | peak mem MB | '
                  'GFLOPs (MAC) | params M |', '|---|---:|---:|---:|---:|---:|---:|']
        for name, e in section.items():
            f = flops.get(name, {})
            lines.append(f"| {name} | {_fmt(e['ms_per_img'])} | {_fmt(e['imgs_per_s'], 2)} | "
                         f"{_fmt(e['ms_min'], 0)}-{_fmt(e['ms_max'], 0)} | "
                         f"{_fmt(e.get('peak_mem_mb'), 0)} | {_fmt(f.get('gflops'))} | "
                         f"{_fmt(f.get('params_m'))} |")
    if flops:
        size = next((f['size'] for f in flops.values() if 'size' in f), None)
        lines += ['', f'FLOPs from `mmengine.analysis.get_model_complexity_info` at {size} px '
                  '(one multiply-add counted once).']

    train = doc.get('train_step')
    if train:
        e0 = next(iter(train.values()))
        lines += ['', f"## Training step, 15-5 step 1, BiSeNet-R18, {e0['size']}x{e0['size']}, "
                  f"batch {e0['batch']}", '',
                  'A step is `model.train_step` (data preprocessor, student forward, frozen '
                  'step-0 teacher forward, losses, backward, SGD step). "loss" is the loss '
                  'functions alone (forward + backward to the logits) on logits recorded from the '
                  f"same batch. Median of {e0['repeats']} interleaved steps after warm-up. The "
                  'full 512x512, batch 16 step of the paper is not run on CPU (minutes per step '
                  'on 2 cores); ratios between methods do not depend much on the size.', '',
                  '| method | ms / step | imgs / s | vs FT | teacher fwd ms | loss ms | '
                  'loss share | loss ms by term |', '|---|---:|---:|---:|---:|---:|---:|---|']
        ft_ms = train.get('ft', {}).get('ms')
        for name, e in train.items():
            terms = ', '.join(f'{t} {_fmt(v, 1)}' for t, v in e.get('loss_terms_ms', {}).items())
            lines.append(f"| {name} | {_fmt(e['ms'])} | {_fmt(e['imgs_per_s'], 2)} | "
                         f"{_fmt(ratio(e['ms'], ft_ms), 2)} | "
                         f"{_fmt(e.get('teacher_forward_ms'))} | {_fmt(e['loss_ms'], 1)} | "
                         f"{_fmt(100 * e['loss_ms'] / e['ms'], 1)}% | {terms} |")

    by_model = doc.get('train_step_by_model')
    if by_model:
        e0 = next(iter(by_model.values()))
        dl_ms = by_model.get('deeplabv3_r101_os16', {}).get('ms')
        lines += ['', f"## MiB training step by model, 15-5 step 1, {e0['size']}x{e0['size']}, "
                  f"batch {e0['batch']}", '',
                  'The MiB step of the section above (student, frozen step-0 teacher, unbiased '
                  'CE on every head, unbiased KD) with the model of each row, measured '
                  f"interleaved: median of {e0['repeats']} steps after warm-up. `bisenet_seed_*` "
                  "is the seed paper's own BiSeNet (32-channel FFM, classifiers on the FFM and on "
                  'the two ARM outputs), `bisenet_r*` the shape of our BiSeNet configs.', '',
                  '| model | ms / step | imgs / s | DeepLabV3-R101 OS16 / model | '
                  'teacher fwd ms | loss ms | params M |', '|---|---:|---:|---:|---:|---:|---:|']
        for name, e in by_model.items():
            lines.append(f"| {name} | {_fmt(e['ms'])} | {_fmt(e['imgs_per_s'], 2)} | "
                         f"{_fmt(ratio(dl_ms, e['ms']), 2)} | "
                         f"{_fmt(e.get('teacher_forward_ms'))} | {_fmt(e['loss_ms'], 1)} | "
                         f"{_fmt(flops.get(name, {}).get('params_m'))} |")

    nhwc = doc.get('channels_last') or {}
    nhwc_rows = [(f'`{n}` inference, ms / img', doc.get('infer', {}).get(n, {}).get('ms_per_img'),
                  e.get('ms_per_img')) for n, e in nhwc.get('infer', {}).items()]
    nhwc_rows += [(f'`{n}` training step, ms', (train or {}).get(n, {}).get('ms'), e.get('ms'))
                  for n, e in nhwc.get('train_step', {}).items()]
    if nhwc_rows:
        lines += ['', '## Channels-last (NHWC)', '',
                  'The same models in the channels-last memory format (`ChannelsLastHook`: weights '
                  'of student and teacher), measured interleaved with the rows above.', '',
                  '| measurement | NCHW | NHWC | speed-up |', '|---|---:|---:|---:|']
        lines += [f'| {what} | {_fmt(a)} | {_fmt(b)} | {_fmt(ratio(a, b), 2)} |'
                  for what, a, b in nhwc_rows]

    r = doc.get('ratios', {})
    lines += ['', '## Ratios', '', '| ratio | value |', '|---|---:|']
    lines += [f'| `{k}` | {_fmt(v, 3)} |' for k, v in r.items()]
    tf = flops.get('train_step_mib')
    if tf:
        lines += ['', f"`train_gflops_over_matmul_peak`: the MiB step does "
                  f"{_fmt(tf['step_gflops_2x'])} GFLOP (multiply and add counted apart; student "
                  f"forward x3 for forward + backward, plus the teacher forward, batch "
                  f"{tf['batch']}), i.e. {_fmt(r.get('train_achieved_gflops'))} GFLOP/s, against "
                  f"the dense matmul peak measured in the same run."]

    pipe = doc.get('pipeline')
    if pipe:
        lines += ['', '## Training data pipeline', '']
        if 'skipped' in pipe:
            lines.append(f"Skipped: {pipe['skipped']}")
        else:
            mib_rate = train.get('mib', {}).get('imgs_per_s') if train else None
            lines += [f"`IncrementalVOCDataset` 15-5 step 1 with the toy config's training "
                      f"pipeline (load, resize, rotate, crop {pipe['crop']}, flip, photometric "
                      f"distortion, pack) on a generated toy VOC ({pipe['source_images']} "
                      f"images of ~{pipe['crop']} px, {pipe.get('step_images')} selected by the "
                      f"step), batch {pipe['batch']}, first batch not timed. The MiB step "
                      f"consumes {_fmt(mib_rate, 2)} imgs/s.", '',
                      '| workers | imgs / s | x training consumption |', '|---:|---:|---:|']
            for w, e in pipe['workers'].items():
                lines.append(f"| {w} | {_fmt(e['imgs_per_s'])} | "
                             f"{_fmt(ratio(e['imgs_per_s'], mib_rate), 2)} |")
            lines += ['', 'Workers share the same CPUs as the training process, so on this '
                      'machine the two compete during real training.']

    seam = doc.get('seam')
    if seam:
        lines += ['', '## SEAM pseudo-labels', '']
        if 'skipped' in seam:
            lines.append(f"Skipped: {seam['skipped']}")
        else:
            lines.append(f"`infer_cams` ({seam['backbone']}, scales {seam['scales']}, flip "
                         f"{seam['flip']}) on a {seam['size']}x{seam['size']} image: "
                         f"{_fmt(seam['ms_per_img'], 0)} ms / img, "
                         f"{_fmt(seam['imgs_per_s'], 3)} imgs / s.")

    prof = doc.get('profile')
    if prof:
        lines += ['', f"## Profile of a MiB step ({prof['time']})", '',
                  f"`torch.profiler` over {prof['steps']} step(s); "
                  f"{_fmt(prof['wall_ms_per_step'])} ms wall / step under the profiler.", '',
                  '| operator | self ms / step | share | calls / step |',
                  '|---|---:|---:|---:|']
        for op in prof['top_ops']:
            lines.append(f"| `{op['op']}` | {_fmt(op['self_ms_per_step'])} | "
                         f"{_fmt(100 * op['share'], 1)}% | {_fmt(op['calls_per_step'])} |")
        lines += ['', 'By kind: ' + ', '.join(f'{k} {_fmt(100 * v, 1)}%'
                                             for k, v in prof['group_share'].items()) + '.']

    left = [f"`{n}` batch {s.get('batch_infer_batch')}" for n in s.get('models', [])
            if n not in doc.get('infer_b8', {})]
    if left and doc.get('infer_b8') is not None:
        lines += ['', 'Left out of the batched section to keep the run short: ' +
                  ', '.join(left) + '.']
    lines.append('')
    return '\n'.join(lines)
