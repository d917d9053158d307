// Command pingid-bench measures pingid-ssh end to end (see package bench) and prints one
// table of figures with their targets. It exits 1 only when a figure cannot be measured;
// a missed target is reported in the table, not as a failure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/bench"
)

func main() { os.Exit(run()) }

func run() int {
	c := bench.Config{Progress: os.Stderr, Log: zerolog.Nop()}
	flag.StringVar(&c.Bin, "bin", "bin/pingid-ssh", "the pingid-ssh binary to measure")
	flag.IntVar(&c.SocketLogins, "socket-logins", 2000, "sequential logins through the socket")
	flag.IntVar(&c.HelperLogins, "helper-logins", 200, "sequential logins through pam-helper")
	flag.IntVar(&c.FailoverRounds, "failover-rounds", 5, "rounds per fault")
	flag.IntVar(&c.Concurrency, "concurrency", 64, "concurrent sessions under load")
	flag.DurationVar(&c.LoadDuration, "duration", 20*time.Second, "length of the load")
	flag.IntVar(&c.EngineRounds, "engine-rounds", 3, "benchmark rounds per engine side")
	flag.DurationVar(&c.ConnectTimeout, "connect-timeout", time.Second, "connect_timeout")
	flag.BoolVar(&c.KeepDir, "keep", false, "keep the working directory and the daemon log")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	fmt.Println("machine:", bench.Machine())
	res, err := bench.Run(ctx, c)
	if res != nil {
		fmt.Println()
		res.Table(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pingid-bench:", err)
		return 1
	}
	return 0
}
