// Command pingid-ssh is the daemon, the PAM helper and the operator's CLI of pingid-ssh.
// It only parses flags and wires packages together; each command lives in its own file.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// env is what a command may touch of the process: its streams, arguments and environment.
// Commands take it instead of the os package so tests can run them in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// command runs with the arguments after its name and returns the process exit code:
// 0 for success, 1 for a negative outcome (a denied login), 2 for a usage or input error.
type command struct {
	summary string
	run     func(e *env, args []string) int
}

// commands is the table of top-level commands; a command with sub-commands dispatches
// them itself.
var commands = map[string]command{
	"decide": {"print the policy decision for an input file", runDecide},
	"policy": {"policy test|check: run override tests, check the deployed policy", runPolicy},
	"config": {"config check: validate pingid.conf and pingid.properties", runConfig},
	"serve":  {"run the daemon: socket, live reload, background probes", runServe},
	"login":  {"run one login on this terminal, as the PAM shim would", runLogin},

	"pam-helper": {"run one login over stdin/stdout (for the PAM shim)", runPamHelper},

	"offline":  {"offline init-key|status|respond|enroll|unlock: offline MFA tools", runOffline},
	"probe":    {"check whether the PingID API is reachable and print the class", runProbe},
	"simulate": {"run a local PingID API simulator with fault injection", runSimulate},
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(e, os.Args[1:]))
}

func run(e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(e.stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "pingid-ssh: unknown command %q\n", args[0])
		usage(e.stderr)
		return 2
	}
	return cmd.run(e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pingid-ssh COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-11s %s\n", name, commands[name].summary)
	}
}
