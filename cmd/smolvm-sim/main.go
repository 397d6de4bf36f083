// Command smolvm-sim behaves like the smolvm CLI (see docs/smolvm.md) without
// KVM: machines are bubblewrap sandboxes. Install it as `smolvm`:
//
//	go build -o bin/smolvm ./cmd/smolvm-sim
//
// The simulator lives in internal/smolvmsim.
package main

import (
	"os"

	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
)

func main() { os.Exit(smolvmsim.Main()) }
