// Package planted holds the deliberately planted bugs of the negative
// controls (docs/testing.md): each is a constant that is false in every
// normal build and true only when the binary or test is built with its
// build tag. A fault-injection suite that passes with a planted bug is not
// checking what it claims, so `make negative-controls` builds each bug in,
// runs the test that should catch it, and fails if that test passes.
//
// Never set these tags outside that target.
package planted
