package stomp

// STOMP frames (https://stomp.github.io/stomp-specification-1.2.html):
//
//	COMMAND EOL *(header EOL) EOL *OCTET NUL *(EOL)
//
// Over WebSocket a message usually holds one frame, but frames may also
// be split across messages or several may share one; a message that is
// only EOLs is a heart-beat.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Parser limits.
const (
	stompMaxHeaders    = 128
	stompMaxHeaderLine = 16 << 10
)

type stompFrame struct {
	command string
	headers [][2]string // in order; the first of repeated headers wins
	body    []byte
}

func (f *stompFrame) get(name string) string {
	v, _ := f.lookup(name)
	return v
}

func (f *stompFrame) lookup(name string) (string, bool) {
	for _, h := range f.headers {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

func (f *stompFrame) set(name, value string) {
	f.headers = append(f.headers, [2]string{name, value})
}

var errStompIncomplete = errors.New("incomplete frame")

// parseStompFrame parses one frame from the start of b (after any
// heart-beat EOLs). It returns errStompIncomplete when b ends first, and
// the number of bytes used. escapes selects STOMP 1.1+ header escaping
// (CONNECT and CONNECTED frames are never escaped).
func parseStompFrame(b []byte, escapes bool, maxBody int) (*stompFrame, int, error) {
	i := 0
	for i < len(b) && (b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i == len(b) {
		return nil, i, errStompIncomplete
	}
	line := func() (string, error) {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			if len(b)-i > stompMaxHeaderLine {
				return "", fmt.Errorf("header line longer than %d bytes", stompMaxHeaderLine)
			}
			return "", errStompIncomplete
		}
		if j > stompMaxHeaderLine {
			return "", fmt.Errorf("header line longer than %d bytes", stompMaxHeaderLine)
		}
		s := b[i : i+j]
		i += j + 1
		s = bytes.TrimSuffix(s, []byte{'\r'})
		return string(s), nil
	}
	cmd, err := line()
	if err != nil {
		return nil, 0, err
	}
	f := &stompFrame{command: cmd}
	unescape := escapes && cmd != "CONNECT" && cmd != "STOMP"
	for {
		l, err := line()
		if err != nil {
			return nil, 0, err
		}
		if l == "" {
			break
		}
		if len(f.headers) >= stompMaxHeaders {
			return nil, 0, fmt.Errorf("more than %d headers", stompMaxHeaders)
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, 0, fmt.Errorf("header line %q has no ':'", l)
		}
		if unescape {
			if k, err = stompUnescape(k); err != nil {
				return nil, 0, err
			}
			if v, err = stompUnescape(v); err != nil {
				return nil, 0, err
			}
		}
		f.headers = append(f.headers, [2]string{k, v})
	}
	if cl, ok := f.lookup("content-length"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 {
			return nil, 0, fmt.Errorf("invalid content-length %q", cl)
		}
		if n > maxBody {
			return nil, 0, fmt.Errorf("body of %d bytes is larger than the maximum of %d", n, maxBody)
		}
		if len(b)-i < n+1 {
			return nil, 0, errStompIncomplete
		}
		if b[i+n] != 0 {
			return nil, 0, errors.New("frame body is not followed by NUL")
		}
		f.body = bytes.Clone(b[i : i+n])
		i += n + 1
	} else {
		j := bytes.IndexByte(b[i:], 0)
		if j < 0 {
			if len(b)-i > maxBody {
				return nil, 0, fmt.Errorf("body larger than the maximum of %d bytes", maxBody)
			}
			return nil, 0, errStompIncomplete
		}
		f.body = bytes.Clone(b[i : i+j])
		i += j + 1
	}
	return f, i, nil
}

func stompUnescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			sb.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("header ends in a lone backslash")
		}
		switch s[i] {
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 'c':
			sb.WriteByte(':')
		case '\\':
			sb.WriteByte('\\')
		default:
			return "", fmt.Errorf("undefined escape sequence \\%c in a header", s[i])
		}
	}
	return sb.String(), nil
}

var stompEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, ":", `\c`)

// appendStompFrame encodes a frame; content-length is added for bodies.
func appendStompFrame(b []byte, f *stompFrame, escapes bool) []byte {
	b = append(b, f.command...)
	b = append(b, '\n')
	esc := escapes && f.command != "CONNECTED"
	for _, h := range f.headers {
		if esc {
			b = append(b, stompEscaper.Replace(h[0])...)
			b = append(b, ':')
			b = append(b, stompEscaper.Replace(h[1])...)
		} else {
			b = append(b, stripEOL(h[0])...)
			b = append(b, ':')
			b = append(b, stripEOL(h[1])...)
		}
		b = append(b, '\n')
	}
	if f.body != nil || f.command == "MESSAGE" || f.command == "ERROR" {
		b = append(b, "content-length:"...)
		b = strconv.AppendInt(b, int64(len(f.body)), 10)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, f.body...)
	return append(b, 0)
}

func stripEOL(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	return s
}
