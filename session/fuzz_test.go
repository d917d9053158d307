package session

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader: a line is a message or a protocol error, never a panic; an accepted
// message survives a round trip through the Writer.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"type":"start","user":"alice","rhost":"::1"}` + "\n"))
	f.Add([]byte(`{"type":"answer","text":"\u00e9\"\\"}` + "\n"))
	f.Add([]byte(`{"type":"start","user":"a","user":"b"}` + "\n"))
	f.Add([]byte("{\"TYPE\":\"cancel\"}\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for i := 0; i < 8; i++ {
			m, err := r.Read()
			if err != nil {
				if !errors.Is(err, ErrProtocol) && err != io.EOF {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			var buf bytes.Buffer
			if err := NewWriter(&buf).Write(m); err != nil {
				t.Fatalf("write back %+v: %v", m, err)
			}
			back, err := NewReader(&buf).Read()
			if err != nil || back.Type != m.Type || back.User != m.User {
				t.Fatalf("round trip of %+v gave %+v, %v", m, back, err)
			}
		}
	})
}
