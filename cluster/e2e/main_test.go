package e2e

import (
	"os"
	"testing"

	"github.com/graphrelay/graphrelay/internal/e2etest"
)

func TestMain(m *testing.M) { os.Exit(e2etest.Main(m)) }
