package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/daemon"
	"github.com/pingid-ssh/pingid-ssh/online"
	"github.com/pingid-ssh/pingid-ssh/session"
	"github.com/pingid-ssh/pingid-ssh/watcher"
)

// generation is one loaded set of config, policy and clients, with its prober.
type generation struct {
	rt   *session.Runtime
	stop func()
}

// runServe implements "serve": the daemon. It exits 0 after a graceful stop (SIGTERM or
// SIGINT), 1 when it cannot start.
func runServe(e *env, args []string) int {
	fs := newFlagSet(e, "serve")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()

	cfg, err := loadConfig(e, *cfgPath)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	log, closeLog, err := newLogger(e, cfg)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	defer closeLog()
	if err := serve(ctx, *cfgPath, cfg, loadOptions(e), log); err != nil {
		log.Error().Str("component", "serve").Err(err).Msg("daemon stopped")
		return 1
	}
	return 0
}

func serve(ctx context.Context, path string, cfg *config.Config, opts config.LoadOptions,
	log zerolog.Logger) error {
	// Watch events carry absolute paths; a relative --config would never match them.
	path, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config path: %w", err)
	}
	slog := log.With().Str("component", "serve").Logger()
	load := func() (*generation, error) {
		rt, err := session.Load(ctx, path, opts, log)
		if err != nil {
			return nil, err
		}
		rt.Prober = online.NewProber(rt.Client, rt.Config.ProbeInterval, log, nil)
		pctx, stopProber := context.WithCancel(ctx)
		go rt.Prober.Run(pctx)
		stop := func() {
			stopProber()
			// Logins still running on this generation end within auth_timeout; its
			// kept-alive connections are closed then (idle ones at once), so that
			// reloads do not pile up connections until the idle timeout.
			go rt.Client.Close()
			time.AfterFunc(rt.Config.AuthTimeout, rt.Client.Close)
		}
		return &generation{rt: rt, stop: stop}, nil
	}
	first, err := load()
	if err != nil {
		return err
	}
	watched := watchDirs(path, first.rt.Config)
	if w := missingPolicyDir(first.rt.Config); w != "" {
		slog.Warn().Msg(w)
	}
	current := watcher.NewCurrent(first)
	defer func() { current.Load().stop() }()

	reload := func() error {
		next, err := load()
		if err != nil {
			return err
		}
		if next.rt.Config.SocketPath != cfg.SocketPath {
			slog.Warn().Str("socket_path", next.rt.Config.SocketPath).
				Msg("socket_path changes take effect at the next restart")
		}
		if !slices.Equal(watchDirs(path, next.rt.Config), watched) {
			slog.Warn().Strs("watched", watched).Msg("pingid_properties_file or policy_dir " +
				"moved: the new place is watched from the next restart; SIGHUP reloads now")
		}
		old := current.Swap(next)
		old.stop()
		slog.Info().Str("revision", next.rt.Engine.Set().Revision()).
			Str("fail_mode", string(next.rt.Config.FailMode)).Str("event", "configuration_active").
			Msg("new configuration active")
		return nil
	}
	w, err := watcher.New(watcher.Options{
		Dirs: watched,
		Relevant: func(p string) bool {
			return relevant(path, current.Load().rt.Config)(p)
		},
		Reload: reload,
		Log:    log,
	})
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	go func() { _ = w.Run(ctx) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			w.Trigger()
		}
	}()

	ln, err := daemon.Listen(cfg.SocketPath)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	euid := uint32(os.Geteuid())
	srv := &daemon.Server{
		Handler: func(ctx context.Context, conn net.Conn) {
			current.Load().rt.Run(ctx, conn, conn)
		},
		Log: log,
		// Root, and the daemon's own user when it runs unprivileged (a demo).
		AllowUID: func(uid uint32) bool { return uid == 0 || uid == euid },
	}
	slog.Info().Str("socket", cfg.SocketPath).Str("fail_mode", string(cfg.FailMode)).
		Str("revision", first.rt.Engine.Set().Revision()).Msg("serving")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Let running logins finish within one login's time.
	sctx, cancel := context.WithTimeout(context.Background(), current.Load().rt.Config.AuthTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; err == nil && !errors.Is(serr, daemon.ErrServerClosed) {
		err = serr
	}
	slog.Info().Msg("stopped")
	return err
}

// relevant tells the watcher which changed paths may change what is loaded: the config,
// properties and CA files, .rego files in policy_dir, policy_dir itself, and the
// ".."-names of an atomic symlink swap. A CA file is seen when it shares a watched
// directory; elsewhere, SIGHUP reloads it. Anything else sharing those directories (a log file, say)
// is ignored.
func relevant(path string, cfg *config.Config) func(string) bool {
	names := map[string]bool{
		filepath.Clean(path):               true,
		filepath.Clean(cfg.PropertiesFile): true,
		filepath.Clean(cfg.PolicyDir):      true,
	}
	for _, f := range []string{cfg.CAFile, cfg.ProxyCAFile} {
		if f != "" {
			names[filepath.Clean(f)] = true
		}
	}
	policyDir := filepath.Clean(cfg.PolicyDir)
	return func(p string) bool {
		p = filepath.Clean(p)
		base := filepath.Base(p)
		return names[p] || strings.HasPrefix(base, "..") ||
			filepath.Dir(p) == policyDir && strings.HasSuffix(base, ".rego")
	}
}

// watchDirs are the directories whose changes trigger a reload. A policy_dir that does
// not exist yet is watched through its parent.
func watchDirs(path string, cfg *config.Config) []string {
	dirs := []string{filepath.Dir(path), filepath.Dir(cfg.PropertiesFile)}
	if fi, err := os.Stat(cfg.PolicyDir); err == nil && fi.IsDir() {
		dirs = append(dirs, cfg.PolicyDir)
	} else {
		dirs = append(dirs, filepath.Dir(cfg.PolicyDir))
	}
	return dirs
}
