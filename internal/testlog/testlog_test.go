package testlog

import (
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

func TestConcurrentWritesAndFind(t *testing.T) {
	var b Buffer
	log := zerolog.New(&b)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				log.Info().Int("j", j).Msg("tick")
			}
		}()
	}
	wg.Wait()
	log.Warn().Msg("done")
	if n := len(b.Entries(t)); n != 401 {
		t.Fatalf("%d entries, want 401", n)
	}
	if got := b.Find(t, "done"); len(got) != 1 || got[0]["level"] != "warn" {
		t.Fatalf("Find: %v", got)
	}
}
