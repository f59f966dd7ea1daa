#!/usr/bin/env bash
# scripts/bench (run by hand for the performance figures) still runs and
# reports what its readers rely on: a small zone signed by zonesign, its
# output validated, the incremental job on the patch road (in place, and
# with OUT removed before each run), each table row
# with a median wall time, CPU time, RSS, signature count and ratio, the
# run-by-run ratios, and the summary files.  scripts/bench-hsm too: its
# rows, and the two-process row.
. "$ZG_SRC/tests/lib/tap.sh"
zg_tmpdir
b="$ZG_SRC/scripts/bench"
o="$ZG_TMP/out"

"$b" sign --only zonesign --delegations 4000 --runs 2 --out "$o" \
    >"$ZG_TMP/sign.out" 2>&1
rc=$?
check "bench sign: exit 0 ($rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(tail -20 "$ZG_TMP/sign.out")"

# JOB NAME: the row of the tool NAME (a fixed string) in report-JOB.txt
row() {
    awk -v n="$2" 'index($0, n " ") == 1 && $NF == "ok"' "$o/report-$1.txt" 2>/dev/null
}
# JOB NAME: its row is there, ok, with wall (three decimals), cpu, rss,
# RRSIGs (more than none) and ratio as numbers
good_row() {
    row "$1" "$2" | awk '{
        n = NF; ok = NR == 1 && $(n - 5) ~ /^[0-9]+\.[0-9][0-9][0-9]$/;
        for (i = n - 4; i < n; i++) ok = ok && $i ~ /^[0-9]+(\.[0-9]+)?$/;
        ok = ok && $(n - 2) > 0 } END { exit !(NR == 1 && ok) }'
}
sigs() { row "$1" "$2" | awk '{ print $(NF - 2) }'; }

check "bench sign: zonesign's row, ok, every figure a number" good_row sign zonesign
diag "zonesign's output: $(sigs sign zonesign) RRSIGs"
check "bench sign: the full run's row" good_row incremental "zonesign (full)"
check "bench sign: the patched run's row" good_row incremental "zonesign --previous"
check "bench sign: both with the same RRSIG count" \
    test "$(sigs incremental "zonesign (full)")" = "$(sigs incremental "zonesign --previous")"
check "bench sign: the patched run took the patch road" \
    grep -q "road 'patched'" "$o/report-incremental.txt"
check "bench sign: run-by-run ratios and the CPU ratio reported" \
    grep -Eq '^  zonesign --previous: per round [0-9.]+ [0-9.]+ \(median [0-9.]+\); cpu ratio [0-9.]+$' \
    "$o/report-incremental.txt"
check "bench sign: summary.tsv and runs.tsv written" \
    test -s "$o/summary.tsv" -a -s "$o/runs.tsv"
check "bench sign: runs.tsv has both runs of the five rows, each exit 0" \
    test "$(awk -F '\t' 'NR > 1 && $9 == 0' "$o/runs.tsv" | wc -l)" -eq 10
# the incremental job runs in place (the second run writes over the
# first's OUT, kept as the spare), and once more with OUT removed before
# each run (no spare is ever made)
check "bench sign: the patched run as a new file, its row" \
    good_row incremental "  ... new OUT"
check "bench sign: in place, the full and the patched runs left spares" \
    test -f "$o/sign/incremental/.full.zone.spare" -a \
    -f "$o/sign/incremental/.incremental.zone.spare"
check "bench sign: the patched run as a new file left none" \
    test -f "$o/sign/incremental/newout.zone" -a \
    ! -e "$o/sign/incremental/.newout.zone.spare"
check "bench sign: the commands are printed" \
    grep -q -- "--previous $o" "$o/report-incremental.txt"

# scripts/bench-hsm: every path's row for both algorithms with a rate, and
# the two-process row (two bench_hsm processes at once, their rates summed)
"$ZG_SRC/scripts/bench-hsm" --build "$ZG_BUILD" --seconds 0.3 --rounds 1 \
    >"$ZG_TMP/hsm.out" 2>&1
rc=$?
check "bench-hsm: exit 0 ($rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(tail -20 "$ZG_TMP/hsm.out")"
for alg in 13 8; do
    check "bench-hsm: alg $alg: twelve rows of one path, tokens and threads, each a rate" \
        test "$(grep -E "alg $alg +tokens [0-9] +threads [12] +[0-9]+ sig/s" "$ZG_TMP/hsm.out" |
                awk '$(NF - 1) > 0' | wc -l)" -eq 12
    check "bench-hsm: alg $alg: the pool through signing helpers, 1 and 2 threads" \
        test "$(grep -Ec "^hsm-pool-helpers +alg $alg +tokens 3 +threads [12] +[1-9][0-9]* sig/s$" "$ZG_TMP/hsm.out")" -eq 2
done
check "bench-hsm: the two-process row, a rate" \
    grep -Eq '^raw-C_Sign-sesscopy +alg 13 +tokens 1 processes 2 x 1 thread +[1-9][0-9]* sig/s \(the sum of two at once\)$' \
    "$ZG_TMP/hsm.out"
done_testing
