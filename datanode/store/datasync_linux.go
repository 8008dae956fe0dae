package store

import (
	"errors"
	"os"
	"syscall"
)

// datasync is fdatasync(2): it writes f's data and the metadata needed to
// read it back (a size it grew to), not its times. The value log's records
// land on zeros written ahead (vlog.go, "Zeros ahead of the end"), so this
// writes no journal commit for most of them.
func datasync(f *os.File, _ int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
