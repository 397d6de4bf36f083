package steplog

import (
	"crypto/sha256"
	"encoding/hex"
)

// GoldenKey is where a BottleTemplate's golden keeps its steps' logs in
// place of a Bottle's UID: a template has a golden per node and per
// machine spec, and the key names one of them, the template's UID and 16
// hex digits of the SHA-256 of the golden's machine name (a machine name
// can be longer than a key, and has characters a UID has not). The agent
// writing the logs and the exec API reading them both derive it here.
func GoldenKey(templateUID, goldenMachine string) string {
	sum := sha256.Sum256([]byte(goldenMachine))
	return templateUID + "-" + hex.EncodeToString(sum[:8])
}
