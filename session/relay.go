package session

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Relay plays the shim's part on a terminal or for a script: it sends start over conn,
// prints prompts, info and errors to out, answers each prompt with the next line of in,
// and returns the final status. A closed in cancels the login.
func Relay(conn io.ReadWriter, start Message, in io.Reader, out io.Writer) (Status, error) {
	start.Type = TypeStart
	w, r := NewWriter(conn), NewReader(conn)
	if err := w.Write(&start); err != nil {
		return StatusDeny, err
	}
	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 1024), MaxLine)
	for {
		m, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return StatusDeny, fmt.Errorf("read from session: %w", err)
		}
		switch m.Type {
		case TypeInfo, TypeError:
			fmt.Fprintln(out, m.Text)
		case TypePrompt:
			fmt.Fprint(out, m.Text)
			reply := &Message{Type: TypeCancel}
			if lines.Scan() {
				reply = &Message{Type: TypeAnswer, Text: lines.Text()}
			}
			fmt.Fprintln(out)
			if err := w.Write(reply); err != nil {
				return StatusDeny, err
			}
		case TypeResult:
			switch m.Status {
			case StatusSuccess, StatusBypass, StatusIgnore, StatusDeny, StatusMaxTries:
				return m.Status, nil
			}
			return StatusDeny, fmt.Errorf("%w: unknown status %q", ErrProtocol, m.Status)
		default:
			return StatusDeny, fmt.Errorf("%w: unexpected %q", ErrProtocol, m.Type)
		}
	}
}
