package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/session"
)

// runPamHelper implements "pam-helper": one login over stdin and stdout, for the shim
// when no daemon answers. Everything is loaded fresh; if anything fails to load the login
// is denied (there is no last good config to fall back on). Exit 0 when the session ran.
func runPamHelper(e *env, args []string) int {
	fs := newFlagSet(e, "pam-helper")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	return runStandalone(e, *cfgPath, e.stdin, e.stdout)
}

// runStandalone loads a runtime and runs one session over r and w.
func runStandalone(e *env, path string, r io.Reader, w io.Writer) int {
	log := zerolog.New(e.stderr).With().Timestamp().Logger()
	rt, closeLog, err := loadStandalone(e, path, &log)
	defer closeLog()
	if err != nil {
		log.Error().Str("component", "session").Err(err).Str("event", "login").
			Str("result", "deny").
			Msg("standalone session: cannot load; denying")
		_ = session.NewWriter(w).Write(&session.Message{Type: session.TypeResult,
			Status: session.StatusDeny})
		return 1
	}
	defer rt.Client.Close()
	rt.Run(context.Background(), r, w)
	return 0
}

// loadStandalone reads the config once, switches *log to the config's logger (closeLog
// closes its file; it is never nil), and builds the runtime from that same config.
func loadStandalone(e *env, path string, log *zerolog.Logger,
) (rt *session.Runtime, closeLog func(), err error) {
	closeLog = func() {}
	cfg, _, err := config.Load(path, loadOptions(e))
	if err != nil {
		return nil, closeLog, fmt.Errorf("load config: %w", err)
	}
	if l, c, err := newLogger(e, cfg); err == nil {
		*log, closeLog = l, c
	}
	rt, err = session.Build(context.Background(), cfg, loadOptions(e), *log)
	return rt, closeLog, err
}

// runLogin implements "login": the shim's session on a terminal, through the daemon's
// socket or in-process with --standalone. Answers are read line by line from stdin.
// Exit 0 when PAM would have returned PAM_SUCCESS, 1 otherwise.
func runLogin(e *env, args []string) int {
	fs := newFlagSet(e, "login")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf")
	user := fs.String("user", "", "local user name (required)")
	rhost := fs.String("rhost", "", "remote host")
	service := fs.String("service", "sshd", "PAM service")
	tty := fs.String("tty", "ssh", "PAM tty")
	standalone := fs.Bool("standalone", false, "run the session in-process, not in the daemon")
	socket := fs.String("socket", "", "the daemon's socket (default: socket_path of --config)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *user == "" || fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "usage: pingid-ssh login --user NAME [--rhost IP] "+
			"[--service S] [--tty T] [--config F | --socket PATH] [--standalone]")
		return 2
	}
	start := session.Message{User: *user, RHost: *rhost, Service: *service, TTY: *tty}

	var status session.Status
	var err error
	if *standalone {
		status, err = loginInProcess(e, *cfgPath, start)
	} else {
		status, err = loginThroughSocket(e, *cfgPath, *socket, start)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "pingid-ssh login: %v\n", err)
	}
	fmt.Fprintf(e.stdout, "result: %s\n", status)
	if status == session.StatusSuccess || status == session.StatusBypass {
		return 0
	}
	return 1
}
