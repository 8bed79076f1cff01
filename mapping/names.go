package mapping

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxNameLen is the longest exchange or queue name: an AMQP short string.
const maxNameLen = 255

// validName checks an exchange or queue name. AMQP 0-9-1 restricts names
// to letters, digits, '-', '_', '.' and ':', but RabbitMQ accepts any
// UTF-8 text that fits a short string, and so does Warren: a name is valid
// if it is valid UTF-8 of at most 255 bytes. The empty name is valid here
// (it is the default exchange, or asks for a server-named queue); callers
// decide where it is allowed.
func validName(name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("name too long: %d bytes, at most %d allowed", len(name), maxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("name %q is not valid UTF-8", name)
	}
	return nil
}

// escapeToken maps any string to a non-empty token made only of the
// characters A-Z, a-z, 0-9, '-' and '_', so that it can be used as one NATS
// subject token, a JetStream KV key token or part of a stream name.
//
// Letters, digits and '-' stand for themselves; every other byte,
// including '_', becomes '_' followed by two upper-case hex digits
// ("a.b" → "a_2Eb", "x_y" → "x_5Fy", "é" → "_C3_A9"). The empty string
// becomes "_", which no other string produces since an escaped non-empty
// string never has a '_' without two hex digits after it. The mapping is
// injective and unescapeToken reverses it.
func escapeToken(s string) string {
	if s == "" {
		return "_"
	}
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !tokenLiteral(s[i]) {
			n += 2
		}
	}
	if n == len(s) {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenLiteral(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// tokenLiteral reports whether escapeToken keeps c as it is.
func tokenLiteral(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
}

// errBadToken is returned (wrapped) by unescapeToken.
var errBadToken = errors.New("not an escaped token")

// unescapeToken reverses escapeToken. It accepts only tokens escapeToken
// produces (upper-case hex, no escaped letters, digits or '-'), so that
// escapeToken(unescapeToken(tok)) == tok whenever it succeeds.
func unescapeToken(tok string) (string, error) {
	switch tok {
	case "":
		return "", fmt.Errorf("%w: empty", errBadToken)
	case "_":
		return "", nil
	}
	var b []byte
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if tokenLiteral(c) {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if c != '_' {
			return "", fmt.Errorf("%w: %q has %q at %d", errBadToken, tok, c, i)
		}
		if i+2 >= len(tok) {
			return "", fmt.Errorf("%w: %q ends inside an escape", errBadToken, tok)
		}
		hi, ok1 := upperHex(tok[i+1])
		lo, ok2 := upperHex(tok[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: %q has a bad escape at %d", errBadToken, tok, i)
		}
		d := hi<<4 | lo
		if tokenLiteral(d) {
			return "", fmt.Errorf("%w: %q escapes %q at %d", errBadToken, tok, d, i)
		}
		if b == nil {
			b = make([]byte, i, len(tok))
			copy(b, tok[:i])
		}
		b = append(b, d)
		i += 2
	}
	if b == nil {
		return tok, nil
	}
	return string(b), nil
}

// upperHex returns the value of an upper-case hex digit.
func upperHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// logNamePrefixLen is how much of the escaped queue name logName keeps.
const logNamePrefixLen = 32

// logName returns a name for the stream (log) that holds a queue: at most
// 49 characters from [A-Za-z0-9_-], made of a readable prefix (the escaped
// queue name cut to 32 characters, never inside an escape) and '_' and 16
// hex digits of a SHA-256 of the vhost and the queue name. The hash input
// is length-prefixed, so distinct (vhost, queue) pairs give distinct names
// unless SHA-256 collides on 64 bits.
func logName(vhost, queue string) string {
	prefix := escapeToken(queue)
	if len(prefix) > logNamePrefixLen {
		// Every '_' starts an escape of three characters: do not
		// split one.
		cut := logNamePrefixLen
		switch {
		case prefix[cut-1] == '_':
			cut--
		case prefix[cut-2] == '_':
			cut -= 2
		}
		prefix = prefix[:cut]
	}
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(vhost)))
	h.Write(n[:])
	io.WriteString(h, vhost)
	io.WriteString(h, queue)
	sum := h.Sum(nil)
	return prefix + "_" + hex.EncodeToString(sum[:8])
}

// pageLogName names the page log of a non-durable queue (pager.go): "pg-",
// the 16 hex digits of logName's hash, and a number unique in this run.
// It has no '_', which every logName has, so it never names a durable
// queue's log; a restart deletes it with every log no queue record names.
func pageLogName(vhost, queue string, n uint64) string {
	l := logName(vhost, queue)
	return "pg-" + l[len(l)-16:] + "-" + strconv.FormatUint(n, 16)
}
