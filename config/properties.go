package config

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Properties is a validated pingid.properties file from the PingID admin portal. It holds
// secrets: never log it or any of its fields but OrgAlias and the URLs.
type Properties struct {
	Path string

	// Key is the base64-decoded use_base64_key, the HMAC key of request signatures.
	Key              []byte
	UseSignature     bool
	Token            string
	IDPURL           string // without a trailing slash
	OrgAlias         string
	AdminURL         string
	AuthenticatorURL string
}

// String hides the secrets so that a Properties printed by mistake leaks nothing.
func (p *Properties) String() string {
	return fmt.Sprintf("Properties{org_alias=%s idp_url=%s}", p.OrgAlias, p.IDPURL)
}

// LoadProperties reads, checks and validates a pingid.properties file. Besides the checks
// of ReadTrusted, the file must not be readable by group or others: it holds the
// organisation's signing key.
func LoadProperties(path string, opts LoadOptions) (*Properties, []Diagnostic, error) {
	data, err := ReadTrusted(path, opts)
	if err != nil {
		return nil, nil, err
	}
	if fi, err := os.Stat(path); err != nil {
		return nil, nil, err
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 && !opts.Development {
		return nil, nil, fmt.Errorf("%s: %w: mode %04o lets others read the signing key; "+
			"chmod 600", path, ErrInsecureFile, perm)
	}
	return ParseProperties(path, strings.NewReader(string(data)))
}

// ParseProperties reads Java-style properties ("key=value" or "key: value", '#' and '!'
// comments, backslash escapes and line continuations).
func ParseProperties(name string, r io.Reader) (*Properties, []Diagnostic, error) {
	p := parser{file: name}
	props := &Properties{Path: name, UseSignature: true}
	required := map[string]bool{
		"use_base64_key": false, "token": false, "idp_url": false, "org_alias": false,
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxFileSize)
	line, start := 0, 0
	var logical strings.Builder
	for sc.Scan() {
		line++
		text := sc.Text()
		if logical.Len() == 0 {
			start = line
			text = strings.TrimLeft(text, " \t\f")
			if text == "" || text[0] == '#' || text[0] == '!' {
				continue
			}
		} else {
			text = strings.TrimLeft(text, " \t\f")
		}
		if continues(text) {
			logical.WriteString(text[:len(text)-1])
			continue
		}
		logical.WriteString(text)
		key, value, err := splitProperty(logical.String())
		logical.Reset()
		if err != nil {
			p.invalid(start, "%v", err)
			continue
		}
		if _, ok := required[key]; ok {
			required[key] = true
		}
		p.setProperty(props, start, key, value)
	}
	if logical.Len() > 0 {
		p.invalid(start, "line continuation at end of file")
	}
	if err := sc.Err(); err != nil {
		p.invalid(0, "read: %v", err)
	}
	for _, k := range []string{"use_base64_key", "token", "idp_url", "org_alias"} {
		if !required[k] {
			p.invalid(0, "%s is missing", k)
		}
	}

	if err := p.err(); err != nil {
		return nil, p.diags, err
	}
	return props, p.diags, nil
}

func (p *parser) setProperty(props *Properties, line int, key, value string) {
	switch key {
	case "use_base64_key":
		k, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			// Never echo the value: it is the signing key.
			p.invalid(line, "use_base64_key: not valid base64")
			return
		}
		if len(k) < 16 {
			p.invalid(line, "use_base64_key: key is %d bytes, fewer than 16", len(k))
			return
		}
		props.Key = k
	case "use_signature":
		p.bool(line, key, value, &props.UseSignature)
		if !props.UseSignature {
			p.invalid(line, "use_signature: false is not supported; requests are always signed")
		}
	case "token":
		if value == "" || hasControl(value) {
			p.invalid(line, "token: empty or contains control characters")
			return
		}
		props.Token = value
	case "org_alias":
		if value == "" || hasControl(value) {
			p.invalid(line, "org_alias: empty or contains control characters")
			return
		}
		props.OrgAlias = value
	case "idp_url":
		p.httpsURL(line, key, value, &props.IDPURL)
	case "admin_url":
		p.httpsURL(line, key, value, &props.AdminURL)
	case "authenticator_url":
		p.httpsURL(line, key, value, &props.AuthenticatorURL)
	default:
		p.warn(line, "unknown property %s is ignored", showKey(key))
	}
}

func (p *parser) httpsURL(line int, key, value string, dst *string) {
	u, err := url.Parse(value)
	if err != nil || u.Host == "" {
		p.invalid(line, "%s: %q is not an absolute URL", key, truncate(value))
		return
	}
	if u.Scheme != "https" {
		p.invalid(line, "%s: scheme %q is not https", key, u.Scheme)
		return
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		p.invalid(line, "%s: must not carry credentials, a query or a fragment", key)
		return
	}
	*dst = strings.TrimRight(value, "/")
}

// continues reports a line ending in an odd number of backslashes.
func continues(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitProperty splits at the first unescaped '=', ':' or white space and unescapes both
// halves.
func splitProperty(s string) (string, string, error) {
	i := 0
	for ; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '=' || s[i] == ':' || s[i] == ' ' || s[i] == '\t' {
			break
		}
	}
	key := s[:min(i, len(s))]
	rest := ""
	if i < len(s) {
		rest = strings.TrimLeft(s[i:], " \t")
		if rest != "" && (rest[0] == '=' || rest[0] == ':') {
			rest = strings.TrimLeft(rest[1:], " \t")
		}
	}
	k, err := unescape(key)
	if err != nil {
		return "", "", err
	}
	if k == "" {
		return "", "", fmt.Errorf("empty key")
	}
	v, err := unescape(strings.TrimRight(rest, " \t"))
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", showKey(k), err)
	}
	return k, v, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "\\") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("dangling backslash")
		}
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			return "", fmt.Errorf("\\u escapes are not supported")
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// showKey names a key in a message only when it looks like one: a line that is not a key
// may be the wrapped tail of a secret, which must not reach a log.
func showKey(k string) string {
	if len(k) > 64 {
		return "(unreadable key)"
	}
	for _, r := range k {
		if !(r == '_' || r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return "(unreadable key)"
		}
	}
	return strconv.Quote(k)
}
