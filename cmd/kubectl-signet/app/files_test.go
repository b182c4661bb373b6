package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOutputDirRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	out := outputDir{dir: dir}
	if err := out.prepare(keyFile, certFile); err != nil {
		t.Fatal(err)
	}
	if _, err := out.write(keyFile, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := out.prepare(keyFile, certFile)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, keyFile)) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("prepare over an existing key: %v", err)
	}
	if _, err := out.write(keyFile, []byte("other"), 0o600); err == nil {
		t.Fatal("write over an existing key succeeded")
	}
	if data, _ := os.ReadFile(filepath.Join(dir, keyFile)); string(data) != "key" {
		t.Fatalf("the existing key changed to %q", data)
	}
}

func TestOutputDirForceReplacesWithMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	out := outputDir{dir: dir, force: true}
	if err := out.prepare(keyFile); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, keyFile)
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := out.write(keyFile, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if data, _ := os.ReadFile(p); string(data) != "new" {
		t.Errorf("content %q", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestOutputDirNewKeyIsPrivate(t *testing.T) {
	out := outputDir{dir: t.TempDir()}
	p, err := out.write(keyFile, []byte("key"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}
