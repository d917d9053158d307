package session

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReaderAcceptsAndRefuses(t *testing.T) {
	tests := []struct {
		name string
		line string
		want *Message // nil: an ErrProtocol
	}{
		{"start", `{"type":"start","user":"alice","rhost":"::1","service":"sshd","tty":"ssh"}`,
			&Message{Type: TypeStart, User: "alice", RHost: "::1", Service: "sshd", TTY: "ssh"}},
		{"answer with escapes", `{"type":"answer","text":"a\"b\\c\u00e9"}`,
			&Message{Type: TypeAnswer, Text: "a\"b\\cé"}},
		{"cancel", `{"type":"cancel"}`, &Message{Type: TypeCancel}},
		{"repeated member", `{"type":"start","user":"alice","user":"root"}`, nil},
		{"member in other case", `{"TYPE":"cancel"}`, nil},
		{"unknown member", `{"type":"start","user":"a","admin":true}`, nil},
		{"nested object", `{"type":"start","user":{"name":"a"}}`, nil},
		{"array", `["start"]`, nil},
		{"two values", `{"type":"cancel"} {"type":"cancel"}`, nil},
		{"no type", `{"user":"alice"}`, nil},
		{"not json", `type=start`, nil},
		{"empty line", ``, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewReader(strings.NewReader(tc.line + "\n")).Read()
			if tc.want == nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("got %+v, %v; want a protocol error", m, err)
				}
				return
			}
			if err != nil || *m != *tc.want {
				t.Fatalf("got %+v, %v; want %+v", m, err, tc.want)
			}
		})
	}
}

func TestReaderBounds(t *testing.T) {
	long := `{"type":"answer","text":"` + strings.Repeat("a", MaxLine) + `"}` + "\n"
	if _, err := NewReader(strings.NewReader(long)).Read(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized line: %v", err)
	}
	if _, err := NewReader(strings.NewReader(`{"type":"cancel"}`)).Read(); !errors.Is(err,
		ErrProtocol) {
		t.Fatalf("line without newline: %v", err)
	}
	if _, err := NewReader(strings.NewReader("")).Read(); err != io.EOF {
		t.Fatalf("empty input: %v", err)
	}
}

func TestWriterKeepsLinesWithinTheBound(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	text := strings.Repeat("é\"", MaxLine) // escapes and two-byte characters
	if err := w.Write(&Message{Type: TypeInfo, Text: text}); err != nil {
		t.Fatal(err)
	}
	line := buf.Bytes()
	if len(line) > MaxLine || line[len(line)-1] != '\n' {
		t.Fatalf("line of %d bytes", len(line))
	}
	m, err := NewReader(&buf).Read()
	if err != nil || !utf8.ValidString(m.Text) || !strings.HasPrefix(text, m.Text) ||
		len(m.Text) == 0 {
		t.Fatalf("read back %d bytes, %v", len(m.Text), err)
	}
}

func TestRelayRefusesAnUnknownStatus(t *testing.T) {
	var sent bytes.Buffer
	conn := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(`{"type":"result","status":"granted"}` + "\n"), &sent}
	st, err := Relay(conn, Message{User: "alice"}, strings.NewReader(""), io.Discard)
	if st != StatusDeny || !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %s, %v", st, err)
	}
	if !strings.Contains(sent.String(), `"type":"start"`) {
		t.Fatalf("sent %q", sent.String())
	}
}
