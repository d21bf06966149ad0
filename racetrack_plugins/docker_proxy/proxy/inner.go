package main

import (
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"unsafe"
)

const (
	prCapAmbient         = 47
	prCapAmbientClearAll = 4
)

// runInner runs in the job's own network namespace: it brings the loopback up, relays the
// outer half's connections to the server and the server's calls to Pub, starts the command
// and returns its exit code.
func runInner(dir string, command []string) int {
	if err := loopbackUp(); err != nil {
		log.Printf("racetrack proxy: cannot bring up the job's loopback: %v", err)
		return 2
	}
	// The command gets no capability from us, not even over its own namespace.
	_, _, _ = syscall.AllThreadsSyscall(syscall.SYS_PRCTL, prCapAmbient, prCapAmbientClearAll, 0)
	config, err := configFromEnv(os.Getenv)
	if err != nil {
		log.Printf("racetrack proxy: %v", err)
		return 2
	}
	listener, err := net.Listen("unix", filepath.Join(dir, "job.sock"))
	if err != nil {
		log.Printf("racetrack proxy: %v", err)
		return 2
	}
	server := net.JoinHostPort("127.0.0.1", config.UserPortText())
	go accept(listener, func() (net.Conn, error) { return net.Dial("tcp", server) })
	if config.PubAddress != "" {
		// PUB_URL names the host's loopback; here the same address leads to the outer half.
		if pub, err := net.Listen("tcp", config.PubAddress); err == nil {
			pubSocket := filepath.Join(dir, "pub.sock")
			go accept(pub, func() (net.Conn, error) { return net.Dial("unix", pubSocket) })
		}
	}
	path, err := exec.LookPath(command[0])
	if err != nil {
		log.Printf("racetrack proxy: the job's command %q: %v", command[0], err)
		return 127
	}
	child := exec.Command(path, command[1:]...)
	child.Args[0] = command[0]
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	if err := child.Start(); err != nil {
		log.Printf("racetrack proxy: cannot start %q: %v", command[0], err)
		return 126
	}
	go func() {
		for sig := range signals {
			_ = child.Process.Signal(sig)
		}
	}()
	err = child.Wait()
	if exitErr, ok := err.(*exec.ExitError); ok {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal())
		}
		return exitErr.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

func accept(listener net.Listener, dial func() (net.Conn, error)) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go splice(conn, dial)
	}
}

// loopbackUp sets IFF_UP on "lo" (a new network namespace starts with it down).
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var request struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(request.name[:], "lo")
	if err := ioctl(fd, syscall.SIOCGIFFLAGS, unsafe.Pointer(&request)); err != nil {
		return err
	}
	request.flags |= syscall.IFF_UP
	return ioctl(fd, syscall.SIOCSIFFLAGS, unsafe.Pointer(&request))
}

func ioctl(fd int, request uintptr, argument unsafe.Pointer) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), request, uintptr(argument))
	if errno != 0 {
		return errno
	}
	return nil
}
