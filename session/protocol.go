package session

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// MaxLine is the longest protocol line, newline included.
const MaxLine = 4096

// Message types of the shim protocol.
const (
	TypeStart  = "start"
	TypeAnswer = "answer"
	TypeCancel = "cancel"
	TypePrompt = "prompt"
	TypeInfo   = "info"
	TypeError  = "error"
	TypeResult = "result"
)

// Status is the final word of a session; the shim maps it to a PAM code.
type Status string

// The statuses of a result message.
const (
	StatusSuccess  Status = "success"  // PAM_SUCCESS
	StatusBypass   Status = "bypass"   // PAM_SUCCESS, logged as a fail-open event
	StatusIgnore   Status = "ignore"   // PAM_IGNORE
	StatusDeny     Status = "deny"     // PAM_AUTH_ERR
	StatusMaxTries Status = "maxtries" // PAM_MAXTRIES
)

// Message is one protocol line in either direction. Which fields matter depends on Type.
type Message struct {
	Type    string `json:"type"`
	User    string `json:"user,omitempty"`
	RHost   string `json:"rhost,omitempty"`
	Service string `json:"service,omitempty"`
	TTY     string `json:"tty,omitempty"`
	Text    string `json:"text,omitempty"`
	Echo    *bool  `json:"echo,omitempty"`
	Status  Status `json:"status,omitempty"`
}

// ErrProtocol is wrapped by every error about a malformed line.
var ErrProtocol = errors.New("protocol error")

// Reader reads protocol lines. It is not safe for concurrent use.
type Reader struct {
	br *bufio.Reader
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, MaxLine)}
}

// Read returns the next message. A line longer than MaxLine, bytes that are not one JSON
// object, unknown fields or a missing type are ErrProtocol; the end of input is io.EOF.
func (r *Reader) Read() (*Message, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, MaxLine)
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, fmt.Errorf("%w: last line has no newline", ErrProtocol)
		}
		return nil, err
	}
	return parseLine(line)
}

func parseLine(line []byte) (*Message, error) {
	if err := checkKeys(line); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: more than one value on a line", ErrProtocol)
	}
	if m.Type == "" {
		return nil, fmt.Errorf("%w: message without type", ErrProtocol)
	}
	return &m, nil
}

// messageKeys are the members a line may have, spelled exactly so.
var messageKeys = map[string]bool{"type": true, "user": true, "rhost": true,
	"service": true, "tty": true, "text": true, "echo": true, "status": true}

// checkKeys accepts one flat JSON object whose members are known, spelled exactly and not
// repeated. encoding/json alone would match keys case-insensitively and let a repeated key
// win silently; the shim's parser refuses both, and so does this side.
func checkKeys(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if !messageKeys[key] {
			return fmt.Errorf("unknown member %q", truncateUTF8(key, 32))
		}
		if seen[key] {
			return fmt.Errorf("member %q repeated", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	return nil
}

// Writer writes protocol lines. It is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends m as one line. Text that would make the line longer than MaxLine is cut at
// a UTF-8 boundary, so a long server message can never break the protocol.
func (w *Writer) Write(m *Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.Type, err)
	}
	for len(data)+1 > MaxLine && m.Text != "" {
		// Escaping makes JSON longer than the text by a varying factor: shrink the text in
		// proportion, a few rounds at most.
		cut := *m
		cut.Text = truncateUTF8(m.Text, len(m.Text)*(MaxLine-64)/(len(data)+1))
		m = &cut
		if data, err = json.Marshal(m); err != nil {
			return fmt.Errorf("encode %s: %w", m.Type, err)
		}
	}
	data = append(data, '\n')

	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.w.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", m.Type, err)
	}
	return nil
}

// truncateUTF8 returns at most n bytes of s without splitting a character.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
