#!/usr/bin/env bash
# Reproduces the engine-speed figures of docs/BENCHMARKS.md on synthetic checkpoints with
# real shapes (they measure speed, never quality):
#   - generation (tg64) on the "1B-body" shape (hidden 2048, intermediate 8192, 16 layers,
#     32/8 heads, vocab 32000, untied) at N = 1, 2, 3, 2bit and dense, 1 and 2 threads;
#   - prompt processing of 256 tokens, batched (default) and one token at a time;
#   - the ternary GEMV alone on Llama-3-8B layer shapes (bench --kernels).
# Every bench call also measures the memory bandwidth (STREAM triad) in the same run.
#
# Usage: tools/bench_speed.sh WORKDIR [REPETITIONS]     (WORKDIR needs ~6 GB free)
# Results: WORKDIR/results/*.json and a Markdown summary on stdout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/build"
work="${1:?usage: tools/bench_speed.sh WORKDIR [REPETITIONS]}"
reps="${2:-5}"
[ -x "$bin/bitttt" ] || "$root/tools/build.sh"
mkdir -p "$work/results"
res="$work/results"

if [ ! -f "$work/1b-body/model.safetensors" ]; then
  "$bin/bitttt-synth" model --preset 1b-body -o "$work/1b-body"
fi
for packing in 2bit dense; do
  for n in 1 2 3; do
    f="$work/body-n$n-$packing.btt"
    [ -f "$f" ] || "$bin/bitttt" convert "$work/1b-body" --bases "$n" --packing "$packing" -o "$f" -q
  done
done

for packing in 2bit dense; do
  for n in 1 2 3; do
    for t in 1 2; do
      echo "tg64: N=$n $packing, $t thread(s)" >&2
      "$bin/bitttt" bench "$work/body-n$n-$packing.btt" -p 0 -n 64 -r "$reps" -t "$t" --json -q \
        > "$res/tg-n$n-$packing-t$t.json"
    done
  done
done
for n in 1 2 3; do
  for batch in 32 1; do
    echo "pp256: N=$n 2bit, batch $batch" >&2
    "$bin/bitttt" bench "$work/body-n$n-2bit.btt" -p 256 -n 0 -r "$reps" -t 2 --batch "$batch" --json -q \
      > "$res/pp-n$n-batch$batch.json"
  done
done
for n in 1 3; do
  echo "tg64 with the maddubs design: N=$n 2bit, 2 threads" >&2
  BITTTT_TERNARY_KERNEL=maddubs "$bin/bitttt" bench "$work/body-n$n-2bit.btt" -p 0 -n 64 -r "$reps" -t 2 --json -q \
    > "$res/tg-n$n-2bit-t2-maddubs.json"
done
echo "profile: N=1 2bit, 2 threads" >&2
"$bin/bitttt" bench "$work/body-n1-2bit.btt" -p 0 -n 64 -r 1 -t 2 --profile --json -q > "$res/profile-n1.json"
echo "kernels: Llama-3-8B shapes" >&2
"$bin/bitttt" bench --kernels --shapes llama3-8b -r "$reps" -t 2 --json -q > "$res/kernels-8b-t2.json"
"$bin/bitttt" bench --kernels --shapes llama3-8b -r "$reps" -t 1 --json -q > "$res/kernels-8b-t1.json"

python3 - "$res" <<'EOF'
import json, sys, os
res = sys.argv[1]
def load(name):
    with open(os.path.join(res, name)) as f:
        return json.load(f)
print("### Generation, 1B-body (tg64)\n")
print("| N | packing | bits/weight (linear) | MB/token | threads | tg t/s mean ± sd | median | triad GB/s best (median) | % of bandwidth limit |")
print("|---|---|---|---|---|---|---|---|---|")
for packing in ("2bit", "dense"):
    for n in (1, 2, 3):
        for t in (1, 2):
            j = load(f"tg-n{n}-{packing}-t{t}.json")
            tg = j["tg_tokens_per_s"]
            print(f"| {n} | {packing} | {j['linear_bits_per_weight']:.2f} | {j['weight_bytes_per_token']/1e6:.0f} | {t} | "
                  f"{tg['mean']:.1f} ± {tg['sd']:.1f} | {tg['median']:.1f} | {j['bandwidth_gb_s']:.1f} ({j['bandwidth_gb_s_median']:.1f}) | "
                  f"{100*j['fraction_of_bandwidth_limit']:.0f}% |")
print("\n### Kernel design end to end, 1B-body tg64, 2bit, 2 threads\n")
print("| N | maddubs t/s | LUT t/s | LUT / maddubs |")
print("|---|---|---|---|")
for n in (1, 3):
    m = load(f"tg-n{n}-2bit-t2-maddubs.json")["tg_tokens_per_s"]
    l = load(f"tg-n{n}-2bit-t2.json")["tg_tokens_per_s"]
    print(f"| {n} | {m['mean']:.1f} ± {m['sd']:.1f} | {l['mean']:.1f} ± {l['sd']:.1f} | {l['mean']/m['mean']:.2f}x |")
print("\n### Prompt processing, 1B-body, 256 tokens, 2 threads, 2bit\n")
print("| N | batched (32) t/s | one at a time t/s | speed-up |")
print("|---|---|---|---|")
for n in (1, 2, 3):
    b = load(f"pp-n{n}-batch32.json")["pp_tokens_per_s"]
    o = load(f"pp-n{n}-batch1.json")["pp_tokens_per_s"]
    print(f"| {n} | {b['mean']:.1f} ± {b['sd']:.1f} | {o['mean']:.1f} ± {o['sd']:.1f} | {b['mean']/o['mean']:.2f}x |")
p = load("profile-n1.json")["profile"][0]
print(f"\n### Where a token's time goes (N=1 2bit, 2 threads, {1e3*p['seconds']/p['tokens']:.1f} ms/token)\n")
print("| op | ms/token | share |")
print("|---|---|---|")
for op in p["ops"]:
    print(f"| {op['op']} | {op['ms_per_token']:.3f} | {op['percent']:.1f}% |")
for t in (1, 2):
    k = load(f"kernels-8b-t{t}.json")
    print(f"\n### Ternary GEMV alone, Llama-3-8B shapes, {t} thread(s) (triad best {k.get('bandwidth_gb_s', 0):.1f} GB/s)\n")
    print("| tensor | shape | N | packing | scalar GB/s | AVX2 maddubs GB/s (speed-up) | AVX2 LUT GB/s (speed-up) | LUT % of bandwidth |")
    print("|---|---|---|---|---|---|---|---|")
    for r in k["kernels"]:
        a, b = r.get("avx2", {}), r.get("avx2_lut", {})
        print(f"| {r['tensor']} | {r['rows']}x{r['cols']} | {r['bases']} | {r['packing']} | {r['generic']['gb_s']:.2f} | "
              f"{a.get('gb_s', 0):.2f} ({r.get('avx2_speedup', 0):.1f}x) | {b.get('gb_s', 0):.2f} ({r.get('avx2_lut_speedup', 0):.1f}x) | "
              f"{b.get('percent_of_bandwidth', 0):.0f}% |")
EOF
