#!/usr/bin/env bash
# negative-controls.sh: build each deliberately planted bug (internal/planted)
# in, run the test that must catch it, and fail if that test passes. Each
# test also runs once without the bug and must pass: the failure must come
# from the bug. A checker that never fails is not a checker.
set -uo pipefail
cd "$(dirname "$0")/.."
controls=(
  "stratum_bug_nolease  ./tests          ^TestPrimaryCutFromEtcdServesNoStaleReads$"
  "stratum_bug_earlyack ./tests          ^TestHungReplicaNeverHoldsARequestPastItsDeadline$"
  "stratum_bug_nosync   ./datanode/store ^TestPowerLossKeepsAcknowledgedPuts$"
  "stratum_bug_earlyack ./tests          ^TestCrashLoop$"
  "stratum_bug_nosync   ./tests          ^TestFailingFsyncAcknowledgesNothing$"
  "stratum_bug_noringfence ./tests       ^TestStaleRingIsFenced$"
  "stratum_bug_gcpending ./datanode/store ^TestStoreModel$ 6"
  "stratum_bug_gcpending ./datanode/store ^TestCollectorKeepsASegmentWithAPendingAppend$"
  "stratum_bug_oldownerdeletes ./tests   ^TestDeleteDuringJoinStaysDeleted$"
  "stratum_bug_nomarker ./datanode/store ^TestStoreModelPowerLoss$"
)
failed=0
for c in "${controls[@]}"; do
  read -r tag pkg test count <<<"$c"
  count=${count:-1} # a randomized test runs several times: it must catch the bug in one of them
  if ! go test -count="$count" -run "$test" "$pkg" >/tmp/negative-control.log 2>&1; then
    echo "negative control $tag: $test fails even without the bug:"; tail -20 /tmp/negative-control.log
    failed=1; continue
  fi
  if STRATUM_TEST_TAGS=$tag go test -tags "$tag" -count="$count" -run "$test" "$pkg" >/tmp/negative-control.log 2>&1; then
    echo "negative control $tag: NOT DETECTED: $test passes with the bug built in"
    failed=1
  else
    echo "negative control $tag: detected by $test: $(grep -E '^\s+\S+_test.go:[0-9]+:' /tmp/negative-control.log | grep -v -e 'level=' -e 'stratum \[' | tail -1 | sed 's/^\s*//' | cut -c1-160)"
  fi
done
exit $failed
