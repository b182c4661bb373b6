package framework

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a process gets to exit after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// logTailLines is how much of a process's log an error carries.
const logTailLines = 30

// process is one child process in its own process group, logging to a file.
type process struct {
	name    string
	path    string
	args    []string
	logPath string

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
	err  error         // Wait's result, valid after done
	// signalOnce keeps a stopped process's group id, which the kernel may
	// hand out again, from being signalled twice.
	signalOnce sync.Once
}

// startProcess starts path with args, appending stdout and stderr to logPath.
func startProcess(name, path string, args []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child holds its own descriptor; ours is only for the header.
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== %s: %s %s\n", time.Now().Format(time.RFC3339), path, strings.Join(args, " "))

	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, path: path, args: args, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// errExited stops a wait for readiness when the process has ended.
var errExited = errors.New("process exited")

// exitError describes how the process ended, with the tail of its log, or
// wraps errAddrInUse if it lost a race for its port.
func (p *process) exitError() error {
	if lostPortRace(p) {
		return fmt.Errorf("%s: %w", p.name, errAddrInUse)
	}
	return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.name, p.err, p.logPath, tailFile(p.logPath, logTailLines))
}

// stop sends SIGTERM to the process group, then SIGKILL after grace, and
// returns once the process has been reaped. Safe to call more than once.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	p.signalOnce.Do(func() {
		if !p.exited() {
			p.signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(grace):
			}
		}
		// Even after the leader exits, other members of its group may remain.
		p.signal(syscall.SIGKILL)
	})
	<-p.done
}

// kill sends SIGKILL to the process group and waits until it is reaped.
func (p *process) kill() {
	if p == nil {
		return
	}
	p.signalOnce.Do(func() { p.signal(syscall.SIGKILL) })
	<-p.done
}

func (p *process) signal(sig syscall.Signal) {
	// A negative pid addresses the whole group; ESRCH means it is gone.
	_ = syscall.Kill(-p.Pid(), sig)
}

// tailFile returns the last n lines of path, or a note saying why it can't.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct free ports on 127.0.0.1. All listeners are held
// until the end so that the kernel cannot hand out the same port twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// errAddrInUse marks a start that lost a race for a port; callers pick new
// ports and retry.
var errAddrInUse = errors.New("address already in use")

// lostPortRace reports whether p exited because its port was taken.
func lostPortRace(p *process) bool {
	return p.exited() && strings.Contains(tailFile(p.logPath, logTailLines), "address already in use")
}
