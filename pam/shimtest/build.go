// Package shimtest is test support for the PAM shim pam_pingid.so: it compiles the module from
// source and plays the session side of the shim protocol from a script, either as a server on
// a unix socket (standing in for `pingid-ssh serve`) or as the helper process the shim runs
// when no daemon listens (standing in for `pingid-ssh pam-helper`).
//
// Nothing here is used by the product; it exists so that tests of the shim, and end-to-end
// tests through sshd, run against real libpam and real sockets.
package shimtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// Flags are the compiler flags of the shipped build (see pam/Makefile).
var Flags = []string{"-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"}

// buildTimeout bounds one compiler run.
const buildTimeout = 2 * time.Minute

// Source returns the absolute path of pam/pam_pingid.c, found relative to this package's
// source file. It fails when the source tree is not present (a binary built with -trimpath
// and moved elsewhere).
func Source() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("locate pam_pingid.c: no caller information")
	}
	src := filepath.Join(filepath.Dir(file), "..", "pam_pingid.c")
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("locate pam_pingid.c: %w", err)
	}
	return src, nil
}

// Build compiles pam_pingid.c with cc into dir/name (name "pam_pingid.so" when empty) with the
// shipped flags followed by extra, and returns the absolute path of the module. The compiler's
// output is part of the error when it fails.
func Build(dir, name string, extra ...string) (string, error) {
	src, err := Source()
	if err != nil {
		return "", err
	}
	if name == "" {
		name = "pam_pingid.so"
	}
	out, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("build shim: %w", err)
	}
	args := append(append(append([]string{}, Flags...), extra...), "-o", out, src, "-lpam")
	if err := runCC(args); err != nil {
		return "", fmt.Errorf("build shim: %w", err)
	}
	return out, nil
}

// CompileProgram compiles the C program src into dir/name, linked with -lpam, for test
// drivers; it returns the absolute path of the executable.
func CompileProgram(dir, name, src string, extra ...string) (string, error) {
	out, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("compile %s: %w", name, err)
	}
	args := append([]string{"-O1", "-g", "-Wall", "-Wextra", "-Werror"}, extra...)
	args = append(args, "-o", out, src, "-lpam")
	if err := runCC(args); err != nil {
		return "", fmt.Errorf("compile %s: %w", name, err)
	}
	return out, nil
}

func runCC(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "cc", args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cc: %w\n%s", err, out.Bytes())
	}
	return nil
}
