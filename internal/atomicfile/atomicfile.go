// Package atomicfile replaces a file so that after a crash it holds either
// its old content or its new content, never a torn mix: the new content is
// written to a temporary file in the same directory, fsynced, renamed over
// the old file, and the directory is fsynced so the rename itself survives.
//
//	err := atomicfile.Write("/var/lib/stratum/n1/healthy", 0o644, strings.NewReader("1700000000000\n"))
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with everything read from r, with mode perm.
func Write(path string, perm os.FileMode, r io.Reader) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if err := fill(tmp, perm, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func fill(f *os.File, perm os.FileMode, r io.Reader) error {
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return f.Sync()
}
