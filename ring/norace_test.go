//go:build !race

package ring

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = false
