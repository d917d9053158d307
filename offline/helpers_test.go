package offline

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/internal/testlog"
)

// fakeClock is a steppable clock safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is a Store over a fresh temporary tree with a host key in place.
type testEnv struct {
	dir   string
	cfg   *config.Config
	clock *fakeClock
	logs  *testlog.Buffer
	store *Store
}

// testConfig lays out key, devices and state under dir.
func testConfig(dir string, maxAttempts int) *config.Config {
	cfg := config.Default()
	cfg.OfflineKeyFile = filepath.Join(dir, "etc", "offline.key")
	cfg.OfflineDevicesPath = filepath.Join(dir, "devices", "${username}", ".localFallbackDevices")
	cfg.StateDir = filepath.Join(dir, "state")
	if maxAttempts > 0 {
		cfg.OfflineMaxAttempts = maxAttempts
	}
	return &cfg
}

func newTestEnv(t *testing.T, maxAttempts int) *testEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(dir, maxAttempts)
	if err := InitKey(cfg.OfflineKeyFile); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{dir: dir, cfg: cfg, clock: newFakeClock(), logs: &testlog.Buffer{}}
	e.store = e.newStore()
	return e
}

func (e *testEnv) newStore() *Store {
	return NewStore(e.cfg, Options{
		AllowInsecure: os.Geteuid() != 0,
		Clock:         e.clock.Now,
		Log:           zerolog.New(e.logs),
	})
}

func (e *testEnv) devicesPath(t *testing.T, user string) string {
	t.Helper()
	p, err := e.cfg.DevicesPath(user)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testDevice is a valid device with the product suite and a fixed 32-byte key.
func testDevice(id string) Device {
	return Device{ID: id, Name: "phone " + id, Suite: DefaultSuite,
		Key: []byte("0123456789abcdef0123456789abcdef"[:32])}
}

// answer is the code the device shows for challenge.
func answer(t *testing.T, d Device, challenge string) string {
	t.Helper()
	s, err := ParseSuite(d.Suite)
	if err != nil {
		t.Fatal(err)
	}
	code, err := s.Compute(d.Key, Input{Question: challenge})
	if err != nil {
		t.Fatal(err)
	}
	return code
}
