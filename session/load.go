package session

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/engine"
	"github.com/pingid-ssh/pingid-ssh/offline"
	"github.com/pingid-ssh/pingid-ssh/online"
)

// Load builds a Runtime from the config file at path: it reads and validates the config
// and the properties file, compiles the policy (running the override tests), and builds
// the PingID client and the device store. Nothing is half-built: any error returns no
// Runtime. The Runtime has no Prober; the daemon adds one.
func Load(ctx context.Context, path string, opts config.LoadOptions,
	log zerolog.Logger) (*Runtime, error) {
	cfg, _, err := config.Load(path, opts)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Build(ctx, cfg, opts, log)
}

// Build is Load for a config already loaded and validated: it reads the properties file,
// compiles the policy and builds the client and the store.
func Build(ctx context.Context, cfg *config.Config, opts config.LoadOptions,
	log zerolog.Logger) (*Runtime, error) {
	props, _, err := config.LoadProperties(cfg.PropertiesFile, opts)
	if err != nil {
		return nil, fmt.Errorf("load properties: %w", err)
	}
	set, err := engine.Load(ctx, cfg.PolicyDir, opts)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	client, err := online.New(cfg, props, log,
		online.WithLoadOptions(opts))
	if err != nil {
		return nil, fmt.Errorf("build client: %w", err)
	}
	store := offline.NewStore(cfg, offline.Options{AllowInsecure: opts.AllowInsecure,
		Log: log})
	return &Runtime{
		Config: cfg,
		Engine: engine.New(set, 0),
		Client: client,
		Store:  store,
		Log:    log.With().Str("component", "session").Logger(),
	}, nil
}
