package offline

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The device file is one sealed record:
//
//	magic "PSOD" | version (1 byte) | user name length (2 bytes, big endian) | user name |
//	nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// Everything before the nonce is the associated data, so the version and the user name are
// authenticated with the payload. The payload is JSON (filePayload) and names the user
// again. A file that opens under the user name in its own header, when that name is not the
// one asked for, was sealed for someone else: it is foreign, not corrupt.
const (
	fileMagic   = "PSOD"
	fileVersion = 1
	nonceSize   = 12
	headerFixed = len(fileMagic) + 1 + 2

	// HostKeySize is the length of the host key in bytes (AES-256).
	HostKeySize = 32

	// maxFileSize bounds what is read of a device file; a full list of maxDevices devices
	// with the longest fields stays well below it.
	maxFileSize = 256 << 10
)

// errCorrupt and errForeign classify why a device file was not accepted.
var (
	errCorrupt = errors.New("device file is corrupt")
	errForeign = errors.New("device file was sealed for another user")
)

// filePayload is the sealed content of a device file.
type filePayload struct {
	User    string    `json:"user"`
	Saved   time.Time `json:"saved"`
	Devices []Device  `json:"devices"`
}

// sealFile encodes and encrypts p for p.User under key.
func sealFile(key []byte, p filePayload) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(p.User) > 0xffff {
		return nil, fmt.Errorf("user name too long")
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode devices: %w", err)
	}
	defer clear(plain)

	out := make([]byte, 0, headerFixed+len(p.User)+nonceSize+len(plain)+aead.Overhead())
	out = append(out, fileMagic...)
	out = append(out, fileVersion)
	out = binary.BigEndian.AppendUint16(out, uint16(len(p.User)))
	out = append(out, p.User...)
	header := len(out)

	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, out[:header]), nil
}

// openFile decrypts and validates a device file for user. Errors wrap errCorrupt or
// errForeign; they describe the structure only and never include key material or content.
func openFile(key []byte, user string, data []byte) (filePayload, error) {
	if len(data) > maxFileSize {
		return filePayload{}, fmt.Errorf("%w: larger than %d bytes", errCorrupt, maxFileSize)
	}
	if len(data) < headerFixed || string(data[:len(fileMagic)]) != fileMagic {
		return filePayload{}, fmt.Errorf("%w: not a device file", errCorrupt)
	}
	if v := data[len(fileMagic)]; v != fileVersion {
		return filePayload{}, fmt.Errorf("%w: version %d is not supported", errCorrupt, v)
	}
	n := int(binary.BigEndian.Uint16(data[len(fileMagic)+1:]))
	header := headerFixed + n
	if len(data) < header+nonceSize {
		return filePayload{}, fmt.Errorf("%w: truncated", errCorrupt)
	}
	owner := string(data[headerFixed:header])

	aead, err := newAEAD(key)
	if err != nil {
		return filePayload{}, err
	}
	if len(data) < header+nonceSize+aead.Overhead() {
		return filePayload{}, fmt.Errorf("%w: truncated", errCorrupt)
	}
	nonce := data[header : header+nonceSize]
	plain, err := aead.Open(nil, nonce, data[header+nonceSize:], data[:header])
	if err != nil {
		return filePayload{}, fmt.Errorf("%w: authentication failed (damaged, or sealed "+
			"under another host key)", errCorrupt)
	}
	defer clear(plain)

	var p filePayload
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		return filePayload{}, fmt.Errorf("%w: payload is not a device list", errCorrupt)
	}
	if p.User != owner {
		return filePayload{}, fmt.Errorf("%w: payload and header name different users",
			errCorrupt)
	}
	if err := checkDevices(p.Devices); err != nil {
		return filePayload{}, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if owner != user {
		return filePayload{}, fmt.Errorf("%w %q", errForeign, owner)
	}
	return p, nil
}

// checkDevices accepts 1 to maxDevices valid devices with distinct IDs.
func checkDevices(devs []Device) error {
	if len(devs) == 0 || len(devs) > maxDevices {
		return fmt.Errorf("%d devices, want 1 to %d", len(devs), maxDevices)
	}
	seen := make(map[string]bool, len(devs))
	for _, d := range devs {
		if err := CheckDevice(d); err != nil {
			return err
		}
		if seen[d.ID] {
			return fmt.Errorf("%w: id %q appears twice", errDevice, d.ID)
		}
		seen[d.ID] = true
	}
	return nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != HostKeySize {
		return nil, fmt.Errorf("host key is %d bytes, want %d", len(key), HostKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	return cipher.NewGCM(block)
}
