#!/usr/bin/env bash
# Reproduces the toy-data tables of docs/results.md (seed's Tables 1 and 2 on the synthetic VOC).
# Usage: bash tools/toy_tables.sh [table1|table2|table2-seeds|table2-seeds-tables|table10-1|table3|seam-switches|kd|orders|ade|negatives|claim|claim-lr|models|all]
#   (CPU; hours on 2 cores)
# (table2 = table2-shared + table2-own + its tables; finished runs are skipped when re-run)
# Two chains run in parallel with one thread each (2 cores); logs go to work_dirs/toy/*.log.
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")  # the jobs of table2-seeds re-enter it
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
D=${DATA:-data/toyvoc}
WHAT=${1:-all}
# SEED=k (training seed: randomness.seed of every run) writes into $WORK/seed<k>; seed 0 (the
# default) into $WORK itself (WORK defaults to work_dirs/toy). `table2-seeds` runs table2 for
# seeds 0 1 2 and writes the mean +- std tables into $WORK.
SEED=${SEED:-0}
BASE=${WORK:-work_dirs/toy}
if [ "$SEED" = 0 ]; then W=$BASE; else W=$BASE/seed$SEED; fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$W"
# (re)written in place every time (deterministic, ~15 s): an older toy version is replaced; not
# by the jobs of table2-seeds, which run beside each other on the data their caller wrote
[ "$WHAT" = t2-job ] || $PY tools/make_toy_voc.py --out "$D" --seed 0 > /dev/null

run() { $PY tools/run_incremental.py "$@" --data-root "$D" --cfg-options randomness.seed=$SEED; }
# Steps > 0 train STEP_EPOCHS (default 15) epochs on the CPU budget; step 0 and Joint the toy
# schedule's 30. (Only steps > 0 run with these options: step 0 is reused with --step0.)
E_STEP=${STEP_EPOCHS:-15}
STEP_OPTS="train_cfg.max_epochs=$E_STEP param_scheduler.0.end=$E_STEP"

# Table 2's methods: SHARED ones start from the one step-0 model (plain CE at step 0); OWN ones
# train their own step 0 (LwF-MC: sigmoid loss; EWC/PI/RW: importances kept in its checkpoints),
# reused by their 15-1 run.
# (T2_OWN="ewc pi rw" bash tools/toy_tables.sh table2-own trains only those; T2_OWN= none.)
T2_SHARED="ft mib lwf ilt plop"
T2_OWN=${T2_OWN-"lwf_mc ewc pi rw"}
table2_rows() {  # table2_rows <split> <joint run>: the markdown + plot of every method
  local runs=() names=()
  for m in $T2_SHARED $T2_OWN; do runs+=("$W/${m}_$1"); names+=("$m"); done
  $PY tools/summarize_results.py "${runs[@]}" "$2" --names "${names[@]}" Joint \
    --md "$W/table2_$1.md" --png "$W/table2_$1.png"
}

# Rows of a summary table that tolerate missing runs: `ROWS=(); NAMES=()`, then `row <run dir>
# <name>` per row, then `summarize <what> <summarize_results.py options>`: a run that did not
# finish is named and left out, and the target exits 1.
failed=0
row() { ROWS+=("$1"); NAMES+=("$2"); }
summarize() {
  local what=$1; shift
  local done_rows=() done_names=() finished i
  # One Python for every row: results.json is written after every step, so a run is finished
  # when its last step is there; prints the indices of the finished rows.
  finished=$($PY - "${ROWS[@]}" <<'PYEOF'
import json, os, sys
from mmincseg import tasks
from mmincseg.apis.methods import get_method
for i, run in enumerate(sys.argv[1:]):
    try:
        with open(os.path.join(run, 'results.json')) as f:
            r = json.load(f)
        last = 0 if get_method(r['method']).all_classes_at_once else tasks.num_steps(r['task']) - 1
        finished = bool(r['steps']) and r['steps'][-1]['step'] == last
    except OSError:  # no results.json yet
        continue
    except (ValueError, KeyError, IndexError) as e:
        print(f'{run}/results.json: {e!r}', file=sys.stderr)
        continue
    if finished:
        print(i)
PYEOF
  ) || failed=1
  for i in "${!ROWS[@]}"; do
    if grep -qx "$i" <<< "$finished"; then done_rows+=("${ROWS[$i]}"); done_names+=("${NAMES[$i]}")
    else echo "${ROWS[$i]} did not finish: left out of its table"; failed=1; fi
  done
  if [ ${#done_rows[@]} = 0 ]; then echo "$what: no finished run"; failed=1; return; fi
  $PY tools/summarize_results.py "${done_rows[@]}" --names "${done_names[@]}" "$@" || failed=1
}

own() {  # own <method>...: 15-5 with its own step 0, then 15-1 from that step 0
  for m in "$@"; do
    # step 0 on the toy schedule (30 epochs, as the shared one), then step 1 with STEP_OPTS
    run configs/$m/bisenet_r18_toyvoc_15-5_step0.py --work-dir "$W/${m}_15-5" --steps 0
    run configs/$m/bisenet_r18_toyvoc_15-5_step0.py --work-dir "$W/${m}_15-5" --cfg-options $STEP_OPTS
    run configs/$m/bisenet_r18_toyvoc_15-1_step0.py --work-dir "$W/${m}_15-1" \
      --step0 "$W/${m}_15-5/step0" --cfg-options $STEP_OPTS
  done
}

if [ "$WHAT" = t2-job ]; then
  # t2-job <kind> [<method> [<split>]]: one run of table2-seeds for seed $SEED (kind base, joint,
  # own <method> or shared <method> <split>, the last waiting for its seed's step 0)
  kind=$2; m=${3:-}; split=${4:-}
  case $kind in
    base) rm -f "$W/base.failed"  # a failure of an earlier try
          run configs/ft/bisenet_r18_toyvoc_15-5_step0.py --work-dir "$W/base" --steps 0 \
            > "$W/base.log" 2>&1 || { touch "$W/base.failed"; exit 1; } ;;
    joint) run configs/joint/bisenet_r18_toyvoc_15-5.py --work-dir "$W/joint_15-5" \
             > "$W/joint.log" 2>&1 ;;
    own) own "$m" > "$W/own_$m.log" 2>&1 ;;
    shared)
      until [ -f "$W/base/step0/step_result.json" ]; do
        [ ! -f "$W/base.failed" ] || { echo "step 0 of seed $SEED failed: $W/base.log"; exit 1; }
        sleep 10
      done
      run configs/$m/bisenet_r18_toyvoc_${split}_step0.py --work-dir "$W/${m}_$split" \
        --step0 "$W/base/step0" --cfg-options $STEP_OPTS > "$W/${m}_$split.log" 2>&1 ;;
    *) echo "t2-job: unknown kind $kind"; exit 2 ;;
  esac
  exit 0
fi

if [ "$WHAT" = table2-seeds ] || [ "$WHAT" = table2-seeds-tables ]; then
  # Table 2 for seeds 0, 1, 2 (SEEDS to change): every run of the three seeds is one job of a
  # queue served by JOBS (default 2, one per core) workers, so both cores stay busy; finished
  # runs are skipped when re-run. The queue holds first every seed's step 0, Joint and 15-5
  # runs, then the 15-1 runs method by method (T2_15_1, default all shared methods; T2_15_1=
  # none) over the seeds, then the own-step-0 methods: a queue stopped early leaves whole rows.
  # Then the mean +- std tables in $WORK (a row averages the runs that finished; its `runs`
  # column says how many, and the missing ones are listed). `table2-seeds-tables` writes the
  # tables only, from the runs there are.
  SEEDS=${SEEDS:-"0 1 2"}
  T2_15_1=${T2_15_1-$T2_SHARED}
  queue=()
  for k in $SEEDS; do
    queue+=("$k base" "$k joint")
    for m in $T2_SHARED; do queue+=("$k shared $m 15-5"); done
  done
  for m in $T2_15_1; do for k in $SEEDS; do queue+=("$k shared $m 15-1"); done; done
  for m in $T2_OWN; do for k in $SEEDS; do queue+=("$k own $m"); done; done
  [ "$WHAT" = table2-seeds-tables ] || printf '%s\n' "${queue[@]}" | xargs -P "${JOBS:-2}" \
    -L 1 sh -c 'export SEED=$1; exec bash "$0" t2-job "$2" "$3" "$4"' "$SELF" || failed=$?
  T=$BASE
  for split in 15-5 15-1; do
    ROWS=(); NAMES=()
    if [ "$split" = 15-5 ]; then methods="$T2_SHARED"; else methods="$T2_15_1"; fi
    for m in $methods $T2_OWN joint; do
      for k in $SEEDS; do
        if [ "$k" = 0 ]; then dir=$T; else dir=$T/seed$k; fi
        if [ "$m" = joint ]; then row "$dir/joint_15-5" "$m"; else row "$dir/${m}_$split" "$m"; fi
      done
    done
    summarize "table2-seeds $split" --md "$T/table2_${split}_seeds.md" \
      --png "$T/table2_${split}_seeds.png"
  done
  exit $failed
fi

if [ "$WHAT" = table2 ] || [ "$WHAT" = table2-shared ] || [ "$WHAT" = all ]; then
  # Step 0 (classes 0-15) is the same for FT, LwF, ILT, MiB, PLOP and for 15-5 / 15-1: train it
  # once, beside the Joint upper bound.
  run configs/ft/bisenet_r18_toyvoc_15-5_step0.py --work-dir "$W/base" --steps 0 > "$W/base.log" 2>&1 &
  run configs/joint/bisenet_r18_toyvoc_15-5.py --work-dir "$W/joint_15-5" > "$W/joint.log" 2>&1 &
  wait
  for split in 15-5 15-1; do
    (
      for m in $T2_SHARED; do
        run configs/$m/bisenet_r18_toyvoc_${split}_step0.py --work-dir "$W/${m}_$split" \
          --step0 "$W/base/step0" --cfg-options $STEP_OPTS
      done
    ) > "$W/chain_$split.log" 2>&1 &
  done
  wait
fi
if [ "$WHAT" = table2 ] || [ "$WHAT" = table2-own ] || [ "$WHAT" = all ]; then
  # two chains, one per core: the 1st, 3rd, ... methods and the 2nd, 4th, ...
  chain_a=(); chain_b=(); i=0
  for m in $T2_OWN; do
    if [ $((i % 2)) = 0 ]; then chain_a+=("$m"); else chain_b+=("$m"); fi; i=$((i + 1))
  done
  ( own "${chain_a[@]}" ) > "$W/chain_own_a.log" 2>&1 &
  [ ${#chain_b[@]} = 0 ] || ( own "${chain_b[@]}" ) > "$W/chain_own_b.log" 2>&1 &
  wait
fi
if [ "$WHAT" = table2 ] || [ "$WHAT" = all ]; then
  # Joint's model has all classes: the same run gives the 15-1 columns (base 0-15, novel 16-20).
  table2_rows 15-5 "$W/joint_15-5"
  table2_rows 15-1 "$W/joint_15-5"
fi

if [ "$WHAT" = table10-1 ] || [ "$WHAT" = all ]; then
  # 10-1 (step 0: classes 0-10, then ten steps of one class) for FT, MiB and PLOP on one step 0;
  # Joint reported in the 10-1 columns (base 0-10, novel 11-20).
  run configs/ft/bisenet_r18_toyvoc_10-1_step0.py --work-dir "$W/base_10-1" --steps 0 > "$W/base_10-1.log" 2>&1 &
  run configs/joint/bisenet_r18_toyvoc_10-1.py --work-dir "$W/joint_10-1" > "$W/joint_10-1.log" 2>&1 &
  wait
  ( for m in ft mib; do
      run configs/$m/bisenet_r18_toyvoc_10-1_step0.py --work-dir "$W/${m}_10-1" \
        --step0 "$W/base_10-1/step0" --cfg-options $STEP_OPTS
    done ) > "$W/chain_10-1_a.log" 2>&1 &
  run configs/plop/bisenet_r18_toyvoc_10-1_step0.py --work-dir "$W/plop_10-1" \
    --step0 "$W/base_10-1/step0" --cfg-options $STEP_OPTS > "$W/chain_10-1_b.log" 2>&1 &
  wait
  $PY tools/summarize_results.py $W/{ft,mib,plop,joint}_10-1 --names FT MiB PLOP Joint \
    --md "$W/table2_10-1.md" --png "$W/table2_10-1.png"
fi

if [ "$WHAT" = orders ] || [ "$WHAT" = all ]; then
  # 15-1 over three class orders (incremental.order): the identity order is table2's runs (its
  # step 0 $W/base and mib_15-1 / ft_15-1), each other order trains its own step 0 (its first 15
  # classes differ). Chains run side by side; tables: per order, mean +- std over the orders,
  # and per class (original class ids, last step).
  ORDERS=${ORDERS:-"random:1 random:2"}
  order_chain() {  # order_chain <run dir> <step-0 dir> [order]
    # (the order option, or the seed again when there is none: --cfg-options needs a value)
    local opt="randomness.seed=$SEED"; [ -n "${3:-}" ] && opt="incremental.order=$3"
    # step 0 as table2's base (the 15-5 config: 15-5 and 15-1 share step 0)
    [ -f "$2/step0/step_result.json" ] || run configs/ft/bisenet_r18_toyvoc_15-5_step0.py \
      --work-dir "$2" --steps 0 --cfg-options "$opt"
    for m in mib ft; do
      run configs/$m/bisenet_r18_toyvoc_15-1_step0.py --work-dir "$1/${m}_15-1" \
        --step0 "$2/step0" --cfg-options $STEP_OPTS "$opt"
    done
  }
  order_chain "$W" "$W/base" > "$W/chain_order_identity.log" 2>&1 &
  for o in $ORDERS; do
    d="$W/order_${o//:/}"; mkdir -p "$d"
    order_chain "$d" "$d/base" "$o" > "$W/chain_order_${o//:/}.log" 2>&1 &
  done
  wait
  runs=(); names=(); all=(); all_names=()
  for m in mib ft; do
    runs+=("$W/${m}_15-1"); names+=("${m}-identity")
    all+=("$W/${m}_15-1"); all_names+=("$m")
    for o in $ORDERS; do
      runs+=("$W/order_${o//:/}/${m}_15-1"); names+=("${m}-${o}")
      all+=("$W/order_${o//:/}/${m}_15-1"); all_names+=("$m")
    done
  done
  $PY tools/summarize_results.py "${runs[@]}" --names "${names[@]}" --md "$W/orders_15-1.md" \
    --per-class-md "$W/orders_15-1_per_class.md"
  $PY tools/summarize_results.py "${all[@]}" --names "${all_names[@]}" \
    --md "$W/orders_15-1_mean.md" --png "$W/orders_15-1.png"
fi

if [ "$WHAT" = ade ] || [ "$WHAT" = all ]; then
  # The toy ADE20K (tools/make_toy_ade.py, 150 classes, no test split: its val is the only
  # held-out set, and no choice was made on it): one 100-class step 0 shared by MiB and FT on
  # 100-50 and 100-10, each split a chain; per-class tables of the last step.
  A=${ADE_DATA:-data/toyade}
  $PY tools/make_toy_ade.py --out "$A" --seed 0 > /dev/null
  runa() { $PY tools/run_incremental.py "$@" --data-root "$A" --cfg-options randomness.seed=$SEED; }
  runa configs/ft/bisenet_r18_toyade_100-50_step0.py --work-dir "$W/ade_base" --steps 0 \
    > "$W/ade_base.log" 2>&1
  for split in 100-50 100-10; do
    ( for m in mib ft; do
        runa configs/$m/bisenet_r18_toyade_${split}_step0.py --work-dir "$W/ade_${m}_$split" \
          --step0 "$W/ade_base/step0" --cfg-options $STEP_OPTS
      done ) > "$W/chain_ade_$split.log" 2>&1 &
  done
  wait
  for split in 100-50 100-10; do
    $PY tools/summarize_results.py "$W"/ade_{mib,ft}_$split --names MiB FT \
      --md "$W/ade_$split.md" --png "$W/ade_$split.png" --per-class-md "$W/ade_${split}_per_class.md"
  done
fi

if [ "$WHAT" = kd ] || [ "$WHAT" = all ]; then
  # Distillation choices on one step 0 (the same model as table2's base: classes 0-15):
  # MiB 15-1 with MiB's authors' weight 100 (the configs' default) against the paper's 10, and
  # MiB 15-5 distilled on the 1/8 logits (default) against label size (model.distill_at='label').
  [ -f "$W/base/step0/step_result.json" ] || \
    run configs/mib/bisenet_r18_toyvoc_15-1_step0.py --work-dir "$W/base" --steps 0 > "$W/base.log" 2>&1
  (
    run configs/mib/bisenet_r18_toyvoc_15-1_step0.py --work-dir "$W/mib_15-1" --step0 "$W/base/step0" \
      --cfg-options $STEP_OPTS
    run configs/mib/bisenet_r18_toyvoc_15-5_step0.py --work-dir "$W/mib_15-5" --step0 "$W/base/step0" \
      --cfg-options $STEP_OPTS
  ) > "$W/chain_kd_a.log" 2>&1 &
  (
    run configs/mib/bisenet_r18_toyvoc_15-1_step0.py --work-dir "$W/mib_15-1_kd10" --step0 "$W/base/step0" \
      --cfg-options $STEP_OPTS incremental.kd_weight=10
    run configs/mib/bisenet_r18_toyvoc_15-5_step0.py --work-dir "$W/mib_15-5_kd_label" --step0 "$W/base/step0" \
      --cfg-options $STEP_OPTS model.distill_at=label
  ) > "$W/chain_kd_b.log" 2>&1 &
  wait
  $PY tools/summarize_results.py $W/mib_15-1_kd10 $W/mib_15-1 --names "MiB kd 10" "MiB kd 100" \
    --md "$W/kd_15-1.md" --png "$W/kd_15-1.png"
  $PY tools/summarize_results.py $W/mib_15-5 $W/mib_15-5_kd_label --names "KD on logits" "KD at label size" \
    --md "$W/kd_at_15-5.md" --png "$W/kd_at_15-5.png"
fi

if [ "$WHAT" = table3 ] || [ "$WHAT" = all ]; then
  # Seed's Table 3 on toy data, grown (issue 18): step 0 on true masks, steps > 0 from image-level
  # labels, on every split of T3_SPLITS (default "15-5 10-10 15-1"). Rows:
  #   MiB-S                the paper's: SEAM's pseudo-labels as SEAM makes them (no
  #                        max_foreground guard), MiB without the teacher's veto
  #   MiB-S + veto / + guard / + veto + guard   our additions (the mib_seam configs' default is
  #                        + veto + guard)
  #   FT-S                 fine-tuning on MiB-S's pseudo-labels
  #   WILSON               the localizer's online pseudo-labels (no files), from its own
  #                        sigmoid-loss step 0 (LwF-MC's)
  #   Joint-S              one SEAM for all 20 classes, no guard, the joint model on its labels
  # beside the true-mask rows FT, MiB, Joint (Table 2's runs; 10-10's own). A step's SEAM does not
  # depend on the segmentor, so it trains once per step: the variants copy MiB-S's seam/ (and its
  # pseudo-labels where the guard is the same). Each results.md has the pseudo-label (WILSON:
  # online pseudo-label) mIoU and the train seconds of every step.
  NOVETO="model.old_class_veto=False"
  NOGUARD="incremental.seam.cfg_options.model.test_cfg.max_foreground=None"
  reuse() {  # reuse <from run> <to run> <item>...: copy each step's items not there yet
    local from=$1 to=$2; shift 2
    for step_dir in "$from"/step[1-9] "$from"/step[1-9][0-9]; do  # not step1.old-* backups
      [ -d "$step_dir" ] || continue
      local target="$to/$(basename "$step_dir")"
      mkdir -p "$target"
      for d in "$@"; do
        [ -e "$target/$d" ] || [ ! -e "$step_dir/$d" ] || cp -r "$step_dir/$d" "$target/"
      done
    done
  }
  base_of() { if [ "$1" = 10-10 ]; then echo "$W/base_10-10"; else echo "$W/base"; fi; }
  t3() {  # t3 <run options>: a run of table3 whose failure is recorded, not fatal to its chain
    run "$@" || { echo "table3: failed: $*" >> "$W/table3_failed.txt"; return 0; }
  }
  weak() {  # weak <split>: every weak row of the split, one after another
    local b; b=$(base_of "$1")
    local cfg=bisenet_r18_toyvoc_$1_step0.py labels="seam pseudo_labels pseudo_label_metrics.json"
    [ -f "$b/step0/step_result.json" ] || \
      t3 configs/ft/$cfg --work-dir "$b" --steps 0 > "$b.log" 2>&1
    if [ "$1" = 10-10 ]; then  # the true-mask rows of 10-10 (15-5 / 15-1: Table 2's)
      for m in ft mib; do
        t3 configs/$m/$cfg --work-dir "$W/${m}_$1" --step0 "$b/step0" --cfg-options $STEP_OPTS \
          > "$W/${m}_$1.log" 2>&1
      done
    fi
    t3 configs/mib_seam/$cfg --work-dir "$W/mib_seam_$1" --step0 "$b/step0" \
      --cfg-options $STEP_OPTS $NOVETO $NOGUARD > "$W/mib_seam_$1.log" 2>&1
    reuse "$W/mib_seam_$1" "$W/mib_seam_veto_$1" $labels
    t3 configs/mib_seam/$cfg --work-dir "$W/mib_seam_veto_$1" --step0 "$b/step0" \
      --cfg-options $STEP_OPTS $NOGUARD > "$W/mib_seam_veto_$1.log" 2>&1
    reuse "$W/mib_seam_$1" "$W/mib_seam_guard_$1" seam
    t3 configs/mib_seam/$cfg --work-dir "$W/mib_seam_guard_$1" --step0 "$b/step0" \
      --cfg-options $STEP_OPTS $NOVETO > "$W/mib_seam_guard_$1.log" 2>&1
    reuse "$W/mib_seam_guard_$1" "$W/mib_seam_veto_guard_$1" $labels
    t3 configs/mib_seam/$cfg --work-dir "$W/mib_seam_veto_guard_$1" --step0 "$b/step0" \
      --cfg-options $STEP_OPTS > "$W/mib_seam_veto_guard_$1.log" 2>&1
    reuse "$W/mib_seam_$1" "$W/ft_seam_$1" $labels
    t3 configs/ft_seam/$cfg --work-dir "$W/ft_seam_$1" --step0 "$b/step0" \
      --cfg-options $STEP_OPTS $NOGUARD > "$W/ft_seam_$1.log" 2>&1
    # WILSON's step 0 trains with MiB's sigmoid loss (its run.sh's FT_bce), not on the shared
    # CE step 0: it resolves to LwF-MC's step 0 (a test checks), so table2's lwf_mc_15-5 step 0
    # serves 15-5 and 15-1 when it is there; else it is trained here once per step-0 split
    local wb="$W/wilson_base_$1"
    if [ "$1" != 10-10 ] && [ -f "$W/lwf_mc_15-5/step0/step_result.json" ]; then
      wb="$W/lwf_mc_15-5"
    elif [ "$1" != 10-10 ]; then wb="$W/wilson_base_15"; fi
    [ -f "$wb/step0/step_result.json" ] || \
      t3 configs/wilson/$cfg --work-dir "$wb" --steps 0 > "$wb.log" 2>&1
    t3 configs/wilson/$cfg --work-dir "$W/wilson_$1" --step0 "$wb/step0" \
      --cfg-options $STEP_OPTS > "$W/wilson_$1.log" 2>&1
  }
  joint_of() { if [ "$1" = 10-10 ]; then echo "$2_10-10"; else echo "$2_15-5"; fi; }
  T3_SPLITS=${T3_SPLITS:-"15-5 10-10 15-1"}
  ( for split in $T3_SPLITS; do weak "$split"; done ) &
  (
    # Joint-S (and Joint) have every class: a run per base / novel column split (1-15 for 15-5
    # and 15-1, 1-10 for 10-10), the same training
    for split in $T3_SPLITS; do
      js=$(joint_of "$split" "$W/joint_seam") j=$(joint_of "$split" "$W/joint")
      task=${js##*_}
      [ -f "$j/results.json" ] || t3 configs/joint/bisenet_r18_toyvoc_$task.py --work-dir "$j" \
        > "$j.log" 2>&1
      t3 configs/joint_seam/bisenet_r18_toyvoc_$task.py --work-dir "$js" \
        --cfg-options $NOGUARD > "$js.log" 2>&1
    done
  ) &
  wait
  for split in $T3_SPLITS; do
    ROWS=(); NAMES=()
    row "$W/ft_seam_$split" FT-S; row "$W/ft_$split" FT; row "$W/mib_seam_$split" MiB-S
    row "$W/mib_seam_veto_$split" "MiB-S + veto"; row "$W/mib_seam_guard_$split" "MiB-S + guard"
    row "$W/mib_seam_veto_guard_$split" "MiB-S + veto + guard"; row "$W/mib_$split" MiB
    row "$W/wilson_$split" WILSON; row "$(joint_of "$split" "$W/joint_seam")" Joint-S
    row "$(joint_of "$split" "$W/joint")" Joint
    summarize "table3 $split" --md "$W/table3_$split.md" --png "$W/table3_$split.png"
  done
  [ ! -f "$W/table3_failed.txt" ] || { cat "$W/table3_failed.txt"; failed=1; }
fi

if [ "$WHAT" = seam-switches ]; then
  # SEAM as its authors train it, switch by switch (issue 18 item 1): the 15-5 step-1 SEAM with
  # SEAM's defaults ("faithful") and with each of its fidelity switches set back to the simpler
  # variant, each trained once (tools/train.py) and scored on the step's images of toy VAL over
  # a range of background scores (tools/seam_alpha_sweep.py: the alpha is chosen here, on val).
  # One chain (a SEAM and its sweep: ~5 min of one core); JSON per variant in $W/seam_switches/.
  # SWITCHES picks variants (default all), SEAM_OPTS adds options to every SEAM (e.g. a short
  # schedule for a smoke test, with WORK= elsewhere).
  S="$W/seam_switches"; mkdir -p "$S"
  ALPHAS="0.16 0.21 0.26 0.31 0.36 0.41 0.46 0.51"
  declare -A SWITCH=(
    [faithful]=""
    [no_dropout]="model.dropout_ratio=0"
    [max_norm]="model.cam_norm=max model.test_cfg.norm=max"
    [pcm_all_channels]="model.pcm_suppress_non_max=False"
    [embed_gain_1]="model.pcm_embed_init_gain=1.0"
    [ecr_through_cam]="model.ecr_detach_target=False model.ecr_max_onehot=False"
    [no_min_pool]="model.loss_min_pool_weight=0"
    [backbone_all_trained]="model.backbone.frozen_stages=-1 model.backbone.norm_eval=False model.backbone.norm_cfg.requires_grad=True"
  )
  VARIANTS=${SWITCHES:-"faithful no_dropout max_norm pcm_all_channels embed_gain_1 ecr_through_cam
                        no_min_pool backbone_all_trained"}
  for v in $VARIANTS; do  # every name checked before hours of training
    [ -n "${SWITCH[$v]+set}" ] || { echo "seam-switches: unknown variant $v (valid:" \
      "${!SWITCH[*]})"; exit 2; }
  done
  for v in $VARIANTS; do
    opts="incremental.step=1 randomness.seed=$SEED ${SWITCH[$v]} ${SEAM_OPTS:-}"
    # (no end-of-training validation: the sweep below is the measure, as in the weak steps; a
    # SEAM trained again gets a new sweep)
    if [ ! -f "$S/$v/step1/seam/step_result.json" ]; then
      rm -f "$S/$v.json"
      $PY tools/train.py configs/seam/seam_r18_toyvoc_15-5.py --work-dir "$S/$v" \
        --data-root "$D" --cfg-options $opts train_cfg.val_begin=1000000000 > "$S/$v.log" 2>&1 \
        || { echo "seam-switches: $v: training failed, see $S/$v.log"; failed=1; continue; }
    fi
    ckpt=$(ls "$S/$v"/step1/seam/epoch_*.pth 2>/dev/null | sort -V | tail -1) || true
    [ -n "$ckpt" ] || { echo "seam-switches: $v: no checkpoint in $S/$v/step1/seam"; failed=1
                        continue; }
    [ -f "$S/$v.json" ] || $PY tools/seam_alpha_sweep.py configs/seam/seam_r18_toyvoc_15-5.py \
      "$ckpt" --alphas $ALPHAS --ann-file ImageSets/Segmentation/val.txt --data-root "$D" \
      --out "$S/$v.json" --cfg-options $opts model.test_cfg.max_foreground=None >> "$S/$v.log" 2>&1 \
      || { echo "seam-switches: $v: sweep failed, see $S/$v.log"; failed=1; }
  done
  # the table of this call's variants only
  $PY - "$S" $VARIANTS <<'PYEOF' > "$W/seam_switches.md"
import json, os, sys
d, variants = sys.argv[1], sys.argv[2:]
print('| SEAM variant | val mIoU at bg_alpha 0.26 | best bg_alpha (val) | val mIoU there |')
print('|---|---:|---:|---:|')
for v in variants:
    path = os.path.join(d, v + '.json')
    if not os.path.isfile(path):
        print(f'| {v} | not measured | | |')
        continue
    r = json.load(open(path))
    at = {a['bg_alpha']: a['mIoU'] for a in r['alphas']}
    print(f"| {v} | {at.get(0.26)} | {r['best']} | {at.get(r['best'])} |")
PYEOF
  cat "$W/seam_switches.md"
fi

if [ "$WHAT" = negatives ] || [ "$WHAT" = all ]; then
  # One-class steps (15-1) of MiB-S without and with negatives for each step's SEAM (the
  # previous model's confident old-class pixels, incremental.seam.negatives), on table2's step 0.
  [ -f "$W/base/step0/step_result.json" ] || \
    run configs/ft/bisenet_r18_toyvoc_15-5_step0.py --work-dir "$W/base" --steps 0 > "$W/base.log" 2>&1
  # (the configs' MiB-S, veto and guard on: table3's "MiB-S + veto + guard" run, whose folder
  # it shares; table3's mib_seam_15-1 is the faithful MiB-S)
  for m in mib_seam mib_seam_neg; do
    dir="$W/${m}_15-1"; [ "$m" = mib_seam_neg ] || dir="$W/mib_seam_veto_guard_15-1"
    run configs/$m/bisenet_r18_toyvoc_15-1_step0.py --work-dir "$dir" \
      --step0 "$W/base/step0" --cfg-options $STEP_OPTS > "$dir.log" 2>&1 &
  done
  wait
  $PY tools/summarize_results.py $W/mib_seam_veto_guard_15-1 $W/mib_seam_neg_15-1 \
    --names "MiB-S" "MiB-S + negatives" --md "$W/negatives_15-1.md"
fi

if [ "$WHAT" = claim ]; then
  # The seed's headline claim on toy data: BiSeNet V1 inside MiB reaches MiB's DeepLabV3-R101
  # (output stride 16) in less training time. MiB 15-5 (step 0, then step 1) and MiB 15-1 (steps
  # 1-5 on that step 0) for BiSeNet-R18 (the other tables' reference), BiSeNet-R101 (our mmseg
  # shape and the seed's) and DeepLabV3-R101, all fine-tuned from the toy "ImageNet" ResNetV1c
  # (made first if not cached, so no run waits for it); same data and schedule (steps > 0:
  # STEP_OPTS). Strictly one run after another (no `&`): the train seconds must not share the
  # machine, so run it alone on a quiet machine. OMP_NUM_THREADS is the caller's: on a CPU give
  # it every core (OMP_NUM_THREADS=2 bash tools/toy_tables.sh claim; the default above is 1). With
  # CUDA the runs train on the GPU: mmengine's Runner moves the model to get_device() (CUDA when
  # available) and no config names a device. Not part of `all`.
  # Writes claim_15-5.md / claim_15-1.md (base / novel / all mIoU after the last step, train s of
  # all steps: 15-1's include its reused step 0) and claim_seconds.md (train s of every step).
  CLAIM_MODELS=${CLAIM_MODELS:-"bisenet_r101 bisenet_seed_r101 deeplabv3_r101 bisenet_r18"}
  $PY tools/toy_pretrain.py --arch resnet18_v1c > /dev/null
  $PY tools/toy_pretrain.py --arch resnet101_v1c > /dev/null
  # 15-5 of every model first (step 0 + step 1), then the 15-1 runs: a run cut short leaves whole
  # 15-5 rows, and re-running the target skips the finished steps.
  for m in $CLAIM_MODELS; do
    run configs/mib/${m}_toyvoc_15-5_step0.py --work-dir "$W/claim_${m}_15-5" --steps 0 \
      >> "$W/claim_${m}_15-5.log" 2>&1
    run configs/mib/${m}_toyvoc_15-5_step0.py --work-dir "$W/claim_${m}_15-5" \
      --cfg-options $STEP_OPTS >> "$W/claim_${m}_15-5.log" 2>&1
  done
  for m in $CLAIM_MODELS; do
    run configs/mib/${m}_toyvoc_15-1_step0.py --work-dir "$W/claim_${m}_15-1" \
      --step0 "$W/claim_${m}_15-5/step0" --cfg-options $STEP_OPTS >> "$W/claim_${m}_15-1.log" 2>&1
  done
  for split in 15-5 15-1; do
    runs=(); names=()
    for m in $CLAIM_MODELS; do runs+=("$W/claim_${m}_$split"); names+=("$m"); done
    $PY tools/summarize_results.py "${runs[@]}" --names "${names[@]}" --md "$W/claim_$split.md"
  done
  # train_seconds of each step's step_result.json (15-1's step 0 is 15-5's, not repeated)
  $PY - "$W" $CLAIM_MODELS <<'EOF' | tee "$W/claim_seconds.md"
import json, sys
work, models = sys.argv[1], sys.argv[2:]
print('| model | split | step | train s |\n|---|---|---:|---:|')
for m in models:
    for split, steps in (('15-5', range(2)), ('15-1', range(1, 6))):
        for t in steps:
            with open(f'{work}/claim_{m}_{split}/step{t}/step_result.json') as f:
                print(f"| {m} | {split} | {t} | {json.load(f)['train_seconds']} |")
EOF
fi

if [ "$WHAT" = claim-lr ]; then
  # The claim's caveat: its DeepLabV3-R101 trains at the lr chosen for BiSeNet-R18 (0.05; MiB
  # trains DeepLabV3 at 0.01 on VOC). MiB 15-5 of DeepLabV3-R101 at each lr of CLAIM_LRS (default
  # "0.01 0.02"; steps > 0 at lr x lr_factor, STEP_OPTS epochs), one chain each beside the other;
  # the claim's run is the lr 0.05 row. Toy val of step 0 chooses the lr, test is reported.
  # Writes claim_lr_15-5.md (step 0 val / test, 1-15 / 16-20 / all test after step 1). Not in `all`.
  CL_LRS=${CLAIM_LRS:-"0.01 0.02"}
  $PY tools/toy_pretrain.py --arch resnet101_v1c > /dev/null
  CL_CFG=configs/mib/deeplabv3_r101_toyvoc_15-5_step0.py
  for lr in $CL_LRS; do
    wd="$W/claim_deeplabv3_r101_lr${lr}_15-5"
    {
      run $CL_CFG --work-dir "$wd" --steps 0 --cfg-options optim_wrapper.optimizer.lr=$lr
      run $CL_CFG --work-dir "$wd" --cfg-options optim_wrapper.optimizer.lr=$lr $STEP_OPTS
    } >> "$wd.log" 2>&1 &
  done
  wait  # (a chain that failed leaves its row out of the table below, or its step 1 as '-')
  CL_RUNS=("0.05 $W/claim_deeplabv3_r101_15-5")
  for lr in $CL_LRS; do CL_RUNS+=("$lr $W/claim_deeplabv3_r101_lr${lr}_15-5"); done
  $PY - "${CL_RUNS[@]}" <<'PYEOF' | tee "$W/claim_lr_15-5.md" || failed=1
import json, sys
print('| DeepLabV3-R101 step-0 lr | step 0 val | step 0 test | 1-15 | 16-20 | all | train s |')
print('|---:|---:|---:|---:|---:|---:|---:|')
for spec in sys.argv[1:]:
    lr, run = spec.split(' ', 1)
    try:
        with open(f'{run}/results.json') as f:
            steps = json.load(f)['steps']
    except OSError:
        print(f'{run}: no results.json, left out', file=sys.stderr)
        continue
    s0, last = steps[0], steps[-1]
    after = (f"{last['mIoU_old']} | {last['mIoU_new']} | {last['mIoU']}" if last['step'] == 1
             else '- | - | -')
    secs = round(sum(s['train_seconds'] for s in steps))
    print(f"| {lr} | {s0['val']['mIoU']} | {s0['mIoU']} | {after} | {secs} |")
PYEOF
fi

if [ "$WHAT" = models ]; then
  # docs/results_models.md: other mmseg models made incremental by the same mechanism, toy 15-5,
  # MiB and FT (FT reuses MiB's step 0), one seed. CPU budget: M_EPOCHS (default 8) epochs for
  # step 0 and step 1 instead of the toy schedule's 30 / 15; the R101 models start from the toy
  # ResNetV1c-101, SegFormer-B0 from the toy MiT-B0, BiSeNetV2 from scratch (as mmseg trains it).
  # Two chains, one per core. Not part of `all`.
  E_M=${M_EPOCHS:-8}
  M_OPTS="train_cfg.max_epochs=$E_M param_scheduler.0.end=$E_M"
  mchain() {
    for m in "$@"; do
      run configs/mib/${m}_toyvoc_15-5_step0.py --work-dir "$W/models_mib_$m" --cfg-options $M_OPTS
      run configs/ft/${m}_toyvoc_15-5_step0.py --work-dir "$W/models_ft_$m" \
        --step0 "$W/models_mib_$m/step0" --cfg-options $M_OPTS
    done
  }
  M_A=${M_A-"deeplabv3plus_r101 segformer_b0 bisenet_r18"}  # BiSeNet-R18: the same 8-epoch steps
  M_B=${M_B-"pspnet_r101 bisenetv2"}
  mchain $M_A >> "$W/models_a.log" 2>&1 &
  mchain $M_B >> "$W/models_b.log" 2>&1 &
  wait
  ROWS=(); NAMES=()
  for m in $M_A $M_B; do row "$W/models_ft_$m" "$m FT"; row "$W/models_mib_$m" "$m MiB"; done
  summarize models --md "$W/models_15-5.md"
  # step 0 (val and test) and the train seconds of every step (FT's step 0 is MiB's)
  $PY - "$W" $M_A $M_B <<'PYEOF' | tee "$W/models_steps.md" || failed=1
import json, sys
work, models = sys.argv[1], sys.argv[2:]
print('| model | step 0 val | step 0 test | step 0 s | FT step 1 s | MiB step 1 s |')
print('|---|---:|---:|---:|---:|---:|')
for m in models:
    try:
        steps = {meth: json.load(open(f'{work}/models_{meth}_{m}/results.json'))['steps']
                 for meth in ('mib', 'ft')}
    except (OSError, ValueError, KeyError) as e:
        print(f'{m}: {e!r}, left out', file=sys.stderr)
        continue
    s0 = steps['mib'][0]
    secs = [round(s[-1]['train_seconds']) if s[-1]['step'] == 1 else '-'
            for s in (steps['ft'], steps['mib'])]
    print(f"| {m} | {s0['val']['mIoU']} | {s0['mIoU']} | {round(s0['train_seconds'])} | "
          f"{secs[0]} | {secs[1]} |")
PYEOF
fi
if [ "$WHAT" = table1 ] || [ "$WHAT" = all ]; then
  # Seed's Table 1 on toy data: BiSeNet R18 / R50 / R101 trained jointly, mIoU and pixel accuracy.
  # CPU budget: T1_EPOCHS (default 8) epochs each instead of the toy schedule's 30.
  E=${T1_EPOCHS:-8}
  t1() {
    for spec in "$@"; do
      set -- $spec
      run configs/joint/bisenet_$1_toyvoc_20-0.py --work-dir "$W/table1_$1_lr$2_bs$3" \
        --cfg-options optim_wrapper.optimizer.lr=$2 train_dataloader.batch_size=$3 \
        train_cfg.max_epochs=$E param_scheduler.0.end=$E > "$W/table1_$1_lr$2_bs$3.log" 2>&1
    done
  }
  # Two chains, one per core, of about equal length (the first R50 run makes the toy R50
  # pretraining if it is not cached); finished runs are skipped by run_incremental.py.
  t1 "r50 0.05 8" "r50 0.1 16" "r18 0.05 8" &
  t1 "r101 0.05 8" "r101 0.1 16" "r18 0.1 16" &
  wait
  $PY tools/summarize_results.py $W/table1_r{18,50,101}_lr{0.05_bs8,0.1_bs16} --md "$W/table1.md" \
    --names R18-lr0.05-bs8 R18-lr0.1-bs16 R50-lr0.05-bs8 R50-lr0.1-bs16 R101-lr0.05-bs8 R101-lr0.1-bs16
fi

exit $failed
