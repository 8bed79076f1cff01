package mapping

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Password hashes. Warren's own are PBKDF2-SHA256 with a random 16-byte
// salt, written "pbkdf2-sha256$<iterations>$<salt b64>$<key b64>".
// RabbitMQ's salted SHA-256/512 hashes (from imported definitions) are
// accepted as they are, so that users keep their passwords.
const (
	pbkdf2Iterations = 100_000
	algoPBKDF2       = "warren_pbkdf2_sha256"
	algoRabbitSHA256 = "rabbit_password_hashing_sha256"
	algoRabbitSHA512 = "rabbit_password_hashing_sha512"
)

func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Iterations, 32)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iterations, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword verifies password against a stored hash of algorithm algo.
func checkPassword(algo, hash, password string) bool {
	switch algo {
	case algoPBKDF2, "":
		parts := strings.Split(hash, "$")
		if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
			return false
		}
		iter, err := strconv.Atoi(parts[1])
		if err != nil || iter < 1 || iter > 10_000_000 {
			return false
		}
		b64 := base64.RawStdEncoding
		salt, err1 := b64.DecodeString(parts[2])
		want, err2 := b64.DecodeString(parts[3])
		if err1 != nil || err2 != nil {
			return false
		}
		got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	case algoRabbitSHA256, algoRabbitSHA512:
		raw, err := base64.StdEncoding.DecodeString(hash)
		if err != nil || len(raw) < 5 {
			return false
		}
		salt, want := raw[:4], raw[4:]
		var sum []byte
		if algo == algoRabbitSHA256 {
			s := sha256.Sum256(append(append([]byte{}, salt...), password...))
			sum = s[:]
		} else {
			s := sha512.Sum512(append(append([]byte{}, salt...), password...))
			sum = s[:]
		}
		return hmac.Equal(sum, want)
	}
	return false
}
