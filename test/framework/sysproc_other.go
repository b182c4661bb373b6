//go:build !linux

package framework

import "syscall"

// childSysProcAttr puts each child in its own process group, so that Stop can
// signal everything it spawned. Outside Linux there is no parent-death signal:
// a harness killed without cleanup leaves its children running.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
