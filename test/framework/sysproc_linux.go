package framework

import "syscall"

// childSysProcAttr puts each child in its own process group, so that Stop can
// signal everything it spawned, and has the kernel SIGKILL it if this process
// dies without running its cleanups (a test timeout, a SIGKILL).
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
