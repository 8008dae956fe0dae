//go:build race

package ring

// raceEnabled is true when the tests run under the race detector, which
// slows every memory read in the lookup loop about tenfold; the balance and
// movement tests then place fewer keys.
const raceEnabled = true
