#!/usr/bin/env bash
# Draws perplexity against stored bits per weight (linear layers) from the TSV that
# tools/bench_quality.sh writes, with llama.cpp's figures on the same model and text for
# comparison (quoted from a side-by-side run: Q4_K_M falls back to q5/q8 on this model,
# Q2_K/Q3_K_M to iq4_nl, hence their approximate bit widths). Needs gnuplot (Debian's
# gnuplot-nox). Usage: tools/plot_quality.sh QUALITY.TSV OUT.png [F32_PERPLEXITY]
set -euo pipefail
tsv="${1:?usage: plot_quality.sh QUALITY.TSV OUT.png [F32_PERPLEXITY]}"
out="${2:?usage: plot_quality.sh QUALITY.TSV OUT.png [F32_PERPLEXITY]}"
f32="${3:-3.8867}"
command -v gnuplot >/dev/null || { echo "plot_quality.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One data file per method group, sorted by bits per weight.
groups=(greedy refined tied tied-dense tied+cal tied+feedback refined+feedback budget budget+feedback)
for g in "${groups[@]}"; do
  awk -F'\t' -v g="$g" 'NR > 1 && $2 == g { print $4, $6 }' "$tsv" | sort -n > "$tmp/$g.dat"
done
printf '5.5 3.9411 Q4_K_M\n4.5 4.09 Q2_K\n4.5 4.13 Q3_K_M\n' > "$tmp/llama.dat"
plot=""
for g in "${groups[@]}"; do
  [ -s "$tmp/$g.dat" ] && plot+="'$tmp/$g.dat' using 1:2 with linespoints title '$g', "
done
plot+="'$tmp/llama.dat' using 1:2 with points pt 7 ps 1.5 lc rgb 'black' title 'llama.cpp (same model and text)', "
plot+="'$tmp/llama.dat' using 1:2:3 with labels offset 0,1 notitle, "
plot+="$f32 with lines dt 2 lc rgb 'gray' title 'F32 ($f32)'"
gnuplot <<GP
set terminal pngcairo size 1000,650 font 'sans,11' noenhanced
set output '$out'
set title 'stories260K, TinyStories eval (ctx 256): perplexity against stored bits per weight'
set xlabel 'bits per weight, linear layers as stored (scales included)'
set ylabel 'perplexity (log scale)'
set logscale y
set yrange [3.8:12]
set ytics (4, 4.5, 5, 6, 7, 8, 10, 12)
set xrange [1.5:10]
set grid
set key top right
plot $plot
GP
echo "wrote $out"
