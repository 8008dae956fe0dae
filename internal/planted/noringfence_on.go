//go:build stratum_bug_noringfence

package planted

// NoRingFence: when true, a replica accepts a call made with an older ring revision than its own (no ring fencing).
const NoRingFence = true
