#!/usr/bin/env bash
# Re-run every figure in docs/BENCHMARKS.md.
#
#   docs/run_benchmarks.sh                 # all stages, full test sets (hours on a 2-core CPU)
#   LIMIT=300 docs/run_benchmarks.sh       # a random sample of 300 questions per SQuAD run (seed SEED)
#   docs/run_benchmarks.sh seed scifact    # only some stages: seed latency scifact reader v11-open v11-closed baseline threshold early-exit v20 boundaries
#
# Environment: LIMIT (questions per SQuAD run; empty = all), SEED (default 0), READER
# (sentence|neural|auto, default neural), PRECISION (the neural reader's: auto|fp32|bf16|int8,
# default auto = bf16 where the CPU has it natively), BASELINE_LIMIT (questions of the sentence-reader
# baseline run, default 1000), DATA (default ../shared/data next to the repo),
# THRESHOLD_SET (SQuAD-format file to choose the SQuAD 2.0 abstention threshold on; never squad/),
# HELDOUT (only its contexts the neural reader did not train on, per mille; default 50, 0 = all),
# TLIMIT (questions for the threshold runs; default all of them), V20_OPEN_LIMIT (questions of the
# open SQuAD 2.0 run when LIMIT is empty; default 2000, as in BENCHMARKS.md; empty = all 11,873),
# READER_DIR (a neural reader folder to score instead of the shipped qa/models/reader, e.g. a
# candidate from qa.train_reader).
# Reports land in eval-output/bench/<stage>/ (report.json, questions.csv, plots).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-$(cd .. && pwd)/shared/data}
SEED=${SEED:-0}
READER=${READER:-neural}
PRECISION=${PRECISION:-auto}
BASELINE_LIMIT=${BASELINE_LIMIT:-1000}
LIMIT=${LIMIT:-}
TLIMIT=${TLIMIT:-}
V20_OPEN_LIMIT=${V20_OPEN_LIMIT-2000}
HELDOUT=${HELDOUT:-50}
THRESHOLD_SET=${THRESHOLD_SET:-$DATA/qa-train/new_wiki_v1.0.json}
OUT=${OUT:-eval-output/bench}
STAGES=${*:-seed latency scifact reader v11-open v11-closed baseline threshold early-exit v20}

limit_args() { if [ -n "$1" ]; then echo "--limit $1 --seed $SEED"; fi; }
READER_DIR=${READER_DIR:-}
run() {
  local name=$1; shift; set -- "$@" --reader-precision "$PRECISION"
  if [ -n "$READER_DIR" ]; then set -- "$@" --reader-dir "$READER_DIR"; fi
  echo "== $name: $PY -m qa.eval $*"; $PY -m qa.eval "$@" --out "$OUT/$name"
}
heldout_args() { if [ "$HELDOUT" != 0 ]; then echo "--heldout-only $HELDOUT"; fi; }

for stage in $STAGES; do
  case $stage in
    seed)
      run seed-open-$READER tests/data/seed_questions.jsonl --reader "$READER"
      run seed-closed-$READER tests/data/seed_questions.jsonl --closed --reader "$READER" ;;
    latency)
      # ask() on the seed index, whole call and reader alone, reading every passage (1.0)
      # against stopping after the best-retrieved one when it is confident (QASettings.early_exit).
      $PY docs/bench/latency.py --early-exit 1.0 0.9 0.8 0.7 0.6 0.5 --repeat 5 --reader-precision "$PRECISION" ;;
    reader)
      # The reader alone: SQuAD v1.1 gold paragraphs, 1,000 questions, in each precision, with
      # the latency of one extract() over 5 paragraphs.
      for p in fp32 bf16 int8; do
        $PY -m qa.train_reader --eval-only "$DATA/squad/dev-v1.1.json" --sample 1000 --precision $p --out "${READER_DIR:-qa/models/reader}"
      done ;;
    scifact)
      run scifact --beir "$DATA/beir-scifact" ;;
    boundaries)
      # Answer boundaries (qa.readers.boundaries) off and on, each question with its own paragraph.
      for part in tune check; do
        run boundaries-$part-off boundaries-$part --closed --no-boundaries
        run boundaries-$part boundaries-$part --closed
      done ;;
    v11-open)
      run squad11-open-$READER "$DATA/squad/dev-v1.1.json" --reader "$READER" $(limit_args "$LIMIT") ;;
    v11-closed)
      run squad11-closed-$READER "$DATA/squad/dev-v1.1.json" --closed --reader "$READER" $(limit_args "$LIMIT") ;;
    baseline)
      # The rule-based reader on a sample of the same open v1.1 set (the comparison the reader issue asks for).
      run squad11-open-sentence-$BASELINE_LIMIT "$DATA/squad/dev-v1.1.json" --reader sentence --limit "$BASELINE_LIMIT" --seed "$SEED" ;;
    threshold)
      # Choose abstention thresholds on other data: held-out qa-train contexts, half of the
      # questions made unanswerable: by pairing them with another article's context (documents
      # that are silent), by their SQuAD 2.0-like twins (qa.unanswerable), by twins that swap
      # a name or number for another one of the same context (twin-within), or by the near
      # misses written for them (written; qa/data/near_misses_heldout.jsonl, never trained on).
      # The open runs score with the reader alone (--decider off): they choose the reader's own
      # threshold, which decides where the answer-or-abstain model does not.
      run threshold-closed "$THRESHOLD_SET" --closed --add-unanswerable 0.5 $(heldout_args) --reader "$READER" $(limit_args "$TLIMIT")
      for k in twin twin-within written; do
        run threshold-closed-$k "$THRESHOLD_SET" --closed --add-unanswerable 0.5 --unanswerable-kind $k $(heldout_args) --reader "$READER" $(limit_args "$TLIMIT")
        # The open runs read every passage (--early-exit 1.0): the early-exit stage is chosen at
        # the threshold these give.
        run threshold-open-$k "$THRESHOLD_SET" --add-unanswerable 0.5 --unanswerable-kind $k $(heldout_args) --reader "$READER" --early-exit 1.0 --decider off $(limit_args "$TLIMIT")
      done
      for w in 0.8 1.0 0.5; do  # 0.8 is the engine's fusion_weight; the others check it
        run threshold-open-w$w "$THRESHOLD_SET" --add-unanswerable 0.5 $(heldout_args) --reader "$READER" --fusion-weight $w --early-exit 1.0 --decider off $(limit_args "$TLIMIT")
      done
      # The engine's default threshold (reader.json's threshold; write it there): the best mean F1
      # of the three open runs, documents that are silent and both kinds of near miss weighing
      # the same, each distinct question once, on a 0.01 grid.
      echo "engine threshold: $($PY -m qa.eval.choose threshold "$OUT/threshold-open-w0.8" "$OUT/threshold-open-twin" "$OUT/threshold-open-twin-within")" ;;
    early-exit)
      # Choose QASettings.early_exit on the held-out open runs: the lowest value whose F1 at the
      # engine threshold stays within 0.5 of reading every passage (the threshold stage's runs)
      # on every kind of unanswerables.
      cands=()
      for e in 0.5 0.6 0.7 0.8 0.9; do
        run early-exit-$e "$THRESHOLD_SET" --add-unanswerable 0.5 $(heldout_args) --reader "$READER" --early-exit $e --decider off $(limit_args "$TLIMIT")
        for k in twin twin-within; do
          run early-exit-$k-$e "$THRESHOLD_SET" --add-unanswerable 0.5 --unanswerable-kind $k $(heldout_args) --reader "$READER" --early-exit $e --decider off $(limit_args "$TLIMIT")
        done
        cands+=(--candidate $e "$OUT/early-exit-$e" "$OUT/early-exit-twin-$e" "$OUT/early-exit-twin-within-$e")
      done
      T=$($PY -c "import json; print(json.load(open('${READER_DIR:-qa/models/reader}/reader.json'))['threshold'])")
      echo "early_exit: $($PY -m qa.eval.choose early-exit --threshold "$T" \
        --reference "$OUT/threshold-open-w0.8" "$OUT/threshold-open-twin" "$OUT/threshold-open-twin-within" "${cands[@]}")" ;;
    v20)
      # SQuAD 2.0's unanswerable questions are written near misses: use the thresholds chosen
      # on the held-out near misses written the same way (the rule-made twins, which the reader
      # trains on, score too low to stand in for them).
      T_CLOSED=$($PY -m qa.eval.choose threshold "$OUT/threshold-closed-written")
      T_OPEN=$($PY -m qa.eval.choose threshold "$OUT/threshold-open-written")
      echo "thresholds chosen on $(basename "$THRESHOLD_SET"): closed $T_CLOSED, open $T_OPEN"
      run squad20-closed-$READER "$DATA/squad/dev-v2.0.json" --closed --reader "$READER" --min-score "$T_CLOSED" $(limit_args "$LIMIT")
      run squad20-open-$READER "$DATA/squad/dev-v2.0.json" --reader "$READER" --decider off --min-score "$T_OPEN" $(limit_args "${LIMIT:-$V20_OPEN_LIMIT}") ;;
    *)
      echo "unknown stage $stage; stages: seed latency scifact reader v11-open v11-closed baseline threshold early-exit v20 boundaries" >&2; exit 2 ;;
  esac
done
