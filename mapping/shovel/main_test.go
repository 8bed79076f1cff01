package shovel_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: every
// runner, pump and webhook request must end with Manager.Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
