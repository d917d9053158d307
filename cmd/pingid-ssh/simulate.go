package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// runSimulate implements "simulate": a local PingID API simulator on loopback, until
// SIGINT or SIGTERM.
func runSimulate(e *env, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return simulate(ctx, e, args)
}

// simulate runs the simulator until ctx ends. It writes the properties that fit it
// (--properties-out) and, with a generated certificate, its CA (--ca-out); --admin serves
// POST /fault?user=&kind= on a second loopback listener.
func simulate(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "simulate")
	listen := fs.String("listen", "127.0.0.1:0", "loopback address of the API")
	certFile := fs.String("cert", "", "server certificate (PEM); generated when empty")
	keyFile := fs.String("key", "", "server key (PEM) for --cert")
	caOut := fs.String("ca-out", "", "write the generated CA certificate here")
	usersFile := fs.String("users", "", "users file (JSON), required")
	propsOut := fs.String("properties-out", "", "write a matching pingid.properties here")
	admin := fs.String("admin", "", "loopback address for fault switching (POST /fault)")
	verbose := fs.Bool("verbose", false, "log every call")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	usage := func(msg string) int {
		fmt.Fprintf(e.stderr, "pingid-ssh simulate: %s\n", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments")
	case *usersFile == "":
		return usage("--users is required")
	case (*certFile == "") != (*keyFile == ""):
		return usage("--cert and --key go together")
	case *caOut != "" && *certFile != "":
		return usage("--ca-out needs a generated certificate (no --cert)")
	}

	users, err := pingidtest.LoadUsers(*usersFile)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}
	level := zerolog.InfoLevel
	if *verbose {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(e.stderr).Level(level).With().Timestamp().Logger()

	sim, err := pingidtest.Start(pingidtest.Options{Users: users, Listen: *listen,
		CertFile: *certFile, KeyFile: *keyFile, Log: log})
	if err != nil {
		fmt.Fprintln(e.stderr, "start simulator:", err)
		return 1
	}
	defer sim.Close()

	if *caOut != "" {
		if err := os.WriteFile(*caOut, sim.CACertPEM(), 0o644); err != nil {
			fmt.Fprintln(e.stderr, "write CA:", err)
			return 1
		}
	}
	if *propsOut != "" {
		if err := sim.WriteProperties(*propsOut); err != nil {
			fmt.Fprintln(e.stderr, "write properties:", err)
			return 1
		}
	}
	adminAddr := ""
	if *admin != "" {
		srv, addr, err := serveAdmin(*admin, sim.AdminHandler())
		if err != nil {
			fmt.Fprintln(e.stderr, "admin:", err)
			return 1
		}
		defer srv.Close()
		adminAddr = addr
	}

	fmt.Fprintf(e.stdout, "simulator: %s\n", sim.URL())
	if adminAddr != "" {
		fmt.Fprintf(e.stdout, "admin: http://%s/fault?user=&kind=\n", adminAddr)
	}
	<-ctx.Done()
	return 0
}

// serveAdmin serves h on a loopback address only.
func serveAdmin(addr string, h http.Handler) (*http.Server, string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, "", fmt.Errorf("%q is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener closed; the simulator keeps running without admin
		}
	}()
	return srv, ln.Addr().String(), nil
}
