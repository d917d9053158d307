package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/online"
)

// runProbe implements "probe": one reachability check of the PingID API named by the
// properties file, bounded by connect_timeout. It prints the class and exits 0 whatever
// the class; 2 means the config or properties could not be used.
func runProbe(e *env, args []string) int {
	fs := newFlagSet(e, "probe")
	path := fs.String("config", config.DefaultPath, "pingid.conf to use")
	asJSON := fs.Bool("json", false, `print {"class", "latency_ms", "url"} as JSON`)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "usage: pingid-ssh probe [--config FILE] [--json]")
		return 2
	}

	cfg, err := loadConfig(e, *path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}
	opts := loadOptions(e)
	props, diags, err := config.LoadProperties(cfg.PropertiesFile, opts)
	printDiags(e, diags, err)
	if err != nil {
		return 2
	}
	log, closeLog, err := newLogger(e, cfg)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}
	defer closeLog()

	client, err := online.New(cfg, props, log, online.WithLoadOptions(opts))
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}
	defer client.Close()

	res := client.Probe(context.Background())
	if *asJSON {
		out, _ := json.Marshal(struct {
			Class     online.Class `json:"class"`
			LatencyMS int64        `json:"latency_ms"`
			URL       string       `json:"url"`
		}{res.Class, res.Latency.Milliseconds(), res.URL})
		fmt.Fprintln(e.stdout, string(out))
	} else {
		fmt.Fprintf(e.stdout, "%s %dms %s\n", res.Class, res.Latency.Milliseconds(), res.URL)
	}
	if res.Err != nil {
		fmt.Fprintln(e.stderr, res.Err)
	}
	return 0
}
