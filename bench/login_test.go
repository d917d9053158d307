package bench

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/offline"
	"github.com/pingid-ssh/pingid-ssh/online"
	"github.com/pingid-ssh/pingid-ssh/session"
)

// BenchmarkSocketLogin runs the daemon's side of a login in this process (session.Load,
// a prober, Runtime.Run per unix connection) against the simulator, so that a CPU
// profile of the login path can be taken with -cpuprofile. The simulator's own work
// shows up in the profile too; focus on session, online and offline.
func BenchmarkSocketLogin(b *testing.B) {
	ctx := context.Background()
	e := &Env{Dir: b.TempDir(), ConnectTimeout: time.Second}
	e.Conf = e.Dir + "/etc/pingid.conf"
	e.Sock = e.Dir + "/pingid.sock"
	if err := e.prepare(Options{ConnectTimeout: time.Second, ProbeInterval: 15 * time.Second,
		Log: zerolog.Nop()}); err != nil {
		b.Fatal(err)
	}
	defer e.Sim.Close()
	opts := config.LoadOptions{AllowInsecure: os.Geteuid() != 0}
	rt, err := session.Load(ctx, e.Conf, opts, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	if err := offline.InitKey(rt.Config.OfflineKeyFile); err != nil {
		b.Fatal(err)
	}
	rt.Prober = online.NewProber(rt.Client, rt.Config.ProbeInterval, zerolog.Nop(), nil)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go rt.Prober.Run(pctx)

	ln, err := net.Listen("unix", e.Sock)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rt.Run(ctx, c, c)
			}()
		}
	}()

	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			out, err := e.SocketLogin(ctx)
			if err != nil || out.Status != session.StatusSuccess {
				b.Errorf("login: %v %s", err, out.Status)
				return
			}
		}
	})
}
