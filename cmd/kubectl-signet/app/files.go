package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Output file names, as in a kubernetes.io/tls Secret.
const (
	keyFile  = "tls.key"
	certFile = "tls.crt"
	caFile   = "ca.crt"
)

// outputDir writes the key and certificates of one request into a directory.
// Without force it never replaces a file; with force it replaces each one
// atomically, so a reader never sees half a key.
type outputDir struct {
	dir   string
	force bool
}

func (o outputDir) path(name string) string { return filepath.Join(o.dir, name) }

// prepare creates the directory and, unless force is set, fails if any of
// names exists, before anything is generated or requested.
func (o outputDir) prepare(names ...string) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("creating the output directory: %w", err)
	}
	if o.force {
		return nil
	}
	var existing []string
	for _, n := range names {
		if _, err := os.Lstat(o.path(n)); err == nil {
			existing = append(existing, o.path(n))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(existing) > 0 {
		return fmt.Errorf("%s already exists; pass --force to overwrite, or choose another --out-dir", strings.Join(existing, ", "))
	}
	return nil
}

// write writes data to name with mode perm (the mode is applied even when
// the file is replaced).
func (o outputDir) write(name string, data []byte, perm fs.FileMode) (string, error) {
	p := o.path(name)
	if !o.force {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			return p, fmt.Errorf("%s already exists; pass --force to overwrite", p)
		}
		if err != nil {
			return p, err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			os.Remove(p)
			return p, fmt.Errorf("writing %s: %w", p, err)
		}
		return p, f.Close()
	}
	tmp, err := os.CreateTemp(o.dir, "."+name+".*")
	if err != nil {
		return p, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return p, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return p, fmt.Errorf("writing %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return p, err
	}
	return p, os.Rename(tmp.Name(), p)
}
